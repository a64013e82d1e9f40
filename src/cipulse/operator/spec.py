"""The CiCdMonitor spec: one pydantic model that both the operator and `cipulse up` validate against.

The CRD's openAPIV3Schema is generated from this model (see `crd.py`), so the API server and the
standalone loader reject exactly the same inputs.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError

from cipulse.operator.url_policy import (
    INSECURE_URL_ERROR,
    cel_secure_url,
    credentials_may_go_to,
    insecure_url_message,
)

# GitHub owners: alphanumerics and inner hyphens, up to 39 characters; repository names: [A-Za-z0-9._-].
REPOSITORY_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9-]{0,38}/[A-Za-z0-9._-]{1,100}$"
# A Go-style duration restricted to whole hours, minutes and seconds ("90s", "5m", "1h30m").
DURATION_PATTERN = r"^([0-9]{1,5}h)?([0-9]{1,5}m)?([0-9]{1,6}s)?$"
SECRET_NAME_PATTERN = r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$"
SECRET_KEY_PATTERN = r"^[-._a-zA-Z0-9]{1,253}$"
URL_PATTERN = r"^https?://[^\s]+$"
MIN_POLL_SECONDS = 30
MAX_POLL_SECONDS = 24 * 3600

POLL_INTERVAL_RULE = (
    f"duration(self) >= duration('{MIN_POLL_SECONDS}s') && duration(self) <= duration('{MAX_POLL_SECONDS}s')"
)
POLL_INTERVAL_MESSAGE = "pollInterval must be between 30s and 24h"
# (lower field, higher field, message): pairs the API server and the model both keep ordered.
_HEALTH_PAIRS = (
    (
        "failing_success_rate",
        "degraded_success_rate",
        "failingSuccessRate must not exceed degradedSuccessRate",
    ),
    (
        "queue_p95_degraded_seconds",
        "queue_p95_failing_seconds",
        "queueP95DegradedSeconds must not exceed queueP95FailingSeconds",
    ),
    (
        "duration_growth_degraded",
        "duration_growth_failing",
        "durationGrowthDegraded must not exceed durationGrowthFailing",
    ),
)


def _order_rule(low: str, high: str, message: str) -> dict[str, str]:
    low, high = to_camel(low), to_camel(high)
    return {"rule": f"!has(self.{low}) || !has(self.{high}) || self.{low} <= self.{high}", "message": message}


HEALTH_ORDER_RULES: list[Any] = [_order_rule(*pair) for pair in _HEALTH_PAIRS]
ONE_SINK_RULE = "has(self.webhook) != has(self.mcp)"
ONE_SINK_MESSAGE = "each sink sets exactly one of webhook or mcp"
API_URL_MESSAGE = insecure_url_message("apiUrl", "the GitHub token")
MCP_URL_MESSAGE = insecure_url_message("an MCP sink's url", "its secretRef's bearer token")
MCP_URL_RULE = f"!has(self.secretRef) || {cel_secure_url('self.url')}"


def duration_seconds(text: str) -> int:
    """Seconds in a duration string accepted by DURATION_PATTERN; ValueError otherwise."""
    match = re.fullmatch(DURATION_PATTERN, text)
    if not text or match is None:
        raise ValueError(f"{text!r} is not a duration like 90s, 5m or 1h30m")
    hours, minutes, seconds = (int(part[:-1]) if part else 0 for part in match.groups())
    return hours * 3600 + minutes * 60 + seconds


def _rule(rule: str, message: str) -> dict[str, Any]:
    return {"x-kubernetes-validations": [{"rule": rule, "message": message}]}


def _require_secure(url: str, message: str) -> None:
    """A custom error type, so the operator can name the problem (InsecureUrl) instead of InvalidSpec."""
    if not credentials_may_go_to(url):
        raise PydanticCustomError(INSECURE_URL_ERROR, message)


class _Model(BaseModel):
    """camelCase on the wire (as Kubernetes users expect), unknown fields rejected."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True, validate_default=False
    )


class SecretKeyRef(_Model):
    """A key inside a Kubernetes Secret in the monitor's namespace (standalone: an environment variable)."""

    name: str = Field(pattern=SECRET_NAME_PATTERN, max_length=253, description="Secret name.")
    key: str = Field(
        default="token", pattern=SECRET_KEY_PATTERN, max_length=253, description="Key in the Secret."
    )


class HealthSpec(_Model):
    """When a repository's recent CI counts as Degraded or Failing (see cipulse.metrics.health)."""

    model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": list(HEALTH_ORDER_RULES)})

    window_hours: int = Field(default=24, ge=1, le=720, description="Look-back window for health, hours.")
    degraded_success_rate: float = Field(
        default=0.9, ge=0, le=1, description="Job success rate below which health is Degraded."
    )
    failing_success_rate: float = Field(
        default=0.75, ge=0, le=1, description="Job success rate below which health is Failing."
    )
    min_finished_jobs: int = Field(
        default=5, ge=0, le=100000, description="Fewer finished jobs in the window: success rate not judged."
    )
    queue_p95_degraded_seconds: int = Field(
        default=600, ge=0, le=30 * 86400, description="p95 queue time at or above which health is Degraded."
    )
    queue_p95_failing_seconds: int = Field(
        default=1800, ge=0, le=30 * 86400, description="p95 queue time at or above which health is Failing."
    )
    duration_growth_degraded: float = Field(
        default=0.5,
        ge=0,
        le=100,
        description="p95 duration growth vs the previous window (0.5 = +50%): Degraded.",
    )
    duration_growth_failing: float = Field(
        default=1.0, ge=0, le=100, description="p95 duration growth vs the previous window: Failing."
    )

    @model_validator(mode="after")
    def _ordered(self) -> HealthSpec:
        for low, high, message in _HEALTH_PAIRS:
            if getattr(self, low) > getattr(self, high):
                raise ValueError(message)
        return self


