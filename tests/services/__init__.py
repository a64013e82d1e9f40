"""Real services for tests: provisioned binaries started once per session on 127.0.0.1."""
