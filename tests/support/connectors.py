"""Run a real connector against a fake source and the real broker, then read what it published."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from streams.connectors.base import Connector, ConnectorContext, ConnectorRunner
from streams.connectors.publish import Publisher
from streams.core import topics
from streams.runtime.metrics import Metrics
from tests.support.kafka import read_all

__all__ = ["dead_letters", "raw_mentions", "run_until"]


async def run_until(connector: Connector, *, bootstrap: str, datadir: Path,
                    until: Callable[[ConnectorContext], bool], timeout: float = 30.0,  # noqa: ASYNC109
                    terms: list[str] | None = None,
                    metrics: Metrics | None = None) -> ConnectorContext:
    """Run ``connector`` (supervised, as in production) until ``until(ctx)`` holds, then stop it.

    Raises ``TimeoutError`` with the connector's health if the condition is not met in time.
    """
    metrics = metrics or Metrics(registry=CollectorRegistry(), connectors=[connector.name])
    async with Publisher(bootstrap=bootstrap, dedup_size=0) as publisher:
        runner = ConnectorRunner([connector], sink=publisher, datadir=datadir, metrics=metrics,
                                 terms=terms or [])
        task = asyncio.create_task(runner.run())
        ctx = runner.contexts[connector.name]
        deadline = time.monotonic() + timeout
        try:
            while not until(ctx):
                if task.done():
                    task.result()  # surface a crash of the runner itself
                    break
                if time.monotonic() > deadline:
                    raise TimeoutError(f"connector {connector.name} did not get there in "
                                       f"{timeout}s; health: {ctx.health}")
                await asyncio.sleep(0.05)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    return ctx


async def raw_mentions(bootstrap: str, *, idle_s: float = 2.0) -> list[dict[str, Any]]:
    """Every mention on the raw topic, from the beginning."""
    return await read_all(bootstrap, topics.RAW.name, idle_s=idle_s)


async def dead_letters(bootstrap: str, *, idle_s: float = 2.0) -> list[dict[str, Any]]:
    """Every record on the dead-letter topic, from the beginning."""
    return await read_all(bootstrap, topics.DLQ.name, idle_s=idle_s)
