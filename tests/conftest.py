"""Shared fixtures: the real embedded broker, the fake Slack server, worker processes."""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio

from streams.runtime.broker import EmbeddedBroker
from tests.fakes.slack import FakeSlack

#: Where every test, and every worker process a test starts, finds the converted e5 encoder
#: and its ONNX export. Each test has its own datadir; with the default cache (inside it) each
#: worker would convert again (seconds, 470 MB) and export again (a minute).
MODEL_CACHE = Path(__file__).resolve().parent.parent / "var" / "test-models"


@pytest.fixture(scope="session", autouse=True)
def _shared_model_cache() -> Iterator[Path]:
    os.environ.setdefault("ESCUCHA_MODEL__CACHE_DIR", str(MODEL_CACHE))
    yield Path(os.environ["ESCUCHA_MODEL__CACHE_DIR"])


_FAULTS = Path(__file__).parent / "reliability"

# A process spawned by multiprocessing (the model process of models/isolated.py) unpickles
# the test's model factory from tests.fakes, with this process's sys.path. Under
# --import-mode=importlib `tests` is known here without being on sys.path, so the child could
# not import it: the repository goes on the path. (`python -m pytest` put the working
# directory there and hid this; the `pytest` script that `make test` runs did not.)
_ROOT = str(Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Under ``pytest -n N --dist loadgroup`` (``make test``) the fault tests share one xdist
    worker, one after another: each stops brokers and workers on purpose and counts what is
    read again, which two of them at once would blur. Everything else spreads over the rest;
    most of the suite's time is waiting on processes and outages, not the CPU."""
    for item in items:
        if _FAULTS in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.xdist_group("faults"))


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
