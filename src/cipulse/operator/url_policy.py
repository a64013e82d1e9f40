"""Where credentials may travel: https anywhere, plain http only to this machine.

A monitor's GitHub token goes to its `apiUrl` and an MCP sink's bearer token to the sink's URL; over plain
http anyone on the path reads them. Loopback http stays allowed for the emulator, tests and local
development. The same rule exists twice, as a Python check (the model, so `cipulse up` and the operator
agree) and as a CEL rule in the CRD (so the API server refuses such a spec at `kubectl apply`); both
parse the host the way Go's net/url does (no case folding, userinfo stripped), so they agree on
tricks like `http://127.0.0.1@evil.example` or `http://LOCALHOST`.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx

# Exact names, no patterns: a regex over a 2 KiB URL exceeds the API server's CEL cost budget, and these
# three are what local tools and the emulator use.
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")
INSECURE_URL_ERROR = "insecure_url"


def insecure_url_message(field: str, carries: str) -> str:
    return (
        f"{field} must use https:// because {carries} is sent there; plain http:// is allowed only for "
        "loopback hosts (localhost, 127.0.0.1, [::1])"
    )


def _go_hostname(url: str) -> str | None:
    """The host as Go's url.Hostname() reports it: userinfo dropped, brackets and port removed, case kept."""
    try:
        authority = urlsplit(url).netloc
    except ValueError:
        return None
    host = authority.rpartition("@")[2]
    if host.startswith("["):
        return host[1:].partition("]")[0]
    return host.partition(":")[0]


def is_loopback_host(host: str) -> bool:
    return host in LOOPBACK_HOSTS


def credentials_may_go_to(url: str) -> bool:
    """True for https URLs and for http URLs whose host is loopback (by Go's and httpx's reading alike)."""
    if url.startswith("https://"):
        return True
    if not url.startswith("http://"):
        return False
    host = _go_hostname(url)
    try:
        connects_to = httpx.URL(url).host  # what the client will actually connect to
    except (httpx.InvalidURL, ValueError):
        return False
    return host is not None and host == connects_to and is_loopback_host(host)


def cel_secure_url(expr: str) -> str:
    """The CEL twin of `credentials_may_go_to` for the string expression `expr` (Kubernetes URL library)."""
    names = ", ".join(f"'{name}'" for name in LOOPBACK_HOSTS)
    return (
        f"{expr}.startsWith('https://') || ({expr}.startsWith('http://') && isURL({expr}) && "
        f"url({expr}).getHostname() in [{names}])"
    )
