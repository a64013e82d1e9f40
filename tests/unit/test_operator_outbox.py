"""The durable outbox and the notifier over it: transitions survive a restart, keep their delivery ids,
are signed at send time, and the outbox holds no secret. Also the opt-in labels' wording and the
standalone loader's URL rule (the pure halves of the two fixes; the real-cluster halves are in
tests/integration/test_operator_secrets.py and test_operator_outbox.py)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from cipulse.operator.health import HealthVerdict
from cipulse.operator.monitor_store import default_outbox_path
from cipulse.operator.notify import Notifier, sink_address
from cipulse.operator.outbox import Outbox
from cipulse.operator.report import PollReport
from cipulse.operator.secret_labels import GITHUB_TOKEN, SINK_SECRET
from cipulse.operator.sinks import (
    DELIVERY_HEADER,
    SIGNATURE_HEADER,
    HealthTransition,
    SinkDeliveryFailed,
    encode,
    post_signed,
    verify,
)
from cipulse.operator.spec import MonitorSpec, SecretKeyRef, Sink, WebhookSink, parse_spec
from cipulse.operator.url_policy import credentials_may_go_to
from cipulse.standalone.config import ConfigError, load_monitors

AT = datetime(2026, 11, 21, 6, 0, tzinfo=UTC)
MONITOR = "ns/m"
SECRET = "hmac-key-that-must-never-be-stored"
TRANSITION = HealthTransition(MONITOR, "o/r", "Healthy", "Failing", ("success rate 50.0% < 75.0%",), AT)


def _sinks(*urls: str) -> list[Sink]:
    hooks = [{"webhook": {"url": url, "secretRef": {"name": "hook", "key": "secret"}}} for url in urls]
    return list(parse_spec({"repository": "o/r", "sinks": hooks}).sinks)


def _report(health: str, transition: HealthTransition | None) -> PollReport:
    verdict = HealthVerdict(health, ("why",), 40, 0.5, 120, 8)
    return PollReport(MONITOR, "o/r", AT, "Synced", "", verdict=verdict, transition=transition)


class Receiver:
    """An httpx transport standing in for a receiver that can be switched off and on."""

    def __init__(self) -> None:
        self.up = False
        self.accepted: list[httpx.Request] = []

    def handle(self, request: httpx.Request) -> httpx.Response:
        if not self.up:
            raise httpx.ConnectError("connection refused", request=request)
        self.accepted.append(request)
        return httpx.Response(204)


async def _secret(ref: SecretKeyRef) -> str:
    return SECRET


def test_record_is_durable_and_remembers_health(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    outbox = Outbox(path)
    recorded = outbox.record(
        MONITOR, "Failing", ("id-1", b'{"a":1}'), ["webhook https://a", "webhook https://b"]
    )
    assert (recorded.queued, recorded.refused) == (2, 0)
    outbox.close()

    reopened = Outbox(path)
    assert reopened.last_health(MONITOR) == "Failing"
    pending = reopened.pending(MONITOR)
    assert [(p.delivery_id, p.sink, p.body) for p in pending] == [
        ("id-1", "webhook https://a", b'{"a":1}'),
        ("id-1", "webhook https://b", b'{"a":1}'),
    ]
    again = reopened.record(MONITOR, "Failing", ("id-1", b'{"a":1}'), ["webhook https://a"])
    assert again.queued == 0 and reopened.count(MONITOR) == 2, "the same delivery is never queued twice"


def test_a_full_outbox_refuses_a_whole_transition_but_records_health(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox.db", capacity=3)
    outbox.record(MONITOR, "Failing", ("id-1", b"{}"), ["webhook https://a", "webhook https://b"])
    refused = outbox.record(MONITOR, "Healthy", ("id-2", b"{}"), ["webhook https://a", "webhook https://b"])
    assert (refused.queued, refused.refused) == (0, 2)
    assert [p.delivery_id for p in outbox.pending(MONITOR)] == ["id-1", "id-1"]
    assert outbox.last_health(MONITOR) == "Healthy"
    assert not outbox.full
    outbox.record("ns/other", "Failing", ("id-3", b"{}"), ["webhook https://a"])
    assert outbox.full


def test_removed_sinks_and_deleted_monitors_are_dropped(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox.db")
    outbox.record(MONITOR, "Failing", ("id-1", b"{}"), ["webhook https://a", "webhook https://b"])
    outbox.record("ns/other", "Failing", ("id-2", b"{}"), ["webhook https://a"])
    assert outbox.discard_other_sinks(MONITOR, {"webhook https://b"}) == 1
    assert [p.sink for p in outbox.pending(MONITOR)] == ["webhook https://b"]
    assert outbox.forget(MONITOR) == 1
    assert outbox.last_health(MONITOR) is None and outbox.count() == 1


async def test_delivery_survives_a_restart_with_its_id_and_a_fresh_signature(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    receiver = Receiver()
    sinks = _sinks("http://receiver/hook")
    async with httpx.AsyncClient(transport=httpx.MockTransport(receiver.handle)) as client:
        first = Notifier(client, _secret, Outbox(path), MONITOR)
        assert first.record(_report("Failing", TRANSITION), sinks) is not None
        down = await first.flush(sinks)
        assert not down.ok and down.reason == "DeliveryFailed" and down.pending == 1
        assert TRANSITION.delivery_id in down.message
        first.outbox.close()  # the process dies here; nothing else is kept

        receiver.up = True
        restarted = Notifier(client, _secret, Outbox(path), MONITOR)
        assert restarted.last_health == "Failing"
        state = await restarted.flush(sinks)
    assert state.ok and state.pending == 0
    [request] = receiver.accepted
    assert request.headers[DELIVERY_HEADER] == TRANSITION.delivery_id
    assert json.loads(request.content)["delivery"] == TRANSITION.delivery_id
    assert verify(SECRET.encode(), request.content, request.headers[SIGNATURE_HEADER])
    for file in tmp_path.iterdir():  # database, WAL and shared-memory files alike
        assert SECRET.encode() not in file.read_bytes()


async def test_a_failing_sink_keeps_its_order_and_does_not_block_others(tmp_path: Path) -> None:
    broken, working = "http://broken/hook", "http://working/hook"
    seen: list[str] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(503 if "broken" in str(request.url) else 204)

    sinks = _sinks(broken, working)
    later = replace(TRANSITION, previous="Failing", current="Healthy", at=AT.replace(hour=7))
    async with httpx.AsyncClient(transport=httpx.MockTransport(handle)) as client:
        notifier = Notifier(client, _secret, Outbox(tmp_path / "outbox.db"), MONITOR)
        notifier.record(_report("Failing", TRANSITION), sinks)
        notifier.record(_report("Healthy", later), sinks)
        state = await notifier.flush(sinks)
    assert seen.count(broken) == 3, "one delivery tried (with its retries), the later one waits behind it"
    assert seen.count(working) == 2
    pending = notifier.outbox.pending(MONITOR)
    assert [p.delivery_id for p in pending] == [TRANSITION.delivery_id, later.delivery_id]
    assert {p.sink for p in pending} == {sink_address(sinks[0])}
    assert state.reason == "DeliveryFailed" and state.pending == 2


async def test_an_unusable_secret_names_its_reason_and_keeps_the_delivery(tmp_path: Path) -> None:
    class NotLabelled(LookupError):
        reason = SINK_SECRET.unlabelled_reason

    async def refuse(ref: SecretKeyRef) -> str:
        raise NotLabelled(SINK_SECRET.not_labelled("ns", ref.name))

    sinks = _sinks("http://receiver/hook")
    async with httpx.AsyncClient(transport=httpx.MockTransport(Receiver().handle)) as client:
        notifier = Notifier(client, refuse, Outbox(tmp_path / "outbox.db"), MONITOR)
        notifier.record(_report("Failing", TRANSITION), sinks)
        state = await notifier.flush(sinks)
    assert (state.ok, state.reason, state.pending) == (False, "SinkSecretNotLabelled", 1)
    assert "Secret ns/hook is not labelled cipulse.io/sink-secret=true" in state.message


async def test_outbox_full_is_the_sink_state(tmp_path: Path) -> None:
    sinks = _sinks("http://receiver/hook")
    async with httpx.AsyncClient(transport=httpx.MockTransport(Receiver().handle)) as client:
        notifier = Notifier(client, _secret, Outbox(tmp_path / "outbox.db", capacity=1), MONITOR)
        notifier.record(_report("Failing", TRANSITION), sinks)
        later = replace(TRANSITION, previous="Failing", current="Healthy", at=AT.replace(hour=7))
        recorded = notifier.record(_report("Healthy", later), sinks)
        state = await notifier.flush(sinks)
    assert recorded is not None and recorded.refused == 1
    assert state.reason == "OutboxFull" and "outbox full" in state.message


async def test_an_unchanged_health_is_not_rewritten(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox.db")
    async with httpx.AsyncClient() as client:
        notifier = Notifier(client, _secret, outbox, MONITOR)
        assert notifier.record(_report("Healthy", None), []) is not None
        assert notifier.record(_report("Healthy", None), []) is None
    assert outbox.last_health(MONITOR) == "Healthy"


def test_payload_in_the_outbox_is_the_signed_body() -> None:
    assert json.loads(encode(TRANSITION))["delivery"] == TRANSITION.delivery_id


def test_opt_in_labels_follow_the_group_and_say_how_to_fix() -> None:
    assert GITHUB_TOKEN.label == "cipulse.io/github-token" and SINK_SECRET.label == "cipulse.io/sink-secret"
    assert GITHUB_TOKEN.offered({"cipulse.io/github-token": "true"})
    assert not GITHUB_TOKEN.offered({"cipulse.io/github-token": "yes"})
    assert not GITHUB_TOKEN.offered({"cipulse.io/sink-secret": "true"})
    assert not GITHUB_TOKEN.offered(None)
    token_help = MonitorSpec.model_fields["token_secret_ref"].description or ""
    hook_help = WebhookSink.model_fields["secret_ref"].description or ""
    assert f"{GITHUB_TOKEN.label}=true" in token_help  # what `kubectl explain` shows
    assert f"{SINK_SECRET.label}=true" in hook_help
    message = GITHUB_TOKEN.not_labelled("team-a", "gh")
    assert message.startswith(
        "Secret team-a/gh is not labelled cipulse.io/github-token=true for use by cipulse"
    )
    assert message.endswith("kubectl -n team-a label secret gh cipulse.io/github-token=true")


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://ghe.example.com/api/v3", True),
        ("http://127.0.0.1:8080/api/v3", True),
        ("http://localhost/api/v3", True),
        ("http://[::1]:9/api/v3", True),
        ("http://ghe.example.com/api/v3", False),
        ("http://127.0.0.1@evil.example/", False),
        ("http://evil.example@127.0.0.1/", True),
        ("http://127.0.0.1.nip.io/", False),
        ("ftp://127.0.0.1/", False),
    ],
)
def test_credentials_only_over_tls_or_loopback(url: str, allowed: bool) -> None:
    assert credentials_may_go_to(url) is allowed


def test_cipulse_up_refuses_a_plain_http_enterprise_url(tmp_path: Path) -> None:
    """Standalone takes tokens from the environment (no labels to check) but sends them the same way."""
    path = tmp_path / "monitors.yaml"
    path.write_text(
        "apiVersion: cipulse.io/v1alpha1\nkind: CiCdMonitor\nmetadata: {name: ghe}\n"
        "spec: {repository: a/b, apiUrl: 'http://ghe.example.com/api/v3'}\n"
    )
    with pytest.raises(ConfigError, match=r"spec.apiUrl: apiUrl must use https:// because the GitHub token"):
        load_monitors(path)


@pytest.mark.parametrize("bad", ["http://receiver:port/hook", "http://xn--/hook"])
async def test_a_webhook_url_httpx_cannot_use_fails_that_sink_only(tmp_path: Path, bad: str) -> None:
    """The spec's URL pattern admits URLs httpx refuses (a non-numeric or out-of-range port, a bad IDNA
    label); that is one sink's delivery failure, not an exception that aborts the flush for every sink."""
    receiver = Receiver()
    receiver.up = True
    sinks = _sinks(bad, "http://working/hook")
    async with httpx.AsyncClient(transport=httpx.MockTransport(receiver.handle)) as client:
        notifier = Notifier(client, _secret, Outbox(tmp_path / "outbox.db"), MONITOR)
        notifier.record(_report("Failing", TRANSITION), sinks)
        state = await notifier.flush(sinks)
    assert [str(r.url) for r in receiver.accepted] == ["http://working/hook"]
    assert (state.ok, state.reason, state.pending) == (False, "DeliveryFailed", 1)
    assert [p.sink for p in notifier.outbox.pending(MONITOR)] == [sink_address(sinks[0])]


