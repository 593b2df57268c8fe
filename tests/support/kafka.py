"""Read and write topics of the real broker from tests."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

__all__ = ["produce_raw", "read_all"]


async def produce_raw(bootstrap: str, topic: str, values: list[bytes]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(topic, key=b"test", value=value)
    finally:
        await producer.stop()


async def read_all(bootstrap: str, topic: str, *, idle_s: float = 3.0,
                   skip_invalid: bool = False) -> list[dict[str, Any]]:
    """Every JSON record on the topic, from the beginning, until it stays idle for idle_s.

    ``skip_invalid`` drops records that are not JSON objects (a test put garbage there)."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap,
                                auto_offset_reset="earliest", enable_auto_commit=False,
                                group_id=None)
    await consumer.start()
    out: list[dict[str, Any]] = []
    try:
        while True:
            batch = await asyncio.wait_for(consumer.getmany(timeout_ms=500), timeout=30)
            records = [r for rs in batch.values() for r in rs]
            if not records:
                idle_s -= 0.5
                if idle_s <= 0:
                    return out
                continue
            for r in records:
                try:
                    value = json.loads(r.value)
                except (ValueError, RecursionError):
                    if skip_invalid:
                        continue
                    raise
                if isinstance(value, dict) or not skip_invalid:
                    out.append(value)
    finally:
        await consumer.stop()
