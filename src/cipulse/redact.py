"""Make URLs safe to print: store and API URLs may carry `user:password@`, which must never reach logs,
status conditions, Events, reports or terminal output."""

from __future__ import annotations

from urllib.parse import unquote, urlsplit, urlunsplit


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


def split_credentials(url: str) -> tuple[str, str | None, str | None]:
    """`http://user:pw@host:9200` -> (`http://host:9200`, "user", "pw"), percent-decoded, so clients get
    the credentials as auth and the URL they log carries none; a URL without credentials comes back
    unchanged with (None, None). Raises ValueError for a URL that does not parse."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url, None, None
    host = parts.netloc.rsplit("@", 1)[-1]
    bare = urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))
    password = None if parts.password is None else unquote(parts.password)
    return bare, unquote(parts.username or ""), password
