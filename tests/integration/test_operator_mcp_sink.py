"""The MCP sink calls a tool on a real MCP server (the official SDK over streamable HTTP)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import uvicorn
from mcp.server.mcpserver import MCPServer

from cipulse.operator.mcp_sink import call_tool
from cipulse.operator.sinks import HealthTransition, SinkDeliveryFailed

pytestmark = pytest.mark.integration

TRANSITION = HealthTransition(
    "ns/m", "o/r", "Healthy", "Degraded", ("queue p95 700s >= 600s",), datetime(2026, 11, 21, tzinfo=UTC)
)


@pytest.fixture
def mcp_server() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    received: list[dict[str, Any]] = []
    server = MCPServer("health-receiver")

    @server.tool()
    def record_health(
        event: str,
        monitor: str,
        repository: str,
        previous: str,
        health: str,
        reasons: list[str],
        at: str,
        delivery: str,
    ) -> str:
        """Record one cipulse health transition."""
        received.append({"monitor": monitor, "previous": previous, "health": health, "reasons": reasons})
        return "recorded"

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = uvicorn.Config(server.streamable_http_app(), host="127.0.0.1", port=port, log_level="warning")
    runner = uvicorn.Server(config)
    thread = threading.Thread(target=runner.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not runner.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert runner.started
    try:
        yield f"http://127.0.0.1:{port}/mcp", received
    finally:
        runner.should_exit = True
        thread.join(timeout=10)


async def test_transition_reaches_the_tool(mcp_server: tuple[str, list[dict[str, Any]]]) -> None:
    url, received = mcp_server
    await call_tool(url, "record_health", TRANSITION.payload(), None)
    assert received == [
        {
            "monitor": "ns/m",
            "previous": "Healthy",
            "health": "Degraded",
            "reasons": ["queue p95 700s >= 600s"],
        }
    ]


async def test_unknown_tool_is_a_failed_delivery(mcp_server: tuple[str, list[dict[str, Any]]]) -> None:
    url, received = mcp_server
    with pytest.raises(SinkDeliveryFailed):
        await call_tool(url, "no_such_tool", TRANSITION.payload(), None)
    assert received == []


async def test_url_credentials_are_sent_but_never_logged_or_reported(
    mcp_server: tuple[str, list[dict[str, Any]]], caplog: pytest.LogCaptureFixture
) -> None:
    """`user:password@` in the sink URL authenticates (basic auth) but, like every credential in a URL,
    stays out of logs (the HTTP client logs each request's URL) and out of failure messages."""
    url, received = mcp_server
    secret_url = url.replace("http://", "http://sink:url-password@")
    caplog.set_level("DEBUG")
    await call_tool(secret_url, "record_health", TRANSITION.payload(), None)
    assert len(received) == 1
    with pytest.raises(SinkDeliveryFailed) as failed:
        await call_tool(secret_url, "no_such_tool", TRANSITION.payload(), None)
    assert "http://***@127.0.0.1" in str(failed.value) and "url-password" not in str(failed.value)
    assert "HTTP Request" in caplog.text and "url-password" not in caplog.text
