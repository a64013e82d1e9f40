"""Errors the collector raises to its callers.

Messages name the repository and what to do; they never contain the token (the token is never passed
to the code that formats them).
"""

from __future__ import annotations

from datetime import datetime


class GitHubError(RuntimeError):
    """Base class: anything the collector could not do against GitHub."""


class RepositoryNotFound(GitHubError):
    """The repository does not exist or the token cannot see it (GitHub answers 404 for both)."""


class AuthenticationFailed(GitHubError):
    """The token was rejected (401) or lacks the permission for Actions data (403 without rate limiting)."""


class RateLimited(GitHubError):
    """The token's budget is exhausted until `reset_at`; callers wait instead of retrying sooner."""

    def __init__(self, message: str, reset_at: datetime) -> None:
        super().__init__(message)
        self.reset_at = reset_at


class GitHubUnavailable(GitHubError):
    """GitHub kept failing (5xx, timeouts, malformed answers) after every retry."""


class QueryTooLarge(GitHubError):
    """A GraphQL query would exceed GitHub's node limit; refused before sending it."""
