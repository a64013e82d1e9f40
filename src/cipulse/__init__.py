"""cipulse: AIOps for GitHub Actions pipelines."""

__version__ = "0.1.0"
