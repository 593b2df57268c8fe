"""The store agent in a real `escucha worker` on the real broker, and `escucha store rebuild`.

Enriched records go straight onto escucha.mentions.enriched (no classifier needed): each
mention is stored once however many times it comes and for however many watches; a record
the store refuses is dead-lettered (stage ``store``) with its reason; one that is not an
enriched mention is left to detect. Then the store is cleared and rebuilt from the topic.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from agents.store import store_for
from agents.store.search import search_from_params
from streams.config.settings import load_settings
from streams.core import topics
from streams.core.records import dumps
from streams.runtime.broker import EmbeddedBroker
from tests.support.connectors import dead_letters
from tests.support.kafka import produce_raw
from tests.support.procs import EscuchaProcess, free_port, write_config
from tests.support.store import enriched


async def _until_stored(config: Path, count: int, worker: EscuchaProcess) -> None:
    store = store_for(load_settings(config))
    deadline = time.monotonic() + 90
    try:
        while await asyncio.to_thread(store.count) < count:
            assert time.monotonic() < deadline, worker.output()[-3000:]
            await asyncio.sleep(0.5)
    finally:
        store.close()


def _metrics(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    return {name: float(value) for name, _, value in
            (line.rpartition(" ") for line in text.splitlines())
            if name.startswith("escucha_store")}


async def test_the_worker_stores_each_mention_once_and_rebuild_restores_them(
        tmp_path: Path, broker: EmbeddedBroker) -> None:
    config = write_config(
        tmp_path / "escucha.yaml", datadir=str(tmp_path / "var"),
        watches=[{"id": "acme", "name": "Acme", "terms": ["acme"]},
                 {"id": "globex", "name": "Globex", "terms": ["globex"]}],
        store={"max_wait_s": 0.2})
    mentions = [enriched(i, f"acme post {i}", minutes=i) for i in range(20)]
    copy = mentions[1].model_copy(update={"watch_id": "globex",
                                          "watch_ids": ["acme", "globex"]})
    refused = enriched(99, "acme", watch="")
    values = [dumps(m) for m in mentions] + [dumps(mentions[0]), dumps(copy), b"{not json",
                                             dumps(refused)]
    port = free_port()
    env = {"ESCUCHA_KAFKA_BOOTSTRAP": broker.bootstrap, "ESCUCHA_WEB_PORT": str(port)}
    worker = EscuchaProcess(["worker", "--config", str(config)], env=env,
                            log=tmp_path / "worker.log")
    try:
        await produce_raw(broker.bootstrap, topics.ENRICHED.name, values)
        await _until_stored(config, len(mentions), worker)
        dead = [d for d in await dead_letters(broker.bootstrap) if d["stage"] == "store"]
        assert len(dead) == 1 and "a watch id is empty" in dead[0]["reason"]
        assert dead[0]["origin"].startswith(topics.ENRICHED.name)
        # What the store board and EscuchaStoreNotWriting read (deploy/grafana, prometheus).
        series = await asyncio.to_thread(_metrics, port)
        assert series["escucha_store_enabled"] == 1 and series["escucha_store_up"] == 1
        assert series["escucha_store_mentions_written_total"] == len(mentions)
        assert 0 < time.time() - series["escucha_store_last_write_timestamp_seconds"] < 120
        assert series['escucha_store_errors_total{operation="write"}'] == 0
        assert worker.interrupt() == 0
    finally:
        worker.close()

    store = store_for(load_settings(config))
    assert store.count() == len(mentions)
    globex = store.search(search_from_params({"watch": ["globex"]})).mentions
    assert [m.record.mention.key for m in globex] == [mentions[1].mention.key]

    rebuilt = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "streams.cli", "store", "rebuild", "--clear",
                         "--config", str(config), "--idle-s", "1"],
        env={**os.environ, **env}, capture_output=True, text=True, timeout=120)
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert ("read 24 records" in rebuilt.stdout and "20 mentions new to the store, 1 refused, "
            "1 not enriched mentions" in rebuilt.stdout), rebuilt.stdout
    assert "a watch id is empty" in rebuilt.stderr
    assert store.count() == len(mentions)
    assert [m.record.mention.key for m in store.search(search_from_params(
        {"watch": ["globex"]})).mentions] == [mentions[1].mention.key]
    store.close()
