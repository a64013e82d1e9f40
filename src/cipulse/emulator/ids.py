"""Opaque identifiers the way GitHub hands them out: base64 global node ids and connection cursors."""

from __future__ import annotations

import base64
import binascii


def node_id(type_name: str, key: int | str) -> str:
    """GitHub's legacy global id format, e.g. base64("012:WorkflowRun123"): opaque to clients."""
    raw = f"0{len(type_name)}:{type_name}{key}"
    return base64.b64encode(raw.encode()).decode()


def parse_node_id(value: str) -> tuple[str, str] | None:
    """(type name, key) of a global id this emulator issued, None for anything else."""
    try:
        raw = base64.b64decode(value.encode(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    prefix, sep, rest = raw.partition(":")
    if not sep or not prefix.isdigit():
        return None
    length = int(prefix)
    if length <= 0 or len(rest) <= length:
        return None
    return rest[:length], rest[length:]


def cursor(key: int) -> str:
    return base64.b64encode(f"cursor:v2:{key}".encode()).decode()


def parse_cursor(value: str) -> int | None:
    try:
        raw = base64.b64decode(value.encode(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    if not raw.startswith("cursor:v2:"):
        return None
    try:
        return int(raw[len("cursor:v2:") :])
    except ValueError:
        return None
