"""Pure parts of the operator: signatures, transitions, status documents, standalone config, selectors."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from cipulse.operator import status as status_docs
from cipulse.operator.health import HealthVerdict
from cipulse.operator.report import PollReport, is_notable
from cipulse.operator.shards import parse_selector
from cipulse.operator.sinks import (
    SIGNATURE_HEADER,
    HealthTransition,
    SinkDeliveryFailed,
    encode,
    post_webhook,
    sign,
    verify,
)
from cipulse.standalone.config import ConfigError, env_name, load_monitors, resolve_token

ROOT = Path(__file__).resolve().parents[2]
HEAD = "kind: CiCdMonitor\napiVersion: cipulse.io/v1alpha1\n"
AT = datetime(2026, 11, 21, 6, 0, tzinfo=UTC)
TRANSITION = HealthTransition("ns/m", "o/r", "Healthy", "Failing", ("success rate 50.0% < 75.0%",), AT)


def test_signature_matches_hmac_sha256_and_verifies() -> None:
    body = encode(TRANSITION)
    header = sign(b"s3cret", body)
    assert header.startswith("sha256=") and len(header) == 7 + 64
    assert verify(b"s3cret", body, header)
    assert not verify(b"other", body, header)
    assert not verify(b"s3cret", body + b" ", header)
    assert not verify(b"s3cret", body, None)


def test_payload_is_stable_and_complete() -> None:
    payload = json.loads(encode(TRANSITION))
    assert payload["health"] == "Failing" and payload["previous"] == "Healthy"
    assert payload["reasons"] == ["success rate 50.0% < 75.0%"]
    assert payload["at"] == "2026-11-21T06:00:00Z"
    assert encode(TRANSITION) == encode(TRANSITION)


@pytest.mark.parametrize(
    ("previous", "current", "notable"),
    [
        (None, "Healthy", False),
        ("Unknown", "Healthy", False),
        (None, "Failing", True),
        ("Healthy", "Healthy", False),
        ("Healthy", "Degraded", True),
        ("Failing", "Healthy", True),
    ],
)
def test_transitions_worth_telling(previous: str | None, current: str, notable: bool) -> None:
    assert is_notable(previous, current) is notable


async def test_webhook_signed_and_retried_on_5xx() -> None:
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(503 if len(seen) == 1 else 204)

    async with httpx.AsyncClient(transport=httpx.MockTransport(handle)) as client:
        await post_webhook(client, "http://receiver/x", b"k", TRANSITION, backoff_seconds=0)
    assert len(seen) == 2
    assert verify(b"k", seen[-1].content, seen[-1].headers[SIGNATURE_HEADER])


async def test_webhook_4xx_is_not_retried() -> None:
    calls = 0

    def handle(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return httpx.Response(400)

    async with httpx.AsyncClient(transport=httpx.MockTransport(handle)) as client:
        with pytest.raises(SinkDeliveryFailed, match="HTTP 400"):
            await post_webhook(client, "http://receiver/x", None, TRANSITION, backoff_seconds=0)
    assert calls == 1


def _report(reason: str = "Synced", health: str = "Healthy", at: datetime = AT) -> PollReport:
    verdict = HealthVerdict(health, ("success rate 95.0% >= 90.0%",), 40, 0.95, 120, 8)
    return PollReport(
        monitor="ns/m",
        repository="o/r",
        at=at,
        reason=reason,
        message="collected 3 runs and 9 jobs",
        synced_runs=3,
        synced_jobs=9,
        runs=10,
        jobs=40,
        watermark=AT - timedelta(minutes=5),
        rate_limit_remaining=4990,
        verdict=verdict,
    )


def test_report_status_fields_and_conditions() -> None:
    doc = status_docs.report_status({}, 3, _report(), AT + timedelta(minutes=5))
    assert doc["health"] == "Healthy" and doc["jobs"] == 40 and doc["runs"] == 10
    assert doc["lastSyncTime"] == "2026-11-21T06:00:00Z"
    assert doc["rateLimitRemaining"] == 4990
    conditions = {c["type"]: c for c in doc["conditions"]}
    assert conditions["Ready"]["status"] == "True"
    assert conditions["Syncing"]["status"] == "False"
    assert conditions["Degraded"]["status"] == "False"
    assert all(c["observedGeneration"] == 3 for c in conditions.values())


def test_health_flip_moves_only_the_degraded_condition() -> None:
    first = status_docs.report_status({}, 1, _report(), AT)
    later = AT + timedelta(hours=1)
    second = status_docs.report_status(first, 1, _report(health="Failing", at=later), later)
    before = {c["type"]: c for c in first["conditions"]}
    after = {c["type"]: c for c in second["conditions"]}
    assert after["Degraded"]["status"] == "True" and after["Degraded"]["reason"] == "Failing"
    assert after["Degraded"]["lastTransitionTime"] == "2026-11-21T07:00:00Z"
    assert after["Ready"]["lastTransitionTime"] == before["Ready"]["lastTransitionTime"]


def test_merge_conditions_keeps_transition_time() -> None:
    before = [
        {"type": "Ready", "status": "True", "reason": "Synced", "message": "", "lastTransitionTime": "T0"}
    ]
    same = status_docs.merge_conditions(before, [status_docs.condition("Ready", True, "Synced", "x", 1)], AT)
    flipped = status_docs.merge_conditions(before, [status_docs.condition("Ready", False, "X", "y", 1)], AT)
    assert same[0]["lastTransitionTime"] == "T0"
    assert flipped[0]["lastTransitionTime"] == "2026-11-21T06:00:00Z"


def test_failed_poll_is_not_ready_and_keeps_last_sync_time() -> None:
    doc = status_docs.report_status({}, 1, _report(reason="RepositoryNotFound"), AT)
    ready = next(c for c in doc["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "False" and ready["reason"] == "RepositoryNotFound"
    assert "lastSyncTime" not in doc


def test_problem_status_says_what_to_do() -> None:
    doc = status_docs.problem_status({}, 2, AT, "TokenSecretNotFound", "Secret ns/github-token not found")
    ready = doc["conditions"][0]
    assert ready == {**ready, "type": "Ready", "status": "False", "reason": "TokenSecretNotFound"}


def test_selector_parsing() -> None:
    import kopf

    assert parse_selector("shard=a, team ,!paused") == {
        "shard": "a",
        "team": kopf.PRESENT,
        "paused": kopf.ABSENT,
    }
    assert parse_selector("") == {}


def test_standalone_loads_the_sample_and_maps_secrets_to_env(tmp_path: Path) -> None:
    entries = load_monitors(ROOT / "deploy/samples/my-repo.yaml")
    assert [e.key for e in entries] == ["default/my-repo"]
    ref = entries[0].spec.token_secret_ref
    assert ref is not None and env_name(ref) == "GITHUB_TOKEN_TOKEN"
    assert resolve_token(entries[0].spec, {"GITHUB_TOKEN_TOKEN": "a", "GITHUB_TOKEN": "b"}) == "a"
    assert resolve_token(entries[0].spec, {"GITHUB_TOKEN": "b"}) == "b"
    assert resolve_token(entries[0].spec, {}) is None


def test_the_github_com_token_is_never_sent_to_an_enterprise_host() -> None:
    entry = load_monitors(ROOT / "deploy/samples/my-repo.yaml")[0]
    enterprise = entry.spec.model_copy(update={"api_url": "https://ghe.example/api/v3"})
    assert resolve_token(enterprise, {"GITHUB_TOKEN": "b"}) is None
    assert resolve_token(enterprise, {"GITHUB_TOKEN_TOKEN": "a", "GITHUB_TOKEN": "b"}) == "a"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            HEAD + "metadata: {name: x}\nspec: {repository: bad}\n",
            "repository",
        ),
        (
            HEAD + "metadata: {name: X_}\nspec: {repository: a/b}\n",
            "DNS",
        ),
        ("kind: Secret\napiVersion: v1\n", "no CiCdMonitor"),
        (": [\n", "document|mapping|expected"),
    ],
)
def test_standalone_config_errors_are_clear(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "monitors.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_monitors(path)


def test_standalone_rejects_duplicate_names(tmp_path: Path) -> None:
    doc = "kind: CiCdMonitor\napiVersion: cipulse.io/v1alpha1\nmetadata: {name: x}\nspec: {repository: a/b}\n"
    path = tmp_path / "monitors.yaml"
    path.write_text(doc + "---\n" + doc)
    with pytest.raises(ConfigError, match="unique"):
        load_monitors(path)


def test_monitor_store_gives_the_same_window_facts_as_the_default_store(tmp_path: Path) -> None:
    """Monitors open SQLite without the columnar projection (memory); the facts must not change."""
    from cipulse.operator.monitor_store import open_monitor_store
    from cipulse.store import open_store
    from cipulse.store.synthetic import generate

    start = AT - timedelta(days=2)
    monitor_store = open_monitor_store(f"sqlite:///{tmp_path}/monitor.db")
    default_store = open_store(f"sqlite:///{tmp_path}/default.db")
    try:
        for batch in generate(seed=5, jobs=600, start=start, days=2):
            monitor_store.upsert(batch.runs, batch.jobs)
            default_store.upsert(batch.runs, batch.jobs)
        for repository in ("octo/alpha", "octo/beta", None):
            window = (repository, AT - timedelta(hours=24), AT)
            assert monitor_store.window_facts(*window) == default_store.window_facts(*window)
        assert monitor_store.count_jobs("octo/alpha") > 0
    finally:
        monitor_store.close()
        default_store.close()


def test_freed_memory_can_be_released_on_glibc() -> None:
    import platform

    from cipulse.operator.monitor_store import _malloc_trim, release_freed_memory

    if platform.libc_ver()[0] == "glibc":
        assert _malloc_trim() is not None
    garbage = [bytes(4096) for _ in range(2000)]
    del garbage
    assert isinstance(release_freed_memory(), bool)


def test_an_insecure_url_has_its_own_condition_reason() -> None:
    """A monitor stored before the CRD's URL rule existed gets Ready=False/InsecureUrl, not InvalidSpec."""
    from pydantic import ValidationError

    from cipulse.operator.handlers import spec_problem_reason
    from cipulse.operator.spec import parse_spec

    with pytest.raises(ValidationError) as insecure:
        parse_spec({"repository": "a/b", "apiUrl": "http://ghe.example.com/api/v3"})
    assert spec_problem_reason(insecure.value) == "InsecureUrl"
    with pytest.raises(ValidationError) as invalid:
        parse_spec({"repository": "not-a-repository"})
    assert spec_problem_reason(invalid.value) == "InvalidSpec"
