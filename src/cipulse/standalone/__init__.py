"""`cipulse up`: the operator's engine without Kubernetes, for a laptop or a single VM."""
