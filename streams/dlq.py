"""Dead letters: bad input is kept with its reason, counted, and never stops a stream."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import faust

from streams.metrics import Metrics
from streams.records import DeadLetter, dumps

__all__ = ["dead_letter", "make_dead_letter"]

log = logging.getLogger(__name__)
_PAYLOAD_LIMIT = 4096


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
