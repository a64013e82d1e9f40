"""Opt-in labels: the operator uses only Secrets their owners marked for cipulse.

The operator may read Secrets in every namespace it serves, but whoever may create a CiCdMonitor there
chooses where a named Secret is sent (the token to `apiUrl`, a bearer token to an MCP sink). Without an
opt-in, someone allowed to create monitors but not to read Secrets could name another team's Secret and
point the URL at their own server. A Secret counts as offered only when it carries the label for its use,
set by someone who may edit that Secret.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from cipulse.operator.crd import GROUP

OPT_IN_VALUE = "true"


@dataclass(frozen=True, slots=True)
class SecretUse:
    """One way a monitor uses a Secret: its opt-in label and the condition reasons for its problems."""

    label: str
    purpose: str
    missing_reason: str
    unlabelled_reason: str

    def offered(self, labels: Mapping[str, str] | None) -> bool:
        return (labels or {}).get(self.label) == OPT_IN_VALUE

    def label_command(self, namespace: str, name: str) -> str:
        return f"kubectl -n {namespace} label secret {name} {self.label}={OPT_IN_VALUE}"

    def not_labelled(self, namespace: str, name: str) -> str:
        return (
            f"Secret {namespace}/{name} is not labelled {self.label}={OPT_IN_VALUE} for use by cipulse as "
            f"{self.purpose}; if monitors in {namespace} may use it: {self.label_command(namespace, name)}"
        )


GITHUB_TOKEN = SecretUse(
    label=f"{GROUP}/github-token",
    purpose="a GitHub token",
    missing_reason="TokenSecretNotFound",
    unlabelled_reason="TokenSecretNotLabelled",
)
SINK_SECRET = SecretUse(
    label=f"{GROUP}/sink-secret",
    purpose="a sink's signing key or bearer token",
    missing_reason="SinkSecretNotFound",
    unlabelled_reason="SinkSecretNotLabelled",
)
