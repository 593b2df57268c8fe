"""Handle a batch of records so that nothing is acknowledged that was not done.

Faust acks the events of a batch in its iterator's ``finally``, whatever the handler did: a
model that raised or a send that failed lost the batch with no error anywhere, and no hole
for the hole watch to find. A stage that takes events without acks (``noack_take``) hands each
batch to :func:`handle_batch`, which acknowledges its events only once they were handled or
dead-lettered:

1. the handler is tried ``attempts`` times, waiting ``backoff_s``, then twice that, …;
2. still failing, each event is tried alone (same attempts), so one poison record cannot stall
   its partition for ever nor take its neighbours down with it;
3. an event that fails alone goes to the dead-letter topic with the exception as its reason,
   then is acknowledged.

A stop (the task cancelled) or a dead letter that cannot be sent acknowledges nothing more:
the consumer commits no further than the lowest unacknowledged offset, so those events are
read again by whichever worker reads the partition next. A handler may therefore run twice
on the same record (its sends repeat): the counting stages recognise repeated mentions by
their key.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["BatchPolicy", "handle_batch"]

log = logging.getLogger(__name__)

Handler = Callable[[Sequence[Any]], Awaitable[None]]
Ack = Callable[[Any], Awaitable[Any]]
#: Dead-letters one event: (event, reason).
Reject = Callable[[Any, str], Awaitable[None]]


@dataclass(frozen=True)
class BatchPolicy:
    attempts: int = 3
    backoff_s: float = 1.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f"attempts must be at least 1, got {self.attempts}")
        if self.backoff_s < 0:
            raise ValueError(f"backoff_s must not be negative, got {self.backoff_s}")


async def handle_batch(
    events: Sequence[Any], handle: Handler, *, ack: Ack, reject: Reject, stage: str,
    policy: BatchPolicy = BatchPolicy(), on_retry: Callable[[], None] = lambda: None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> int:
    """Handle ``events`` (see the module's docstring); how many were dead-lettered."""
    error = await _attempts(events, handle, policy, stage, on_retry, sleep)
    if error is None:
        await _ack_all(events, ack)
        return 0
    if len(events) == 1:
        await reject(events[0], _reason(error, policy))
        await ack(events[0])
        return 1
    log.warning("%s: a batch of %d failed %d times (%s); trying each record alone", stage,
                len(events), policy.attempts, _describe(error))
    rejected = 0
    for event in events:
        alone = await _attempts([event], handle, policy, stage, on_retry, sleep)
        if alone is not None:
            await reject(event, _reason(alone, policy))
            rejected += 1
        await ack(event)
    return rejected


async def _attempts(events: Sequence[Any], handle: Handler, policy: BatchPolicy, stage: str,
                    on_retry: Callable[[], None],
                    sleep: Callable[[float], Awaitable[None]]) -> BaseException | None:
    """None once ``handle(events)`` returned; the last exception after every attempt failed.
    A cancellation is not caught: it goes up with nothing acknowledged."""
    last: BaseException | None = None
    for attempt in range(policy.attempts):
        if attempt:
            on_retry()
            await sleep(policy.backoff_s * 2 ** (attempt - 1))
        try:
            await handle(events)
        except Exception as exc:
            last = exc
            log.warning("%s: handling %d record(s) failed (attempt %d of %d): %s", stage,
                        len(events), attempt + 1, policy.attempts, _describe(exc))
            continue
        return None
    return last


async def _ack_all(events: Sequence[Any], ack: Ack) -> None:
    for event in events:
        await ack(event)


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:500]


def _reason(exc: BaseException, policy: BatchPolicy) -> str:
    return f"handler failed {policy.attempts} times on this record alone: {_describe(exc)}"
