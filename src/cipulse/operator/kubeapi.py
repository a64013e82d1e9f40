"""The few Kubernetes API calls the operator makes itself (kopf does the watching).

The official client is synchronous; calls run in worker threads so one slow API answer never stalls
the event loop that drives every monitor.
"""

from __future__ import annotations

import asyncio
import base64
from typing import Any

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from cipulse.operator.crd import GROUP, PLURAL, VERSION
from cipulse.operator.secret_labels import SecretUse
from cipulse.operator.spec import SecretKeyRef


class SecretUnusable(LookupError):
    """A referenced Secret cannot be used; `reason` names the condition. A status, never a crash."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class SecretMissing(SecretUnusable):
    """The Secret or key does not exist, may not be read, or is not text."""


class SecretNotLabelled(SecretUnusable):
    """The Secret exists but its owner has not offered it for this use (see secret_labels)."""


def load_config() -> client.ApiClient:
    """In-cluster credentials when running in a pod, else KUBECONFIG / ~/.kube/config."""
    try:
        config.load_incluster_config()
    except config.ConfigException:
        config.load_kube_config()
    return client.ApiClient()


class KubeApi:
    def __init__(self, api_client: client.ApiClient) -> None:
        self._core = client.CoreV1Api(api_client)
        self._custom = client.CustomObjectsApi(api_client)

    async def read_secret(self, namespace: str, ref: SecretKeyRef, use: SecretUse) -> str:
        """The value at `ref`, only if the Secret carries `use`'s opt-in label.

        The label is checked on the same object the value comes from (no window between check and
        use), and an unlabelled Secret's data is never decoded.
        """

        def read() -> Any:
            return self._core.read_namespaced_secret(ref.name, namespace)

        where = f"Secret {namespace}/{ref.name}"
        missing = use.missing_reason
        try:
            secret = await asyncio.to_thread(read)
        except ApiException as error:
            if error.status == 404:
                raise SecretMissing(missing, f"{where} not found") from None
            if error.status == 403:
                raise SecretMissing(missing, f"{where} may not be read (RBAC)") from None
            raise
        if not use.offered(secret.metadata.labels if secret.metadata else None):
            raise SecretNotLabelled(use.unlabelled_reason, use.not_labelled(namespace, ref.name))
        data = secret.data or {}
        if ref.key not in data:
            raise SecretMissing(missing, f"{where} has no key {ref.key!r}")
        try:
            return base64.b64decode(data[ref.key]).decode().strip()
        except (ValueError, UnicodeDecodeError):  # never echo the bytes: they are the secret
            raise SecretMissing(missing, f"{where} key {ref.key!r} is not UTF-8 text") from None

    async def patch_status(self, namespace: str, name: str, status: dict[str, Any]) -> None:
        """Merge-patch the status subresource; a monitor deleted meanwhile is not an error."""

        def patch() -> Any:
            return self._custom.patch_namespaced_custom_object_status(
                GROUP, VERSION, namespace, PLURAL, name, {"status": status}
            )

        try:
            await asyncio.to_thread(patch)
        except ApiException as error:
            if error.status != 404:
                raise
