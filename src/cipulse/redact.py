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
    # Keep the host part as written: `parts.port` raises on a non-numeric port, and that must not crash
    # the error message that reports the bad URL.
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, f"***@{host}", parts.path, parts.query, parts.fragment))
