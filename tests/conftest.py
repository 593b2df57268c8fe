"""Shared fixtures: the real embedded broker, the fake Slack server, worker processes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio

from streams.runtime.broker import EmbeddedBroker
from tests.fakes.slack import FakeSlack


@pytest.fixture
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    """A fresh Tansu broker on a free loopback port, topics created, stopped afterwards."""
    log = tmp_path_factory.mktemp("broker") / "broker.log"
    b = EmbeddedBroker(partitions=4, log_path=log)
    b.start()
    try:
        yield b
    finally:
        b.stop()


@pytest_asyncio.fixture
async def fake_slack() -> AsyncIterator[FakeSlack]:
    async with FakeSlack() as fake:
        yield fake