class WebhookSink(_Model):
    """POSTs health transitions as JSON signed with HMAC-SHA256 (X-Cipulse-Signature-256)."""

    url: str = Field(pattern=URL_PATTERN, max_length=2048, description="Receiver URL.")
    secret_ref: SecretKeyRef | None = Field(
        default=None, description="Secret holding the HMAC signing key; label it cipulse.io/sink-secret=true."
    )


class McpSink(_Model):
    """Calls a tool on a remote MCP server (streamable HTTP) with each health transition."""

    model_config = ConfigDict(json_schema_extra=_rule(MCP_URL_RULE, MCP_URL_MESSAGE))

    url: str = Field(pattern=URL_PATTERN, max_length=2048, description="MCP endpoint, e.g. https://host/mcp.")
    tool: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,128}$", max_length=128, description="Tool to call.")
    secret_ref: SecretKeyRef | None = Field(
        default=None, description="Secret holding a bearer token; label it cipulse.io/sink-secret=true."
    )

    @model_validator(mode="after")
    def _bearer_only_over_tls(self) -> McpSink:
        if self.secret_ref is not None:
            _require_secure(self.url, MCP_URL_MESSAGE)
        return self


class Sink(_Model):
    """Where health transitions go: exactly one of webhook or mcp."""

    model_config = ConfigDict(json_schema_extra=_rule(ONE_SINK_RULE, ONE_SINK_MESSAGE))

    webhook: WebhookSink | None = None
    mcp: McpSink | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Sink:
        if (self.webhook is None) == (self.mcp is None):
            raise ValueError(ONE_SINK_MESSAGE)
        return self


class MonitorSpec(_Model):
    """What to watch (repository, filters), how often, with which credentials, and whom to tell."""

    repository: str = Field(pattern=REPOSITORY_PATTERN, max_length=140, description="owner/name on GitHub.")
    token_secret_ref: SecretKeyRef | None = Field(
        default=None,
        description="Secret with a GitHub token, labelled cipulse.io/github-token=true "
        "(standalone: GITHUB_TOKEN or NAME_KEY env).",
    )
    api_url: str = Field(
        default="https://api.github.com",
        pattern=URL_PATTERN,
        max_length=2048,
        description="REST base URL (GitHub Enterprise Server: https://HOST/api/v3); http only on loopback.",
        json_schema_extra=_rule(cel_secure_url("self"), API_URL_MESSAGE),
    )
    poll_interval: str = Field(
        default="5m",
        pattern=DURATION_PATTERN,
        min_length=2,
        max_length=16,
        description="Time between polls, 30s to 24h (e.g. 90s, 5m, 1h30m).",
        json_schema_extra=_rule(POLL_INTERVAL_RULE, POLL_INTERVAL_MESSAGE),
    )
    mode: Literal["graphql", "graphql+rest"] = Field(
        default="graphql+rest", description="graphql+rest adds exact queue times and re-run attempts."
    )
    workflows: list[str] = Field(
        default_factory=list,
        max_length=100,
        description="Workflow names or file names to watch; empty watches all.",
        json_schema_extra={"items": {"type": "string", "minLength": 1, "maxLength": 256}},
    )
    branches: list[str] = Field(
        default_factory=list,
        max_length=100,
        description="Branches to watch; empty watches all.",
        json_schema_extra={"items": {"type": "string", "minLength": 1, "maxLength": 256}},
    )
    backfill_days: int = Field(
        default=30, ge=1, le=365, description="History collected on first start, days."
    )
    health: HealthSpec = Field(default_factory=HealthSpec, description="Health thresholds.")
    sinks: list[Sink] = Field(default_factory=list, max_length=10, description="Health transition receivers.")

    @field_validator("poll_interval")
    @classmethod
    def _bounded_interval(cls, value: str) -> str:
        if not MIN_POLL_SECONDS <= duration_seconds(value) <= MAX_POLL_SECONDS:
            raise ValueError(POLL_INTERVAL_MESSAGE)
        return value

    @field_validator("api_url")
    @classmethod
    def _token_only_over_tls(cls, value: str) -> str:
        _require_secure(value, API_URL_MESSAGE)
        return value

    @field_validator("workflows", "branches")
    @classmethod
    def _bounded_names(cls, values: list[str]) -> list[str]:
        if any(not 1 <= len(name) <= 256 for name in values):
            raise ValueError("workflow and branch names are 1 to 256 characters")
        return values

    @property
    def poll_seconds(self) -> int:
        return duration_seconds(self.poll_interval)


def parse_spec(raw: dict[str, Any]) -> MonitorSpec:
    """Validate a spec as written in a manifest (camelCase keys)."""
    return MonitorSpec.model_validate(raw)
