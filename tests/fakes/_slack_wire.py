"""Slack Web API wire details for ``tests.fakes.slack``: request parsing, Slack's validation
limits and error codes, and the message shape Slack returns to a bot token."""

from __future__ import annotations

import base64
import binascii
import copy
import json
from decimal import Decimal, InvalidOperation
from typing import Any

from aiohttp import web

__all__ = [
    "APP_ID",
    "BOT_ID",
    "TEAM_ID",
    "USER_ID",
    "WireError",
    "bearer_token",
    "check_blocks",
    "check_metadata",
    "check_text",
    "decode_cursor",
    "encode_cursor",
    "message_json",
    "read_params",
    "truthy",
    "ts_micros",
]

TEAM_ID, USER_ID, BOT_ID, APP_ID = "T0001", "U0001", "B0001", "A0001"
_MAX_TEXT = 40_000
_MAX_BLOCKS = 50
_MAX_SECTION_TEXT = 3000
_MAX_FIELDS = 10
_MAX_FIELD_TEXT = 2000
_MAX_HEADER_TEXT = 150
# Form-encoded callers send these as JSON strings; Slack decodes them server-side.
_JSON_FIELDS = {
    "blocks": "invalid_blocks_format",
    "attachments": "invalid_attachments",
    "metadata": "invalid_metadata_format",
}


class WireError(Exception):
    """A Slack API error: answered as HTTP 200 ``{"ok": false, "error": ..., **extra}``."""

    def __init__(self, error: str, **extra: Any) -> None:
        super().__init__(error)
        self.error = error
        self.extra = extra


async def read_params(request: web.Request) -> tuple[dict[str, Any], WireError | None]:
    """Query string merged with a JSON or form body; the error is reported after recording."""
    params: dict[str, Any] = dict(request.query)
    error: WireError | None = None
    if request.content_type == "application/json":
        raw = await request.read()
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            body = None
        if isinstance(body, dict):
            params.update(body)
        else:
            error = WireError("invalid_json")
    elif request.body_exists:
        params.update(dict(await request.post()))
    for key, code in _JSON_FIELDS.items():
        if isinstance(params.get(key), str):
            try:
                params[key] = json.loads(params[key])
            except ValueError:
                error = error or WireError(code)
    return params, error


def bearer_token(request: web.Request) -> str | None:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    return value.strip() or None


def message_json(
    message: dict[str, Any], *, metadata: bool, siblings: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """A stored message as Slack returns it to a bot token; ``siblings`` adds thread counts."""
    out: dict[str, Any] = {
        "type": "message",
        "user": USER_ID,
        "bot_id": BOT_ID,
        "app_id": APP_ID,
        "team": TEAM_ID,
        "text": message["text"],
        "ts": message["ts"],
    }
    if message["blocks"]:
        out["blocks"] = copy.deepcopy(message["blocks"])
    if message["thread_ts"]:
        out["thread_ts"] = message["thread_ts"]
        if message["reply_broadcast"]:
            out["subtype"] = "thread_broadcast"
    replies = [m["ts"] for m in siblings or [] if m["thread_ts"] == message["ts"] != m["ts"]]
    if replies:
        out.update(thread_ts=message["ts"], reply_count=len(replies), latest_reply=max(replies))
    if message["edited"]:
        out["edited"] = dict(message["edited"])
    if metadata and message["metadata"]:
        out["metadata"] = copy.deepcopy(message["metadata"])
    return out


def check_text(text: Any) -> None:
    if isinstance(text, str) and len(text) > _MAX_TEXT:
        raise WireError("msg_too_long")


def check_blocks(blocks: Any) -> None:
    """Block Kit limits Slack enforces, answered the way Slack does (errors + json-pointers)."""
    if blocks is None:
        return
    if not isinstance(blocks, list):
        raise WireError("invalid_blocks_format")
    errors: list[str] = []
    if len(blocks) > _MAX_BLOCKS:
        errors.append(f"no more than {_MAX_BLOCKS} items allowed [json-pointer:/blocks]")
    for i, block in enumerate(blocks):
        where = f"/blocks/{i}"
        if not isinstance(block, dict) or not isinstance(block.get("type"), str):
            errors.append(f"missing required field: type [json-pointer:{where}]")
            continue
        text = block.get("text")
        text_value = text.get("text") if isinstance(text, dict) else None
        if block["type"] == "section":
            fields = block.get("fields") or []
            if text_value is None and not fields:
                errors.append(f"must provide either text or fields [json-pointer:{where}]")
            errors += _length_errors(text_value, _MAX_SECTION_TEXT, f"{where}/text/text")
            if len(fields) > _MAX_FIELDS:
                errors.append(
                    f"no more than {_MAX_FIELDS} items allowed [json-pointer:{where}/fields]"
                )
            for j, fld in enumerate(fields):
                value = fld.get("text") if isinstance(fld, dict) else None
                errors += _length_errors(value, _MAX_FIELD_TEXT, f"{where}/fields/{j}/text")
        elif block["type"] == "header":
            errors += _length_errors(text_value, _MAX_HEADER_TEXT, f"{where}/text/text")
    if errors:
        messages = [f"[ERROR] {e}" for e in errors]
        raise WireError("invalid_blocks", errors=errors, response_metadata={"messages": messages})


def _length_errors(value: Any, limit: int, pointer: str) -> list[str]:
    if not isinstance(value, str):
        return []
    if not value:
        return [f"must be more than 0 characters [json-pointer:{pointer}]"]
    if len(value) > limit:
        return [f"must be less than {limit + 1} characters [json-pointer:{pointer}]"]
    return []


def check_metadata(metadata: Any) -> dict[str, Any] | None:
    """Message metadata must be ``{event_type: str, event_payload: object}``; ``{}`` means none."""
    if metadata is None or metadata == {}:
        return None
    if (
        not isinstance(metadata, dict)
        or not isinstance(metadata.get("event_type"), str)
        or not isinstance(metadata.get("event_payload"), dict)
    ):
        raise WireError("invalid_metadata_format")
    return {"event_type": metadata["event_type"], "event_payload": metadata["event_payload"]}


def truthy(value: Any) -> bool:
    """Slack booleans arrive as JSON true, ``"1"``/``"0"`` (slack_sdk's GET params) or text."""
    if isinstance(value, str):
        return value.lower() in ("1", "true")
    return value is True or value == 1


def ts_micros(value: Any, error: str, *, default: int) -> int:
    if value in (None, ""):
        return default
    try:
        return int(Decimal(str(value)) * 1_000_000)
    except InvalidOperation:
        raise WireError(error) from None


def encode_cursor(ts_us: int) -> str:
    # Slack's cursors are opaque base64; this mirrors their "next_ts:<micros>" shape.
    return base64.b64encode(f"next_ts:{ts_us}".encode()).decode()


def decode_cursor(cursor: Any) -> int | None:
    if not cursor:
        return None
    try:
        prefix, _, value = base64.b64decode(str(cursor), validate=True).decode().partition(":")
        if prefix == "next_ts":
            return int(value)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        pass
    raise WireError("invalid_cursor")
