"""AggregateStage alone: seeds from what is stored, flushes changed buckets, keeps them on a
failed send."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from agents.aggregate.builder import BucketBuilder
from agents.aggregate.stage import AggregateStage
from streams.core.buckets import Bucket
from tests.unit.agents.aggregate.test_builder import POS, T0, em


def builder() -> BucketBuilder:
    return BucketBuilder(size_s=300, top_mentions=5, top_terms=10, top_authors=10,
                         watch_terms={"acme": ["acme"]})


class Store:
    """The topic and its view: what was sent, read back by bucket id."""

    def __init__(self, fail_after: int | None = None) -> None:
        self.sent: list[Bucket] = []
        self.fail_after = fail_after

    async def send(self, key: bytes, value: bytes) -> None:
        if self.fail_after is not None and len(self.sent) >= self.fail_after:
            raise ConnectionError("broker gone")
        bucket = Bucket.model_validate_json(value)
        assert key == bucket.watch_id.encode()
        self.sent.append(bucket)

    def get(self, bucket_id: str) -> Bucket | None:
        found = [b for b in self.sent if b.id == bucket_id]
        return found[-1] if found else None


async def test_flush_sends_each_changed_bucket_once() -> None:
    store = Store()
    stage = AggregateStage(builder=builder(), watches={"acme"}, stored=store.get)
    for i in range(3):
        stage.add(em(T0 + timedelta(minutes=i)), position=POS, offset=i)
    stage.add(em(T0 + timedelta(minutes=6)), position=POS, offset=3)
    assert await stage.flush(store.send) == 2
    assert sorted(b.count for b in store.sent) == [1, 3]
    assert await stage.flush(store.send) == 0  # nothing changed since


async def test_a_restarted_stage_continues_from_the_stored_snapshot() -> None:
    store = Store()
    first = AggregateStage(builder=builder(), watches={"acme"}, stored=store.get)
    for i in range(4):
        first.add(em(T0 + timedelta(seconds=i)), position=POS, offset=i)
    await first.flush(store.send)
    again = AggregateStage(builder=builder(), watches={"acme"}, stored=store.get)
    again.add(em(T0 + timedelta(seconds=3)), position=POS, offset=3)  # a re-delivery
    again.add(em(T0 + timedelta(seconds=9)), position=POS, offset=4)
    await again.flush(store.send)
    assert store.sent[-1].count == 5  # 4 stored + 1 new; the re-delivered one not again


async def test_a_failed_send_keeps_the_rest_for_the_next_flush() -> None:
    store = Store(fail_after=1)
    stage = AggregateStage(builder=builder(), watches={"acme"}, stored=store.get)
    for i in range(3):
        stage.add(em(T0 + timedelta(minutes=5 * i)), position=POS, offset=i)
    assert await stage.flush(store.send) == 1
    store.fail_after = None
    assert await stage.flush(store.send) == 2
    assert len({b.id for b in store.sent}) == 3


@pytest.mark.parametrize("watch", ["globex", "removed"])
async def test_mentions_of_watches_not_configured_are_ignored(watch: str) -> None:
    store = Store()
    stage = AggregateStage(builder=builder(), watches={"acme"}, stored=store.get)
    stage.add(em(T0, watch=watch), position=POS, offset=0)
    assert await stage.flush(store.send) == 0


async def test_retain_forgets_buckets_of_partitions_owned_elsewhere() -> None:
    store = Store()
    stage = AggregateStage(builder=builder(), watches={"acme"}, stored=store.get)
    stage.add(em(T0), position=POS, offset=0)
    stage.add(em(T0 + timedelta(minutes=5)), position="escucha.enriched:1", offset=0)
    assert stage.retain({POS}) == 1


def test_an_assignment_asks_for_the_stored_snapshots_to_be_caught_up() -> None:
    # The agent then waits for its view (TopicView.sync) before the next record can seed a
    # bucket from it: the previous owner stored its last snapshots moments before.
    stage = AggregateStage(builder=builder(), watches={"acme"}, stored=Store().get)
    assert not stage.needs_sync
    stage.retain({POS})
    assert stage.needs_sync


class Acks:
    def __init__(self) -> None:
        self.done: list[int] = []

    async def __call__(self, token: int) -> None:
        self.done.append(token)


async def test_records_are_acknowledged_only_once_their_snapshot_is_stored() -> None:
    store, acks = Store(fail_after=1), Acks()
    stage = AggregateStage(builder=builder(), watches={"acme"}, stored=store.get)
    for i in range(3):
        stage.add(em(T0 + timedelta(minutes=5 * i)), position=POS, offset=i, token=i)
    stage.hold(3)  # e.g. an invalid record after them
    assert stage.unstored == 4
    # The broker fails after one snapshot: only the record it counts is acknowledged.
    assert await stage.flush(store.send, acks) == 1
    assert acks.done == [0] and stage.unstored == 3
    stage.add(em(T0 + timedelta(minutes=1)), position=POS, offset=4, token=4)
    store.fail_after = None
    assert await stage.flush(store.send, acks) == 3
    assert acks.done == [0, 1, 2, 3, 4] and stage.unstored == 0
    # Nothing dirty: what is held is acknowledged at once.
    stage.add(em(T0, watch="removed"), position=POS, offset=5, token=5)
    assert await stage.flush(store.send, acks) == 0
    assert acks.done[-1] == 5


async def test_a_rebalance_drops_the_tokens_of_the_old_assignment() -> None:
    store = Store()
    stage = AggregateStage(builder=builder(), watches={"acme"}, stored=store.get)
    stage.add(em(T0), position=POS, offset=0, token=0)
    stage.retain({POS})
    assert stage.unstored == 0


async def test_a_bounded_flush_sends_the_oldest_buckets_and_leaves_the_rest() -> None:
    store = Store()
    stage = AggregateStage(builder=builder(), watches={"acme"}, stored=store.get)
    for i in range(5):  # five buckets, newest first
        stage.add(em(T0 + timedelta(minutes=5 * (4 - i))), position=POS, offset=i)
    assert await stage.flush(store.send, limit=2) == 2
    assert [b.start for b in store.sent] == [T0, T0 + timedelta(minutes=5)]
    assert await stage.flush(store.send, limit=2) == 2
    assert await stage.flush(store.send, limit=2) == 1
    assert len({b.id for b in store.sent}) == 5
    assert await stage.flush(store.send, limit=2) == 0


async def test_a_bounded_flush_acknowledges_only_the_prefix_whose_buckets_are_stored() -> None:
    store, acks = Store(), Acks()
    stage = AggregateStage(builder=builder(), watches={"acme"}, stored=store.get)
    # Offsets 0..3 go to buckets T0, T0+10, T0, T0+5 (minutes); one is sent per tick.
    for token, minutes in enumerate([0, 10, 0, 5]):
        stage.add(em(T0 + timedelta(minutes=minutes)), position=POS, offset=token, token=token)
    stage.hold(4)
    await stage.flush(store.send, acks, limit=1)  # stores T0: record 0; record 1 waits
    assert acks.done == [0]
    await stage.flush(store.send, acks, limit=1)  # stores T0+5: still behind record 1
    assert acks.done == [0]
    await stage.flush(store.send, acks, limit=1)  # stores T0+10: all of them
    assert acks.done == [0, 1, 2, 3, 4] and stage.unstored == 0


async def test_a_record_counted_after_its_bucket_was_stored_waits_for_the_next_snapshot() -> None:
    store, acks = Store(), Acks()
    stage = AggregateStage(builder=builder(), watches={"acme"}, stored=store.get)
    stage.add(em(T0), position=POS, offset=0, token=0)
    stage.add(em(T0 + timedelta(minutes=5)), position=POS, offset=1, token=1)
    await stage.flush(store.send, acks, limit=1)  # T0 stored
    stage.add(em(T0 + timedelta(minutes=1)), position=POS, offset=2, token=2)  # T0 again
    await stage.flush(store.send, acks, limit=1)  # T0 once more (oldest): 1 still waits
    assert acks.done == [0]
    await stage.flush(store.send, acks, limit=1)
    assert acks.done == [0, 1, 2]
    assert store.get(store.sent[0].id) is not None and store.sent[1].count == 2


async def test_a_record_sent_while_its_bucket_is_in_flight_waits_for_that_send() -> None:
    store, acks = Store(), Acks()
    stage = AggregateStage(builder=builder(), watches={"acme"}, stored=store.get)
    stage.add(em(T0), position=POS, offset=0, token=0)

    async def send(key: bytes, value: bytes) -> None:
        if len(store.sent) == 0:  # while the first snapshot is on its way
            stage.add(em(T0 + timedelta(minutes=1)), position=POS, offset=1, token=1)
        await store.send(key, value)

    await stage.flush(send, acks)
    assert acks.done == [0] and stage.unstored == 1  # record 1 is not in that snapshot
    await stage.flush(send, acks)
    assert acks.done == [0, 1] and store.sent[-1].count == 2


async def test_a_redelivered_record_is_acknowledged_behind_the_records_before_it() -> None:
    store, acks = Store(), Acks()
    stage = AggregateStage(builder=builder(), watches={"acme"}, stored=store.get)
    stage.add(em(T0), position=POS, offset=0, token=0)
    await stage.flush(store.send, acks)
    stage.add(em(T0 + timedelta(minutes=5)), position=POS, offset=1, token=1)
    stage.add(em(T0), position=POS, offset=0, token=2)  # offset 0 again: nothing new
    assert await stage.flush(store.send, acks, limit=1) == 1
    assert acks.done == [0, 1, 2]
    assert await stage.flush(store.send, acks) == 0 and stage.unstored == 0


async def test_a_timer_flush_skips_while_another_flush_runs() -> None:
    store = Store()
    stage = AggregateStage(builder=builder(), watches={"acme"}, stored=store.get)
    stage.add(em(T0), position=POS, offset=0)
    stage.add(em(T0 + timedelta(minutes=5)), position=POS, offset=1)
    started, release = asyncio.Event(), asyncio.Event()

    async def slow(key: bytes, value: bytes) -> None:
        started.set()
        await release.wait()
        await store.send(key, value)

    full = asyncio.create_task(stage.flush(slow))  # e.g. on revoke
    await started.wait()
    # The timer's tick: skipped at once, not queued behind the running flush.
    assert await asyncio.wait_for(stage.flush(store.send, limit=10), 1) == 0
    release.set()
    assert await full == 2
    assert len(store.sent) == 2


async def test_a_full_flush_waits_for_a_running_one_then_sends_the_rest() -> None:
    store = Store()
    stage = AggregateStage(builder=builder(), watches={"acme"}, stored=store.get)
    for i in range(3):
        stage.add(em(T0 + timedelta(minutes=5 * i)), position=POS, offset=i)
    started, release = asyncio.Event(), asyncio.Event()

    async def slow(key: bytes, value: bytes) -> None:
        started.set()
        await release.wait()
        await store.send(key, value)

    tick = asyncio.create_task(stage.flush(slow, limit=1))
    await started.wait()
    full = asyncio.create_task(stage.flush(store.send))  # revoke during the tick
    await asyncio.sleep(0)
    assert store.sent == []  # it waits for the tick
    release.set()
    assert await tick == 1 and await full == 2
    assert len({b.id for b in store.sent}) == 3
