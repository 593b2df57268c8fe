"""``POST /ingest``: mentions from any tool that can POST JSON (Zapier, Make, scripts).

The body is one mention object or an array of them, in the Mention schema
(``streams/core/records.py``; ``escucha schema`` prints it). ``source`` defaults to
``connectors.webhook.source``, ``created_at`` to the time it arrives, and ``id`` to a hash of
the text, author and url (not the time: a tool that re-sends a post without ``created_at``
sends the same post, not a new one), so a tool that knows none of them can still post.
Every request needs ``Authorization: Bearer <token>`` (one of ``connectors.webhook.tokens``;
none configured: the endpoint refuses everything).

Answers (JSON):

- 202 ``{"accepted": n, "duplicates": d, "errors": [{"index": i, "error": "..."}]}`` when at
  least one item was taken; bad items are listed by their position and sent to the
  dead-letter topic with the same reason, the good ones go on (per-item, not all-or-nothing).
- 422 the same shape when no item was usable; 400 when the body is not JSON (or nests
  deeper than 32 levels); 401 without a valid token (429 with ``Retry-After`` after five
  wrong ones from an address); 413 above ``max_bytes`` or ``max_items``; 415 unless the
  content type is ``application/json`` or ``application/x-ndjson`` (one mention per line);
  503 with ``Retry-After`` while a starting worker has not yet read the keys published so far
  (it could not tell a repeat; its readiness probe fails meanwhile).

Repeated posts of the same (source, id) are accepted but not published twice (``duplicates``),
whichever worker they reach and across restarts: every worker reads the keys published so
far from ``escucha.ingest.keys`` (streams/web/ingest.py), up to ``dedup_size`` of them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from streams.core.records import Mention, RecordError, parse, stable_id
from streams.core.security import BadRequest, bearer_token, read_json, same_secret

__all__ = ["CONTENT_TYPES", "BodyError", "IngestResult", "WebhookIngestSettings", "authorized",
           "parse_ingest"]

_ERROR_RAW = 4096
_MAX_DEPTH = 32  # a mention is a few levels deep; this leaves room and stops parser bombs
#: The media types accepted, exactly (parameters such as charset aside).
CONTENT_TYPES = ("application/json", "application/x-ndjson")


class WebhookIngestSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    tokens: list[SecretStr] = Field(
        default_factory=list, description="Bearer tokens allowed to POST /ingest; none: the "
        "endpoint refuses every request.")
    source: str = Field(default="webhook", min_length=1, max_length=64,
                        description="Mention.source for items that do not name one.")
    max_bytes: int = Field(default=1_048_576, ge=1024, le=64 * 1_048_576,
                           description="Largest request body accepted.")
    max_items: int = Field(default=1000, ge=1, le=100_000,
                           description="Most mentions in one request.")
    dedup_size: int = Field(default=100_000, ge=0,
                            description="Recent (source, id) pairs every worker remembers "
                            "(from escucha.ingest.keys) to drop repeats.")


def authorized(header: str, tokens: Sequence[bytes]) -> bool:
    """A ``Bearer`` header matching one of ``tokens``, compared in constant time."""
    given = bearer_token(header)
    found = False
    for token in tokens:  # every one compared
        found = same_secret(given, token) or found
    return found


@dataclass
class IngestResult:
    mentions: list[Mention] = field(default_factory=list)
    errors: list[tuple[int, str, str]] = field(default_factory=list)
    """(index in the request, reason, the item as JSON, cut to 4 kB)."""


class BodyError(ValueError):
    """The request body as a whole is unusable (not JSON, wrong shape, too many items)."""

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message)
        self.status = status


def parse_ingest(body: bytes, *, source: str, max_items: int,
                 ndjson: bool = False) -> IngestResult:
    """Each item of ``body`` as a Mention or a per-item error; :class:`BodyError` for the body.

    ``ndjson``: one JSON value per line (blank lines skipped); a line that is not JSON is a
    per-item error, not the whole body's."""
    if ndjson:
        return _parse_lines(body, source=source, max_items=max_items)
    try:
        data = read_json(body, max_bytes=len(body), max_depth=_MAX_DEPTH)
    except BadRequest as exc:
        raise BodyError(str(exc), status=exc.status) from None
    return _items(data if isinstance(data, list) else [data], source=source,
                  max_items=max_items)


def _parse_lines(body: bytes, *, source: str, max_items: int) -> IngestResult:
    values: list[Any] = []
    broken: dict[int, str] = {}
    for line in body.splitlines():
        if not line.strip():
            continue
        try:
            values.append(read_json(line, max_bytes=len(line), max_depth=_MAX_DEPTH))
        except BadRequest as exc:
            broken[len(values)] = str(exc)
            values.append(line.decode("utf-8", "backslashreplace"))
    result = _items(values, source=source, max_items=max_items, broken=broken)
    return result


def _items(items: list[Any], *, source: str, max_items: int,
           broken: dict[int, str] | None = None) -> IngestResult:
    if not items:
        raise BodyError("the body is an empty array; send one mention or more", status=422)
    if len(items) > max_items:
        raise BodyError(f"{len(items)} items in one request; send at most {max_items}",
                        status=413)
    result = IngestResult()
    for index, item in enumerate(items):
        if broken and index in broken:
            result.errors.append((index, broken[index], str(item)[:_ERROR_RAW]))
            continue
        try:
            result.mentions.append(_mention(item, source))
        except (RecordError, RecursionError) as exc:
            reason = str(exc) if isinstance(exc, RecordError) else "nested too deeply"
            result.errors.append((index, reason, _raw(item)))
    return result


def _raw(item: Any) -> str:
    try:
        return json.dumps(item, ensure_ascii=False)[:_ERROR_RAW]
    except (TypeError, ValueError, RecursionError):
        return repr(item)[:_ERROR_RAW]


def _mention(item: Any, source: str) -> Mention:
    if not isinstance(item, dict):
        raise RecordError(f"an item must be a JSON object, not {type(item).__name__}")
    obj = dict(item)
    if obj.get("source") in (None, ""):
        obj["source"] = source
    if obj.get("id") in (None, ""):
        # The same post sent twice gets the same id, so the repeat is dropped: from what it
        # says, who said it and where, never from the time (which defaults to now below).
        author = obj.get("author")
        handle = author.get("handle") if isinstance(author, dict) else author
        obj["id"] = "h" + stable_id(obj.get("text"), handle, obj.get("url"))
    if obj.get("created_at") in (None, ""):
        obj["created_at"] = datetime.now(UTC).isoformat()
    if isinstance(obj.get("author"), str):  # a bare handle is common in no-code tools
        obj["author"] = {"handle": obj["author"]}
    return parse(Mention, obj)


