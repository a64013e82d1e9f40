"""The MCP sink: call a tool on a remote MCP server (streamable HTTP) with a health transition."""

from __future__ import annotations

from typing import Any

from cipulse.operator.sinks import SinkDeliveryFailed, split_credentials
from cipulse.redact import redact_url


async def call_tool(url: str, tool: str, arguments: dict[str, Any], bearer: str | None) -> None:
    """One short MCP session per delivery: transitions are rare, and a long-lived session would need care."""
    import httpx2
    from mcp.client.session import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
    shown = redact_url(url)  # messages go to status, Events and logs
    target, auth = split_credentials(url)  # the MCP client and httpx2 log the URL they are given
    try:
        async with (
            httpx2.AsyncClient(headers=headers, timeout=30, auth=auth) as http,
            streamable_http_client(target, http_client=http) as streams,
            ClientSession(streams[0], streams[1]) as session,
        ):
            await session.initialize()
            result = await session.call_tool(tool, arguments)
    except Exception as error:  # the MCP stack raises many kinds; all mean "not delivered"
        raise SinkDeliveryFailed(f"MCP tool {tool} at {shown} failed: {type(error).__name__}") from error
    if result.is_error:
        raise SinkDeliveryFailed(f"MCP tool {tool} at {shown} reported an error")
