"""The aggregate agent end to end: a real `escucha worker` and `escucha replay` on the broker.

The stored bucket snapshots (latest per bucket) must add up to exactly what the classifier
put on escucha.mentions.enriched for each watch: every mention counted once, none lost. A
second worker, started after the first stopped, must continue those buckets from the stored
snapshots when more mentions of the same minutes arrive, not start them from zero.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from agents.classify.matching import WatchMatcher
from streams.config.settings import load_settings
from streams.connectors.simulate import SimBrand, simulate
from streams.core import topics
from streams.core.buckets import Bucket
from streams.runtime.broker import EmbeddedBroker
from tests.support.kafka import read_all
from tests.support.procs import EscuchaProcess, free_port, write_config

_START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _latest(records: list[dict[str, Any]]) -> dict[str, Bucket]:
    latest: dict[str, Bucket] = {}
    for raw in records:  # in offset order per partition, and one watch is one partition
        bucket = Bucket.model_validate(raw)
        latest[bucket.id] = bucket
    return latest


def _totals(buckets: dict[str, Bucket]) -> dict[str, Counter[str]]:
    out: dict[str, Counter[str]] = {}
    for b in buckets.values():
        c = out.setdefault(b.watch_id, Counter())
        c["count"] += b.count
        c["reach"] += b.reach
        for label, n in b.sentiment.items():
            c[label] += n
    return out


def _expected(enriched: list[dict[str, Any]]) -> dict[str, Counter[str]]:
    """What the buckets must hold: each (watch, mention) once, however many copies classify
    wrote (a restarted classifier re-sends some: counted once, by their key)."""
    out: dict[str, Counter[str]] = {}
    seen: set[tuple[str, str]] = set()
    for em in enriched:
        ident = (em["watch_id"], f"{em['mention']['source']}:{em['mention']['id']}")
        if ident in seen:
            continue
        seen.add(ident)
        c = out.setdefault(em["watch_id"], Counter())
        c["count"] += 1
        c["reach"] += em["mention"]["author"]["followers"]
        c[em["sentiment"]["label"]] += 1
    for c in out.values():  # every label present, as in a bucket
        for label in ("negative", "neutral", "positive"):
            c[label] += 0
    return out


def _history(path: Path, seed: int, config: Path) -> set[str]:
    """Writes the history; returns the keys of the mentions some watch matches.

    Not every simulated post matches: "@Acme_DE" is a handle, not the word "acme".
    """
    mentions = list(simulate(
        brands=[SimBrand(name="Acme", terms=("Acme", "AcmePhone")),
                SimBrand(name="Globex", terms=("Globex", "GlobexPay"))],
        start=_START, duration=timedelta(minutes=6), rate_per_min=15, seed=seed))
    path.write_text("".join(m.model_dump_json() + "\n" for m in mentions))
    matcher = WatchMatcher(load_settings(config).watches)
    return {m.key for m in mentions if matcher.match(m)}


async def _replay(path: Path, config: Path, env: dict[str, str]) -> None:
    await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "streams.cli", "replay", str(path), "--config", str(config)],
        env={**os.environ, **env}, check=True, timeout=60, capture_output=True)


async def _settled(bootstrap: str, replayed: set[str], worker: EscuchaProcess, *,
                   within_s: float) -> tuple[dict[str, Counter[str]], dict[str, Bucket]]:
    """Wait until the stored buckets add up to the enriched topic (and it holds them all)."""
    deadline = time.monotonic() + within_s
    while True:
        enriched = await read_all(bootstrap, topics.ENRICHED.name, idle_s=1.0)
        stored = _latest(await read_all(bootstrap, topics.AGGREGATES.name, idle_s=1.0))
        expected = _expected(enriched)
        # Every matching mention reaches the enriched topic; a restarted classifier may re-send
        # a few (at-least-once), and those count once.
        seen = {f"{e['mention']['source']}:{e['mention']['id']}" for e in enriched}
        if seen == replayed and _totals(stored) == expected:
            return expected, stored
        assert time.monotonic() < deadline, (
            f"stored {_totals(stored)} != enriched {expected} ({len(seen)} of "
            f"{len(replayed)} replayed mentions enriched)\n{worker.output()[-3000:]}")
        await asyncio.sleep(1.0)


async def test_stored_buckets_count_every_enriched_mention_once(
    tmp_path: Path, broker: EmbeddedBroker
) -> None:
    first, second = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    config = write_config(
        tmp_path / "escucha.yaml",
        aggregates={"bucket_s": 60, "top_mentions": 3},
        watches=[{"id": "acme", "name": "Acme", "terms": ["acme", "acmephone"],
                  "competitors": ["globex"]},
                 {"id": "globex", "name": "Globex", "terms": ["globex", "globexpay"]}],
        datadir=str(tmp_path / "var"),
    )
    replayed = _history(first, seed=5, config=config)
    env = {"ESCUCHA_KAFKA_BOOTSTRAP": broker.bootstrap, "ESCUCHA_WEB_PORT": str(free_port())}
    worker = EscuchaProcess(["worker", "--config", str(config)], env=env,
                            log=tmp_path / "worker.log")
    try:
        await _replay(first, config, env)
        before, _ = await _settled(broker.bootstrap, replayed, worker, within_s=120)
        assert worker.interrupt() == 0
    finally:
        worker.close()

    # The same six minutes again, other posts: the restarted worker adds to stored buckets.
    replayed |= _history(second, seed=6, config=config)
    worker = EscuchaProcess(["worker", "--config", str(config)], env=env,
                            log=tmp_path / "worker2.log")
    try:
        await _replay(second, config, env)
        expected, stored = await _settled(broker.bootstrap, replayed, worker, within_s=120)
    finally:
        worker.close()

    assert set(expected) == {"acme", "globex"}
    assert all(expected[w]["count"] > before[w]["count"] for w in before)
    for b in stored.values():
        assert b.size_s == 60 and b.start.second == 0
        assert _START <= b.start < _START + timedelta(minutes=6)
        assert len(b.top) <= 3 and sum(b.languages.values()) == b.count
        assert [t.priority for t in b.top] == sorted((t.priority for t in b.top), reverse=True)
        assert list(b.offsets) and all(p.startswith(topics.ENRICHED.name) for p in b.offsets)