async def test_an_out_of_range_port_is_a_delivery_failure() -> None:
    """A real connection attempt to port 99999 fails inside the network stack with an exception group."""
    async with httpx.AsyncClient(timeout=5) as client:
        with pytest.raises(SinkDeliveryFailed, match="refused delivery d-1"):
            await post_signed(client, "http://127.0.0.1:99999/hook", None, b"{}", "d-1", backoff_seconds=0)


async def test_sink_url_credentials_stay_out_of_status_and_logs(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A receiver URL may carry `user:password@` (basic auth); like store and API URLs it is redacted
    wherever it is shown: SinksReady's message (status, Events) and the operator's log."""
    password = "basic-auth-password"

    authorizations: list[str] = []

    def handle(request: httpx.Request) -> httpx.Response:
        authorizations.append(request.headers.get("Authorization", ""))
        return httpx.Response(503 if "broken" in str(request.url) else 204)

    sinks = _sinks(f"https://hook:{password}@broken/hook", f"https://hook:{password}@working/hook")
    caplog.set_level("DEBUG")
    async with httpx.AsyncClient(transport=httpx.MockTransport(handle)) as client:
        notifier = Notifier(client, _secret, Outbox(tmp_path / "outbox.db"), MONITOR)
        notifier.record(_report("Failing", TRANSITION), sinks)
        state = await notifier.flush(sinks)
    assert state.reason == "DeliveryFailed" and "https://***@broken/hook" in state.message
    assert password not in state.message and all(password not in problem for problem in state.problems)
    assert "delivered" in caplog.text and password not in caplog.text
    assert set(authorizations) == {httpx.BasicAuth("hook", password)._auth_header}, "still sent as basic auth"


def test_a_corrupt_outbox_file_is_a_clear_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    path.write_bytes(b"this is not SQLite at all" * 200)
    with pytest.raises(ValueError, match=rf"outbox {path} is not a readable SQLite database"):
        Outbox(path)
    assert path.read_bytes() == b"this is not SQLite at all" * 200, "nothing is overwritten"


def test_an_outbox_path_that_cannot_be_opened_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    with pytest.raises(ValueError, match=rf"cannot open the outbox {blocker / 'outbox.db'}: "):
        Outbox(blocker / "outbox.db")
    (tmp_path / "a-directory.db").mkdir()
    with pytest.raises(ValueError, match=r"cannot open the outbox .*a-directory\.db: "):
        Outbox(tmp_path / "a-directory.db")


def test_default_outbox_is_per_store(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Processes on one machine using different remote stores (or the same monitor names) must not share
    one outbox: a flush drops the deliveries to sinks its own spec lacks, and the health it remembers
    decides whether a transition is announced at all."""
    monkeypatch.delenv("CIPULSE_OUTBOX_PATH", raising=False)
    monkeypatch.setenv("CIPULSE_SPOOL_PATH", str(tmp_path / "spool.db"))
    first = default_outbox_path("https://search-a.example:9200")
    assert first.parent == tmp_path
    assert first == default_outbox_path("https://search-a.example:9200")
    assert first != default_outbox_path("https://search-b.example:9200")
    assert first != default_outbox_path("sqlite:///:memory:")
    assert default_outbox_path("https://u:pw@search-a.example:9200") == first, "the same store, any user"
    assert default_outbox_path(f"sqlite:///{tmp_path}/cipulse.db") == tmp_path / "cipulse-outbox.db"
    monkeypatch.setenv("CIPULSE_OUTBOX_PATH", str(tmp_path / "explicit.db"))
    assert default_outbox_path("https://search-a.example:9200") == tmp_path / "explicit.db"
