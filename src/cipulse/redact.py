"""Make URLs safe to print: store and API URLs may carry `user:password@`, which must never reach logs,
status conditions, Events, reports or terminal output."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit


def redact_url(url: str) -> str:
    """`https://user:pw@host:9200/x` -> `https://***@host:9200/x`; URLs without credentials are unchanged."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable URL>"
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, f"***@{host}", parts.path, parts.query, parts.fragment))
