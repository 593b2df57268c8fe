"""`escucha backtest` on a raw CSV raises the signals a live worker raises on that CSV replayed.

Real parts only: the embedded Tansu broker, `escucha worker`, `escucha replay` and `escucha
backtest` as child processes, the bundled model. The file is tests/support/history.py's export:
half an hour of calm, an angry post by a 2.5M-follower author, then a burst of angry posts.

The replay is paced (600x: the half hour in three seconds), as live traffic arrives. Raw
mentions are spread over the partitions by id, so a backlog read at once reaches detection in
an order nothing guarantees; lateness absorbs small disorder, not any. (Unpaced, and with the
whole file published before the worker was ready, the signals matched too in trials here.)
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from streams.core import topics
from streams.runtime.broker import EmbeddedBroker
from tests.support.history import COLUMNS, CONFIG, write_history
from tests.support.kafka import read_all
from tests.support.procs import EscuchaProcess, free_port, write_config

Fired = set[tuple[str, str, str, str, str]]


def _fired(signals: list[dict[str, Any]]) -> Fired:
    """Watch, detector, window and severity: a detector that fires again in one window as
    its severity rises counts once per severity."""
    return {(s["watch_id"], s["detector"], s["window_start"], s["window_end"], s["severity"])
            for s in signals}


def _ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as resp:
            return resp.status == 200
    except (OSError, urllib.error.HTTPError):
        return False


def _escucha(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "streams.cli", *args],
                          env={**os.environ, **env}, capture_output=True, text=True,
                          timeout=120, check=False)


async def test_backtest_of_a_raw_csv_matches_a_live_worker_on_the_same_file(
    tmp_path: Path, broker: EmbeddedBroker
) -> None:
    history = tmp_path / "export.csv"
    bad = write_history(history)
    config = write_config(tmp_path / "escucha.yaml", **CONFIG, datadir=str(tmp_path / "var"))
    env = {"ESCUCHA_KAFKA_BOOTSTRAP": broker.bootstrap}
    port = free_port()
    worker = EscuchaProcess(["worker", "--config", str(config)],
                            env={**env, "ESCUCHA_WEB_PORT": str(port)}, log=tmp_path / "worker.log")
    try:
        # While the worker joins its group and loads the model: no broker needed here.
        backtest = await asyncio.to_thread(
            _escucha, "backtest", "--config", str(config), "--columns", COLUMNS,
            str(history), "--json", env={})
        assert backtest.returncode == 0, backtest.stderr
        doc = json.loads(backtest.stdout)
        expected = _fired(doc["signal_list"])
        assert {d for _, d, *_ in expected} >= {"influencer", "negative_spike"}
        assert sorted(b["line"] for b in doc["bad"]) == sorted(bad)

        deadline = time.monotonic() + 120
        while not await asyncio.to_thread(_ready, port):
            assert worker.proc.poll() is None, worker.output()[-3000:]
            assert time.monotonic() < deadline, "worker never ready:\n" + worker.output()[-3000:]
            await asyncio.sleep(0.5)
        replay = await asyncio.to_thread(
            _escucha, "replay", "--config", str(config), "--columns", COLUMNS, "--speed", "600",
            str(history), env=env)
        assert replay.returncode == 0, replay.stderr
        assert "2 bad lines" in replay.stderr

        live: Fired = set()
        deadline = time.monotonic() + 60
        while not expected <= live and time.monotonic() < deadline:
            live = _fired(await read_all(broker.bootstrap, topics.SIGNALS.name, idle_s=1.0))
        await asyncio.sleep(2)  # room for a signal the backtest did not raise to show up
        live = _fired(await read_all(broker.bootstrap, topics.SIGNALS.name, idle_s=1.0))
        assert live == expected, (f"live only: {sorted(live - expected)}\n"
                                  f"backtest only: {sorted(expected - live)}\n"
                                  + worker.output()[-2000:])
    finally:
        worker.close()
