"""Where the REST and GraphQL APIs live for github.com and GitHub Enterprise Server.

github.com: REST https://api.github.com, GraphQL https://api.github.com/graphql.
GHES:       REST https://HOST/api/v3,   GraphQL https://HOST/api/graphql.
"""

from __future__ import annotations

from dataclasses import dataclass

PUBLIC_API_URL = "https://api.github.com"


@dataclass(frozen=True, slots=True)
class Endpoints:
    rest: str
    graphql: str


def endpoints_for(api_url: str) -> Endpoints:
    """Derive both endpoints from the REST base URL a user configures."""
    rest = api_url.rstrip("/")
    if rest.endswith("/api/v3"):
        return Endpoints(rest=rest, graphql=rest[: -len("/v3")] + "/graphql")
    return Endpoints(rest=rest, graphql=rest + "/graphql")
