"""The connector contract: backoff, Retry-After, cursor and dedup across restarts, supervision."""

from __future__ import annotations

import asyncio
import random
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from streams.connectors.base import (
    Backoff,
    ConnectorContext,
    ConnectorRunner,
    SourceError,
    SourceSettings,
    read_health,
    retry_after_seconds,
)
from streams.core.records import Author, DeadLetter, Mention


class MemorySink:
    """Collects what a connector publishes; ``fail_flush`` makes the broker 'unreachable'."""

    def __init__(self) -> None:
        self.mentions: list[Mention] = []
        self.dead: list[DeadLetter] = []
        self.flushes = 0
        self.fail_flush = False

    async def mention(self, mention: Mention) -> bool:
        self.mentions.append(mention)
        return True

    async def dead_letter(self, record: DeadLetter) -> None:
        self.dead.append(record)

    async def flush(self) -> None:
        if self.fail_flush:
            raise ConnectionError("broker unreachable")
        self.flushes += 1


def m(i: int) -> Mention:
    return Mention(source="t", id=str(i), author=Author(handle="a"), text=f"text {i}",
                   created_at=datetime(2025, 1, 1, tzinfo=UTC))


async def no_sleep(_: float) -> None:
    return None


def ctx(tmp_path: Path, sink: MemorySink, **kw: object) -> ConnectorContext:
    return ConnectorContext(name="c1", source="t", sink=sink, datadir=tmp_path,
                            sleep=no_sleep, **kw)  # type: ignore[arg-type]


def test_backoff_grows_exponentially_with_full_jitter_and_resets() -> None:
    b = Backoff(base=1.0, cap=8.0, rng=random.Random(1))
    ceilings = [1, 2, 4, 8, 8, 8]
    delays = [b.next_delay() for _ in ceilings]
    assert all(0 <= d <= c for d, c in zip(delays, ceilings, strict=True))
    assert len(set(delays)) == len(delays)  # jittered, not fixed steps
    b.reset()
    assert b.next_delay() <= 1.0


def test_backoff_never_waits_less_than_the_source_asked() -> None:
    b = Backoff(base=0.01, cap=0.02)
    assert b.next_delay(retry_after=5.0) == 5.0
    assert b.next_delay(retry_after=10**9) == 86400.0  # a garbage header cannot park us


@pytest.mark.parametrize(("headers", "expected"), [
    ({"Retry-After": "7"}, 7.0),
    ({"retry-after": "  2.5 "}, 2.5),
    ({"X-Ratelimit-Remaining": "0.0", "X-Ratelimit-Reset": "42"}, 42.0),       # Reddit
    ({"x-ratelimit-remaining": "3", "x-ratelimit-reset": "42"}, None),          # not yet
    ({"x-rate-limit-remaining": "0", "x-rate-limit-reset": "1000000100"}, 100.0),  # X
    ({"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "2001-09-09T01:48:20Z"}, 100.0),
    ({}, None),
    ({"Retry-After": "soon"}, None),
])
def test_retry_after_headers(headers: dict[str, str], expected: float | None) -> None:
    got = retry_after_seconds(headers, now=1_000_000_000.0)
    assert got == (pytest.approx(expected) if expected is not None else None)


async def test_emit_dedups_and_stores_the_cursor_only_after_the_broker_has_it(
        tmp_path: Path) -> None:
    sink = MemorySink()
    c = ctx(tmp_path, sink)
    assert c.cursor is None
    assert await c.emit([m(1), m(2), m(1)], cursor={"page": 1}) == 2
    assert [x.id for x in sink.mentions] == ["1", "2"]
    assert c.health.duplicates == 1
    sink.fail_flush = True
    with pytest.raises(ConnectionError):
        await c.emit([m(3)], cursor={"page": 2})
    # A restart sees the last cursor the broker confirmed, and still knows 1 and 2.
    sink.fail_flush = False
    again = ctx(tmp_path, sink)
    assert again.cursor == {"page": 1}
    assert await again.emit([m(1), m(2), m(3)], cursor={"page": 2}) == 1
    assert again.cursor == {"page": 2}


async def test_reject_sends_a_dead_letter_with_the_reason(tmp_path: Path) -> None:
    sink = MemorySink()
    c = ctx(tmp_path, sink)
    await c.reject("id: missing", b'{"text": "no id"}\xff')
    assert sink.dead[0].stage == "ingest"
    assert sink.dead[0].reason == "c1: id: missing"
    assert sink.dead[0].payload.startswith('{"text": "no id"}')
    assert c.health.dead_letters == 1


async def test_failures_back_off_report_failing_and_recover(tmp_path: Path) -> None:
    sink = MemorySink()
    slept: list[float] = []

    async def sleep(s: float) -> None:
        slept.append(s)

    c = ConnectorContext(name="c1", source="t", sink=sink, datadir=tmp_path, sleep=sleep,
                         backoff=Backoff(base=0.001, cap=0.002))
    await c.failed(SourceError("HTTP 429", kind="rate_limited", retry_after=3))
    assert slept == [3]
    assert c.health.state == "backing_off"
    for _ in range(4):
        await c.failed(SourceError("HTTP 503", kind="server"))
    assert str(c.health.state) == "failing"
    assert c.health.errors == 5
    assert "HTTP 503" in (c.health.last_error or "")
    c.ok()
    assert str(c.health.state) == "ok"
    assert c.backoff.attempt == 0
    saved = read_health(tmp_path, "c1")
    assert saved is not None and saved.errors == 5


async def test_a_corrupt_state_file_does_not_stop_the_connector(tmp_path: Path) -> None:
    (tmp_path / "connectors").mkdir()
    (tmp_path / "connectors" / "c1.json").write_text("{not json", encoding="utf-8")
    c = ctx(tmp_path, MemorySink())
    assert c.cursor is None
    assert await c.emit([m(1)], cursor=1) == 1


class Crashy:
    source = "t"

    def __init__(self) -> None:
        self.name = "crashy"
        self.settings = SourceSettings(name="crashy", initial_backoff_s=0.01,
                                       max_backoff_s=0.02)
        self.runs = 0

    async def run(self, ctx: ConnectorContext) -> None:
        self.runs += 1
        if self.runs < 3:
            raise RuntimeError("bug")
        await ctx.emit([m(self.runs)], cursor=self.runs)
        ctx.ok()
        await asyncio.sleep(3600)


async def test_the_runner_restarts_a_crashing_connector(tmp_path: Path) -> None:
    sink, crashy = MemorySink(), Crashy()
    runner = ConnectorRunner([crashy], sink=sink, datadir=tmp_path)
    task = asyncio.create_task(runner.run())
    deadline = time.monotonic() + 5
    while not sink.mentions and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert crashy.runs == 3
    health = runner.contexts["crashy"].health
    assert health.errors == 2 and "bug" in (health.last_error or "")
    assert read_health(tmp_path, "crashy").state == "stopped"  # type: ignore[union-attr]


def test_source_names_are_slugs() -> None:
    with pytest.raises(ValueError, match="letters, digits"):
        SourceSettings(name="a b/c")
