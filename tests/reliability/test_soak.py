"""Soak (`make test-slow`): 10 minutes at 80% of the measured maximum rate; the worker's memory,
open files and asyncio tasks stay flat, and it keeps up.

Real parts: the embedded broker and one `escucha worker` with the bundled model. The maximum
rate is measured first in the same run (a burst, timed to the last enriched mention); then
mentions are produced at 80% of it, with a sample of the worker's RSS (/proc), open file
descriptors and asyncio tasks (its escucha_asyncio_tasks gauge) every 10 s. The first two
minutes are warm-up (caches and buffers fill); the end is compared with the state after it.
``ESCUCHA_SOAK_S`` shortens the run for a quick check.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from streams.connectors.simulate import SimBrand, simulate
from streams.core import topics
from streams.runtime.broker import EmbeddedBroker
from tests.support.procs import EscuchaProcess, free_port, metric_value, write_config

SOAK_S = float(os.environ.get("ESCUCHA_SOAK_S", "600"))
pytestmark = [pytest.mark.slow, pytest.mark.timeout(SOAK_S + 900)]
WARMUP_S = min(120.0, SOAK_S / 5)


def _texts(n: int, seed: int) -> list[bytes]:
    start = datetime.now(UTC) - timedelta(hours=3)
    out = [m.model_dump_json().encode() for m in simulate(
        brands=[SimBrand(name="Acme", terms=("Acme", "AcmePhone")),
                SimBrand(name="Globex", terms=("Globex",))],
        start=start, duration=timedelta(hours=3), rate_per_min=max(1, n // 180) + 1,
        seed=seed)]
    return out[:n]


def _proc(pid: int) -> tuple[int, int]:
    rss = next(int(line.split()[1]) * 1024 for line in
               Path(f"/proc/{pid}/status").read_text().splitlines()
               if line.startswith("VmRSS:"))
    return rss, len(os.listdir(f"/proc/{pid}/fd"))


def _processed(port: int) -> float:
    # Read by the classify agent, which reads its next batch only after classifying this one.
    return metric_value(port, "escucha_mentions_in_total", {"source": "simulate"}) or 0.0


async def test_soak_at_80_percent_of_max_rate(tmp_path: Path, broker: EmbeddedBroker) -> None:
    port = free_port()
    config = write_config(
        tmp_path / "escucha.yaml",
        watches=[{"id": "acme", "name": "Acme", "terms": ["acme", "acmephone"]},
                 {"id": "globex", "name": "Globex", "terms": ["globex"]}],
        datadir=str(tmp_path / "var"))
    env = {"ESCUCHA_KAFKA_BOOTSTRAP": broker.bootstrap, "ESCUCHA_WEB_PORT": str(port)}
    worker = EscuchaProcess(["worker", "--config", str(config)], env=env,
                            log=tmp_path / "worker.log")
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, linger_ms=20)
    await producer.start()
    try:
        # The maximum rate: a burst of distinct mentions, timed to the last one enriched.
        burst = _texts(3000, seed=1)
        await producer.send_and_wait(topics.RAW.name, burst[0])
        deadline = time.monotonic() + 120
        while _processed(port) < 1:
            assert time.monotonic() < deadline, worker.output()[-3000:]
            await asyncio.sleep(0.5)
        t0 = time.monotonic()
        for value in burst[1:]:
            await producer.send(topics.RAW.name, value)
        await producer.flush()
        while _processed(port) < len(burst):
            assert time.monotonic() - t0 < 300, "the burst never finished"
            await asyncio.sleep(0.5)
        max_rate = (len(burst) - 1) / (time.monotonic() - t0)
        rate = 0.8 * max_rate

        # The soak: a steady 80%, sampled every 10 s.
        stream = _texts(int(rate * SOAK_S) + 10, seed=2)
        samples: list[dict[str, float]] = []
        start = time.monotonic()
        sent = 0
        while (elapsed := time.monotonic() - start) < SOAK_S:
            due = int(elapsed * rate)
            while sent < min(due, len(stream)):
                await producer.send(topics.RAW.name, stream[sent])
                sent += 1
            if not samples or elapsed - samples[-1]["t"] >= 10:
                rss, fds = _proc(worker.proc.pid)
                tasks = metric_value(port, "escucha_asyncio_tasks") or 0.0
                samples.append({"t": elapsed, "rss": rss, "fds": fds, "tasks": tasks})
            await asyncio.sleep(0.05)
        await producer.flush()
        total = len(burst) + sent
        deadline = time.monotonic() + 120
        while (done := _processed(port)) < total:
            assert time.monotonic() < deadline, f"fell behind: {done} of {total} processed"
            await asyncio.sleep(2)
    finally:
        await producer.stop()
        worker.close()

    after_warmup = [s for s in samples if s["t"] >= WARMUP_S]
    base, end = after_warmup[0], after_warmup[-1]
    figures = {"max_rate_per_s": round(max_rate, 1), "soak_rate_per_s": round(rate, 1),
               "seconds": SOAK_S, "mentions": total,
               "rss_mb_after_warmup": round(base["rss"] / 1e6),
               "rss_mb_end": round(end["rss"] / 1e6),
               "rss_mb_peak": round(max(s["rss"] for s in after_warmup) / 1e6),
               "fds": [base["fds"], end["fds"]], "tasks": [base["tasks"], end["tasks"]]}
    report = os.environ.get("ESCUCHA_FAULT_REPORT")
    if report:
        with Path(report).open("a") as fh:  # noqa: ASYNC230 - one line, after the run
            fh.write(json.dumps({"scenario": "soak", **figures}) + "\n")
    assert end["rss"] <= base["rss"] * 1.10, figures
    assert end["fds"] <= base["fds"] + 5, figures
    assert end["tasks"] <= base["tasks"] + 10, figures
