"""Health-transition sinks: signed webhooks (and the MCP sink's payload).

The signature scheme mirrors GitHub's X-Hub-Signature-256 so receivers can reuse familiar code:
`X-Cipulse-Signature-256: sha256=<hex HMAC-SHA256 of the raw body>`.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from cipulse.redact import redact_url
from cipulse.redact import split_credentials as split_url_credentials

SIGNATURE_HEADER = "X-Cipulse-Signature-256"
EVENT_HEADER = "X-Cipulse-Event"
DELIVERY_HEADER = "X-Cipulse-Delivery"


class SinkDeliveryFailed(RuntimeError):
    """A receiver kept refusing a delivery; the caller keeps it and tries again on the next poll."""


def sign(secret: bytes, body: bytes) -> str:
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def verify(secret: bytes, body: bytes, header: str | None) -> bool:
    """Constant-time check of a received signature header."""
    return header is not None and hmac.compare_digest(sign(secret, body), header)


@dataclass(frozen=True, slots=True)
class HealthTransition:
    monitor: str
    repository: str
    previous: str
    current: str
    reasons: tuple[str, ...]
    at: datetime

    @property
    def delivery_id(self) -> str:
        """Stable per transition, so receivers can drop a redelivery after a lost acknowledgement."""
        digest = hashlib.sha256(f"{self.monitor}|{self.current}|{self.at.isoformat()}".encode()).hexdigest()
        return digest[:32]

    def payload(self) -> dict[str, Any]:
        return {
            "event": "health_transition",
            "monitor": self.monitor,
            "repository": self.repository,
            "previous": self.previous,
            "health": self.current,
            "reasons": list(self.reasons),
            "at": self.at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
            "delivery": self.delivery_id,
        }


def encode(transition: HealthTransition) -> bytes:
    return json.dumps(transition.payload(), sort_keys=True, separators=(",", ":")).encode()


async def post_webhook(
    client: httpx.AsyncClient,
    url: str,
    secret: bytes | None,
    transition: HealthTransition,
    *,
    attempts: int = 3,
    backoff_seconds: float = 0.5,
) -> None:
    """POST one transition; retries 5xx and network errors, raises SinkDeliveryFailed when out of attempts."""
    await post_signed(
        client,
        url,
        secret,
        encode(transition),
        transition.delivery_id,
        attempts=attempts,
        backoff_seconds=backoff_seconds,
    )


async def post_signed(
    client: httpx.AsyncClient,
    url: str,
    secret: bytes | None,
    body: bytes,
    delivery_id: str,
    *,
    attempts: int = 3,
    backoff_seconds: float = 0.5,
) -> None:
    """POST a stored payload, signed now with the current key (the outbox never holds keys)."""
    headers = {
        "Content-Type": "application/json",
        EVENT_HEADER: "health_transition",
        DELIVERY_HEADER: delivery_id,
        "User-Agent": "cipulse",
    }
    if secret is not None:
        headers[SIGNATURE_HEADER] = sign(secret, body)
    target, auth = split_credentials(url)
    problem = ""
    for attempt in range(attempts):
        try:
            response = await client.post(
                target, content=body, headers=headers, auth=auth or httpx.USE_CLIENT_DEFAULT
            )
        except httpx.HTTPError as error:
            problem = f"{type(error).__name__}"
        except Exception as error:  # a URL the spec admits but httpx cannot use (bad port, IDNA): permanent
            problem = f"unusable URL ({type(error).__name__})"
            break
        else:
            if response.status_code < 300:
                return
            problem = f"HTTP {response.status_code}"
            if response.status_code < 500 and response.status_code != 429:
                break
        if attempt + 1 < attempts:
            await asyncio.sleep(backoff_seconds * 2**attempt)
    raise SinkDeliveryFailed(f"webhook {redact_url(url)} refused delivery {delivery_id}: {problem}")


def split_credentials(url: str) -> tuple[str, tuple[str, str] | None]:
    """`user:password@` in a sink URL becomes (user, password) for basic auth, so the URL that HTTP
    clients log carries no password; a URL that does not parse comes back as it is (posting it fails)."""
    try:
        bare, username, password = split_url_credentials(url)
    except ValueError:
        return url, None
    if username is None:
        return url, None
    return bare, (username, password or "")
