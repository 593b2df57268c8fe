"""Slack down for 60 s, then rate-limiting: the alert still arrives, exactly once."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

from streams.runtime.broker import EmbeddedBroker
from tests.e2e.test_replay_to_slack import _config, _history
from tests.fakes.slack import FakeSlack
from tests.support.procs import EscuchaProcess, free_port


async def test_alert_survives_a_60s_outage_then_a_429(
    tmp_path: Path, broker: EmbeddedBroker, fake_slack: FakeSlack
) -> None:
    history = tmp_path / "history.jsonl"
    _history(history)
    config = _config(tmp_path, fake_slack, commit_interval_s=2.8)
    env = {"ESCUCHA_KAFKA_BOOTSTRAP": broker.bootstrap, "ESCUCHA_WEB_PORT": str(free_port())}
    fake_slack.go_down()
    worker = EscuchaProcess(["worker", "--config", str(config)], env=env,
                            log=tmp_path / "worker.log")
    try:
        await asyncio.to_thread(
            subprocess.run, [sys.executable, "-m", "streams.cli", "replay", str(history),
                             "--config", str(config)],
            env={**os.environ, **env}, check=True, timeout=120, capture_output=True)
        await fake_slack.wait_for(lambda calls: any(c.method == "chat.postMessage"
                                                    for c in calls), timeout=150)
        first_try = next(c.at for c in fake_slack.calls if c.method == "chat.postMessage")
        await asyncio.sleep(max(0.0, first_try + 60 - asyncio.get_running_loop().time()))
        fake_slack.fail_next("chat.postMessage", status=429, error="ratelimited",
                             retry_after=3)
        fake_slack.come_up()
        await fake_slack.wait_for(lambda calls: any(c.method == "chat.postMessage" and c.ok
                                                    for c in calls), timeout=60)
        await asyncio.sleep(5)  # room for a wrong second post to show up

        posts = [c for c in fake_slack.calls if c.method == "chat.postMessage"]
        outage = [c for c in posts if c.status == 503]
        limited = [c for c in posts if c.status == 429]
        ok = [c for c in posts if c.ok]
        assert len(outage) >= 3, "the worker should keep trying through the outage"
        assert len(limited) == 1 and len(ok) == 1, [(c.status, c.error) for c in posts]
        assert ok[0].at - limited[0].at >= 3.0, "Retry-After was not honoured"
        assert ok[0].at - first_try >= 60.0
    finally:
        worker.close()
