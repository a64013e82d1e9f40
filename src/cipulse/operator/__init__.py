"""The monitoring engine behind both the Kubernetes operator and `cipulse up`.

Layers: `spec` (what a monitor is), `engine` (one poll: collect, assess, report; no Kubernetes),
`sinks` (where health transitions go), `kube*`/`handlers` (the kopf operator around the engine).
"""
