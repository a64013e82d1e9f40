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
from cipulse.operator.spec import SecretKeyRef


class SecretMissing(LookupError):
    """A referenced Secret or key does not exist (or may not be read): a status condition, not a crash."""


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

    async def read_secret(self, namespace: str, ref: SecretKeyRef) -> str:
        def read() -> Any:
            return self._core.read_namespaced_secret(ref.name, namespace)

        try:
            secret = await asyncio.to_thread(read)
        except ApiException as error:
            if error.status == 404:
                raise SecretMissing(f"Secret {namespace}/{ref.name} not found") from None
            if error.status == 403:
                raise SecretMissing(f"Secret {namespace}/{ref.name} may not be read (RBAC)") from None
            raise
        data = secret.data or {}
        if ref.key not in data:
            raise SecretMissing(f"Secret {namespace}/{ref.name} has no key {ref.key!r}")
        try:
            return base64.b64decode(data[ref.key]).decode().strip()
        except (ValueError, UnicodeDecodeError):  # never echo the bytes: they are the secret
            raise SecretMissing(f"Secret {namespace}/{ref.name} key {ref.key!r} is not UTF-8 text") from None

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
