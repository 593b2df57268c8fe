"""Dead letters: bad input is kept with its reason, counted, and never stops a stream."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any, TypeVar

import faust
from pydantic import BaseModel

from streams.core.records import DeadLetter, RecordError, dumps, parse
from streams.runtime.metrics import Metrics

__all__ = ["dead_letter", "make_dead_letter", "valid_events", "valid_records"]

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


async def valid_events(
    stream: Any, model: type[_R], *, dlq: faust.TopicT | None, metrics: Metrics, stage: str
) -> AsyncIterator[tuple[_R, Any]]:
    """(record, Kafka message) for each value that parses as ``model``; the rest go to the
    dead-letter topic. The message gives the partition and offset, for idempotent state.

    ``dlq=None`` skips bad values quietly: for a second agent on a topic whose first agent
    already dead-letters them, so one bad record is not reported twice.
    """
    async for event in stream.events():
        msg = event.message
        try:
            record = parse(model, event.value)
        except RecordError as exc:
            if dlq is None:
                continue
            await dead_letter(dlq, metrics, stage=stage, reason=str(exc), payload=event.value,
                              origin=f"{msg.topic}[{msg.partition}]@{msg.offset}")
            continue
        yield record, msg


async def valid_records(
    stream: Any, model: type[_R], *, dlq: faust.TopicT, metrics: Metrics, stage: str
) -> AsyncIterator[_R]:
    """The stream's values parsed as ``model``; the ones that fail go to the dead-letter topic."""
    async for record, _ in valid_events(stream, model, dlq=dlq, metrics=metrics, stage=stage):
        yield record
