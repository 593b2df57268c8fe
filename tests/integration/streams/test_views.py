"""Views over whole topics (streams/runtime/views.py) on the real broker."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from streams.core import topics
from streams.runtime.broker import EmbeddedBroker
from streams.runtime.views import TopicView

_TOPIC = topics.SILENCES.name  # created with the broker, empty


def _decode(raw: bytes) -> tuple[str, Any] | None:
    value = json.loads(raw)
    return str(value["id"]), value


class _SlowFetchView(TopicView):
    """A view whose fetches each take their full wait: a loaded machine's first seconds."""

    def _consumer(self) -> AIOKafkaConsumer:
        return AIOKafkaConsumer(self._topic, bootstrap_servers=self._bootstrap, group_id=None,
                                auto_offset_reset="earliest", enable_auto_commit=False,
                                fetch_min_bytes=64 << 20, fetch_max_wait_ms=1500,
                                max_partition_fetch_bytes=4096)


async def _produce(bootstrap: str, n: int) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for i in range(n):
            await producer.send(_TOPIC, key=str(i % 7).encode(),
                                value=json.dumps({"id": i, "pad": "x" * 200}).encode())
        await producer.flush()
    finally:
        await producer.stop()


@contextlib.asynccontextmanager
async def _running(view: TopicView) -> AsyncIterator[TopicView]:
    task = asyncio.create_task(view.run())
    try:
        yield view
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_ready_only_once_the_backlog_at_start_is_read(broker: EmbeddedBroker) -> None:
    # What a restarted aggregate stage seeds its counts from: a view that says ready while
    # its first fetches are still on their way hands it old snapshots, or none.
    await _produce(broker.bootstrap, 400)
    async with _running(_SlowFetchView(bootstrap=broker.bootstrap, topic=_TOPIC,
                                       decode=_decode)) as view:
        await asyncio.wait_for(view.ready.wait(), timeout=120)
        assert len(view.items) == 400


async def test_a_topic_not_created_yet_is_ready_empty(broker: EmbeddedBroker) -> None:
    async with _running(TopicView(bootstrap=broker.bootstrap, topic="escucha.test.absent",
                                  decode=_decode)) as view:
        await asyncio.wait_for(view.ready.wait(), timeout=30)
        assert view.items == {}


async def test_sync_waits_for_what_was_written_moments_ago(broker: EmbeddedBroker) -> None:
    # A partition's new owner seeds from the snapshots the old owner stored while handing it
    # over: sync() must return only once the view holds them.
    await _produce(broker.bootstrap, 10)
    async with _running(_SlowFetchView(bootstrap=broker.bootstrap, topic=_TOPIC,
                                       decode=_decode)) as view:
        await asyncio.wait_for(view.ready.wait(), timeout=120)
        await _produce(broker.bootstrap, 400)  # ids 0-399 again: 10 known, 390 new
        assert await view.sync(timeout_s=120)
        assert len(view.items) == 400
