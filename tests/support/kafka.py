"""Read and write topics of the real broker from tests."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition

__all__ = ["produce_raw", "read_all", "read_records"]


async def produce_raw(bootstrap: str, topic: str, values: list[bytes]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(topic, key=b"test", value=value)
    finally:
        await producer.stop()


async def read_records(bootstrap: str, topic: str, *,
                       idle_s: float = 3.0) -> list[ConsumerRecord[bytes, bytes]]:
    """Every record on the topic, from the beginning, until it stays idle for ``idle_s``.

    Every record already on the topic when the read starts is read whatever the pauses: the
    idle time counts only once each partition is read up to its end offset of that moment.
    (Counted from the start, a few slow fetches on a loaded machine cut a long topic short:
    a kill -9 test once saw the aggregates' latest snapshots "missing" that way.)"""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                enable_auto_commit=False, group_id=None)
    await consumer.start()
    out: list[ConsumerRecord[bytes, bytes]] = []
    try:
        parts = await _partitions(consumer, topic, idle_s)
        if not parts:
            return out
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        ends = await consumer.end_offsets(parts)
        while True:
            batch = await asyncio.wait_for(consumer.getmany(timeout_ms=500), timeout=30)
            records = [r for rs in batch.values() for r in rs]
            out.extend(records)
            if records:
                continue
            if any([await consumer.position(tp) < ends[tp] for tp in parts]):
                continue  # a slow fetch, not the end
            idle_s -= 0.5
            if idle_s <= 0:
                return out
    finally:
        await consumer.stop()


async def read_all(bootstrap: str, topic: str, *, idle_s: float = 3.0,
                   skip_invalid: bool = False) -> list[dict[str, Any]]:
    """Every JSON record on the topic (``read_records``).

    ``skip_invalid`` drops records that are not JSON objects (a test put garbage there)."""
    out: list[dict[str, Any]] = []
    for r in await read_records(bootstrap, topic, idle_s=idle_s):
        try:
            value = json.loads(r.value)
        except (ValueError, RecursionError, TypeError):
            if skip_invalid:
                continue
            raise
        if isinstance(value, dict) or not skip_invalid:
            out.append(value)
    return out


async def _partitions(consumer: AIOKafkaConsumer, topic: str,
                      wait_s: float) -> list[TopicPartition]:
    """The topic's partitions; none if the broker does not name it within ``wait_s``."""
    deadline = asyncio.get_running_loop().time() + wait_s
    while True:
        await consumer.topics()  # refreshes the metadata
        found = consumer.partitions_for_topic(topic)
        if found or asyncio.get_running_loop().time() > deadline:
            return [TopicPartition(topic, p) for p in sorted(found or ())]
        await asyncio.sleep(0.5)
