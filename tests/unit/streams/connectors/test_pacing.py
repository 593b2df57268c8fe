"""paced(): event time mapped onto wall time, with a fake clock so nothing really sleeps."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta

import pytest

from streams.connectors.pacing import paced
from streams.core.records import Author, Mention

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


class FakeClock:
    """A monotonic clock that only moves when someone sleeps (or the test says so)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def _mentions(*offsets: float) -> list[Mention]:
    return [Mention(source="t", id=str(i), author=Author(handle="a"), text="x",
                    created_at=T0 + timedelta(seconds=s)) for i, s in enumerate(offsets)]


async def _drain(stream: AsyncIterator[Mention], clock: FakeClock) -> list[tuple[str, float]]:
    return [(m.id, clock.now) async for m in stream]


async def test_event_time_runs_speed_times_faster_than_wall_time() -> None:
    clock = FakeClock()
    out = await _drain(paced(_mentions(0, 10, 10, 30), speed=10, clock=clock,
                             sleep=clock.sleep), clock)
    assert out == [("0", 1000.0), ("1", 1001.0), ("2", 1001.0), ("3", 1003.0)]
    assert clock.sleeps == pytest.approx([1.0, 2.0])


async def test_schedule_does_not_drift_when_the_consumer_is_slow() -> None:
    clock = FakeClock()
    released = []
    async for m in paced(_mentions(0, 1, 2, 3), speed=1, clock=clock, sleep=clock.sleep):
        released.append((m.id, clock.now))
        clock.now += 0.4  # the consumer spends 0.4 s on each mention
    assert released == [("0", 1000.0), ("1", 1001.0), ("2", 1002.0), ("3", 1003.0)]


async def test_none_speed_never_waits() -> None:
    clock = FakeClock()
    out = await _drain(paced(_mentions(0, 3600, 7200), speed=None, clock=clock,
                             sleep=clock.sleep), clock)
    assert [i for i, _ in out] == ["0", "1", "2"]
    assert clock.sleeps == []


async def test_long_gaps_are_capped_and_the_schedule_shifts() -> None:
    clock = FakeClock()
    out = await _drain(paced(_mentions(0, 3600, 3601), speed=1, clock=clock,
                             sleep=clock.sleep, max_wait=5), clock)
    # An hour of silence costs 5 s, and what follows keeps its own spacing.
    assert out == [("0", 1000.0), ("1", 1005.0), ("2", 1006.0)]


async def test_out_of_order_mentions_go_out_at_once() -> None:
    clock = FakeClock()
    out = await _drain(paced(_mentions(0, 10, 2, 12), speed=1, clock=clock,
                             sleep=clock.sleep), clock)
    assert out == [("0", 1000.0), ("1", 1010.0), ("2", 1010.0), ("3", 1012.0)]


async def test_backlog_beyond_max_wait_is_forgiven_not_burst() -> None:
    clock = FakeClock()
    released = []
    async for m in paced(_mentions(0, 1, 2, 3), speed=1, clock=clock, sleep=clock.sleep,
                         max_wait=5):
        released.append((m.id, clock.now))
        if m.id == "0":
            clock.now += 60  # the consumer stalled for a minute
    assert released == [("0", 1000.0), ("1", 1060.0), ("2", 1061.0), ("3", 1062.0)]


async def test_pulls_lazily_from_an_endless_source() -> None:
    def endless() -> Iterator[Mention]:
        i = 0
        while True:
            yield from _mentions(i)
            i += 1

    clock = FakeClock()
    got = []
    async for m in paced(endless(), speed=1000, clock=clock, sleep=clock.sleep):
        got.append(m)
        if len(got) == 5:
            break
    assert len(got) == 5


@pytest.mark.parametrize("speed", [0.0, -1.0, float("nan")])
async def test_bad_speed_is_refused(speed: float) -> None:
    with pytest.raises(ValueError, match="speed"):
        await anext(paced(_mentions(0), speed=speed))
