"""Release mentions at the pace their event times suggest, for the simulator and for replay.

The schedule is anchored once (first mention, first clock reading) and every later release
time is computed from that anchor, so rounding and slow consumers never accumulate drift.
Waits are *bounded*: a quiet night in a history file does not stall a replay for hours, and a
consumer that fell far behind does not get the backlog as one burst afterwards.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from datetime import datetime

from streams.core.records import Mention

__all__ = ["Clock", "Sleep", "paced"]

Clock = Callable[[], float]
"""Monotonic seconds, e.g. :func:`time.monotonic`."""
Sleep = Callable[[float], Awaitable[None]]
"""An awaitable sleep in seconds, e.g. :func:`asyncio.sleep`."""

# Unpaced, an async generator over an in-memory iterable never awaits anything; hand the loop
# back now and then so heartbeats and other tasks keep running during a flat-out replay.
_YIELD_EVERY = 1000


async def paced(
    mentions: Iterable[Mention],
    *,
    speed: float | None,
    clock: Clock = time.monotonic,
    sleep: Sleep = asyncio.sleep,
    max_wait: float | None = 10.0,
) -> AsyncIterator[Mention]:
    """Yield ``mentions`` so event time advances ``speed`` times faster than wall time.

    ``speed=None`` yields as fast as the consumer takes them. ``speed=1`` is real time,
    ``speed=60`` plays an hour in a minute. Release times follow the latest ``created_at`` seen,
    so an out-of-order mention goes out at once rather than rewinding the schedule.
    ``max_wait`` (seconds of wall time, ``None`` for no bound) caps any single wait and how far
    behind schedule the stream may fall; beyond it the schedule is shifted, not caught up.
    The iterable is pulled one mention at a time, so it may be endless.
    """
    if speed is not None and not (speed > 0 and not math.isnan(speed)):
        raise ValueError(f"speed must be > 0 or None, got {speed}")
    if max_wait is not None and not max_wait >= 0:
        raise ValueError(f"max_wait must be >= 0 or None, got {max_wait}")
    anchor_wall = 0.0
    anchor_event: datetime | None = None
    latest: datetime | None = None
    for n, mention in enumerate(mentions, 1):
        if speed is None:
            if n % _YIELD_EVERY == 0:
                await sleep(0)
            yield mention
            continue
        event = mention.created_at
        if anchor_event is None or latest is None:
            anchor_event, latest, anchor_wall = event, event, clock()
        elif event > latest:
            latest = event
        target = anchor_wall + (latest - anchor_event).total_seconds() / speed
        delay = target - clock()
        if max_wait is not None:
            if delay > max_wait:  # long gap in event time: skip the part beyond the cap
                anchor_wall -= delay - max_wait
                delay = max_wait
            elif delay < -max_wait:  # consumer fell far behind: forgive, don't burst
                anchor_wall -= delay
                delay = 0.0
        if delay > 0:
            await sleep(delay)
        yield mention
