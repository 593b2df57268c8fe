"""The store stage: what becomes of each record of a batch, on a real SQLite file."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from agents.store.backends import SqliteBackend
from agents.store.stage import StoreStage
from agents.store.store import MentionStore, StoreUnavailable
from tests.support.store import enriched


class _Clock:
    """Virtual time: the stage's waits pass at once and are recorded."""

    def __init__(self) -> None:
        self.now = 0.0
        self.waits: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds


def _store(tmp_path: Path) -> MentionStore:
    store = MentionStore(SqliteBackend(tmp_path / "m.sqlite3", busy_timeout_s=0.05))
    store.open()
    return store


async def test_written_records_and_refused_ones_are_told_apart(tmp_path: Path) -> None:
    stage = StoreStage(store=_store(tmp_path))
    items = [("a", enriched(1, "acme")), ("b", enriched(2, "acme", watch="")),
             ("c", enriched(1, "acme"))]
    outcome = await stage.handle(items)
    assert outcome.stored == 1
    assert outcome.written == ["a", "c"]  # the repeat is written: it is already there
    assert [(t, "watch id is empty" in r) for t, r in outcome.rejected] == [("b", True)]
    assert outcome.let_go == []


async def test_an_unavailable_database_is_retried_then_the_batch_let_go(
        tmp_path: Path) -> None:
    store = _store(tmp_path)
    clock = _Clock()
    stage = StoreStage(store=store, hold_s=10, sleep=clock.sleep, clock=clock)
    lock = sqlite3.connect(tmp_path / "m.sqlite3", isolation_level=None)
    lock.execute("BEGIN IMMEDIATE")  # another writer holds the file
    try:
        outcome = await stage.handle([("a", enriched(1, "acme")), ("b", enriched(2, "x"))])
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    assert outcome.let_go == ["a", "b"]
    assert outcome.written == [] and outcome.stored == 0
    assert "database is locked" in (outcome.error or "")
    assert clock.waits == [0.5, 1.0, 2.0, 4.0]  # within hold_s, then let go
    # Marked unavailable: later batches go at once, nothing waits on the database...
    lock = sqlite3.connect(tmp_path / "m.sqlite3", isolation_level=None)
    lock.execute("BEGIN IMMEDIATE")
    later = await stage.handle([("c", enriched(3, "acme"))])
    assert (later.let_go, clock.waits[4:]) == (["c"], [])
    assert await stage.probe() is False  # ...until a probe finds it writable again
    lock.execute("ROLLBACK")
    lock.close()
    assert await stage.probe() is True and stage.unavailable is None
    again = await stage.handle([("d", enriched(4, "acme"))])
    assert (again.written, again.stored) == (["d"], 1)


async def test_a_database_back_within_hold_s_loses_nothing(tmp_path: Path) -> None:
    store = _store(tmp_path)
    clock = _Clock()
    lock = sqlite3.connect(tmp_path / "m.sqlite3", isolation_level=None)
    lock.execute("BEGIN IMMEDIATE")

    async def sleep(seconds: float) -> None:
        await clock.sleep(seconds)
        if lock.in_transaction and len(clock.waits) == 2:
            lock.execute("ROLLBACK")  # the other writer is done

    stage = StoreStage(store=store, hold_s=10, sleep=sleep, clock=clock)
    outcome = await stage.handle([("a", enriched(1, "acme"))])
    lock.close()
    assert (outcome.written, outcome.let_go, outcome.stored) == (["a"], [], 1)


async def test_the_story_ids_are_seeded_once_before_the_first_write(tmp_path: Path) -> None:
    store = _store(tmp_path)
    calls: list[int] = []

    def seed() -> int:
        calls.append(store.count())  # what was stored when the seeding ran
        return 0

    stage = StoreStage(store=store, seed=seed)
    await stage.handle([("a", enriched(1, "acme"))])
    await stage.handle([("b", enriched(2, "acme"))])
    assert calls == [0] and store.count() == 2


async def test_seeding_waits_out_an_unavailable_database_and_a_bad_seed_is_let_pass(
        tmp_path: Path) -> None:
    store = _store(tmp_path)
    clock = _Clock()
    tries: list[str] = []

    def seed() -> int:
        tries.append("seed")
        if len(tries) == 1:
            raise StoreUnavailable("the database is locked")
        raise ValueError("an unreadable row")

    stage = StoreStage(store=store, hold_s=10, sleep=clock.sleep, clock=clock, seed=seed)
    outcome = await stage.handle([("a", enriched(1, "acme"))])
    # The first try waited like a write would; the second failed otherwise: writing goes on.
    assert tries == ["seed", "seed"] and clock.waits == [0.5]
    assert outcome.written == ["a"] and outcome.let_go == []
    await stage.handle([("b", enriched(2, "acme"))])
    assert len(tries) == 2
