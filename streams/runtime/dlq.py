"""Dead letters: bad input is kept with its reason, counted, and never stops a stream."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import faust
from pydantic import BaseModel

from streams.core.records import DeadLetter, RecordError, dumps, parse
from streams.runtime.metrics import Metrics

__all__ = ["OnInvalid", "dead_letter", "make_dead_letter", "origin_of", "parsed_events"]

log = logging.getLogger(__name__)
_PAYLOAD_LIMIT = 4096
_R = TypeVar("_R", bound=BaseModel)


def make_dead_letter(*, stage: str, reason: str, payload: bytes | str, origin: str) -> DeadLetter:
    if isinstance(payload, bytes):
        payload = payload[:_PAYLOAD_LIMIT].decode("utf-8", "backslashreplace")
    return DeadLetter(
        stage=stage, reason=reason[:2000], payload=payload[:_PAYLOAD_LIMIT], origin=origin,
        at=datetime.now(UTC),
    )


async def dead_letter(
    topic: faust.TopicT, metrics: Metrics, *, stage: str, reason: str, payload: bytes | str,
    origin: str,
) -> None:
    """Send one bad item to the dead-letter topic with why it was refused."""
    record = make_dead_letter(stage=stage, reason=reason, payload=payload, origin=origin)
    metrics.dead_letters.labels(stage).inc()
    log.warning("dead letter at %s (%s): %s", stage, origin, record.reason)
    await topic.send(key=stage.encode(), value=dumps(record))


#: Told each event whose value does not parse, with the reason; it acknowledges (or holds) it.
OnInvalid = Callable[[Any, str], Awaitable[None]]


async def parsed_events(stream: Any, model: type[_R], *,
                        on_invalid: OnInvalid) -> AsyncIterator[tuple[Any, _R]]:
    """(event, record) for each value of a stream with manual acks (``stream.noack()``) that
    parses as ``model``; the rest go to ``on_invalid``. The event gives the partition and
    offset for idempotent state, and is what the stage acknowledges once it is done."""
    async for event in stream.events():
        try:
            record = parse(model, event.value)
        except RecordError as exc:
            await on_invalid(event, str(exc))
            continue
        yield event, record


def origin_of(event: Any) -> str:
    """Where a Kafka event came from, as dead letters name it: ``topic[partition]@offset``."""
    msg = event.message
    return f"{msg.topic}[{msg.partition}]@{msg.offset}"
