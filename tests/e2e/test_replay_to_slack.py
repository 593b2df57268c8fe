"""A replayed crisis reaches Slack once, even when the worker is killed and restarted.

Real parts only: the embedded Tansu broker, `escucha worker` and `escucha replay` as child
processes, the bundled model, and a real HTTP server speaking Slack's Web API.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from streams.connectors.simulate import Crisis, SimBrand, simulate
from streams.core import topics
from streams.runtime.broker import EmbeddedBroker
from tests.fakes.slack import FakeSlack
from tests.support.kafka import produce_raw, read_all
from tests.support.procs import EscuchaProcess, free_port, metric_value, write_config

_START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _history(path: Path) -> tuple[int, int]:
    """Write 24 minutes of two brands with a crisis on Acme; return bad line numbers."""
    mentions = simulate(
        brands=[SimBrand(name="Acme", terms=("Acme", "AcmePhone")),
                SimBrand(name="Globex", terms=("Globex",))],
        start=_START, duration=timedelta(minutes=24), rate_per_min=30,
        crises=[Crisis(brand="Acme", start=timedelta(minutes=16),
                       duration=timedelta(minutes=5), multiplier=8.0, topic="outage")],
        seed=7,
    )
    lines = [m.model_dump_json() for m in mentions]
    bad_json, bad_type = 10, 25
    lines.insert(bad_json - 1, '{"source": "replay", "id": "broken", "text": ')
    lines.insert(bad_type - 1, json.dumps({"source": "replay", "id": "x", "text": "acme",
                                           "author": {"handle": "h", "followers": "many"},
                                           "created_at": _START.isoformat()}))
    path.write_text("\n".join(lines) + "\n")
    return bad_json, bad_type


def _config(tmp: Path, slack: FakeSlack, *, commit_interval_s: float) -> Path:
    return write_config(
        tmp / f"escucha-{commit_interval_s}.yaml",
        kafka={"commit_interval_s": commit_interval_s},
        # The replayed history is only 24 minutes long, published in event-time order.
        detect={"warmup_min": 8, "lateness_min": 2},
        notifiers={"slack": {"token": "xoxb-test-token", "channel": "#crisis",
                             "base_url": slack.url}},
        watches=[{"id": "acme", "name": "Acme", "terms": ["acme", "acmephone"]},
                 {"id": "globex", "name": "Globex", "terms": ["globex"]}],
        datadir=str(tmp / "var"),
    )


def _posts(slack: FakeSlack) -> list[str]:
    return [json.dumps(c.params) for c in slack.posted]


async def test_crisis_posts_once_across_kill_and_restart(
    tmp_path: Path, broker: EmbeddedBroker, fake_slack: FakeSlack
) -> None:
    history = tmp_path / "history.jsonl"
    bad_json, bad_type = _history(history)
    env = {"ESCUCHA_KAFKA_BOOTSTRAP": broker.bootstrap}
    # The first worker never commits offsets by itself, so the kill below guarantees that
    # the restarted worker sees every message again, the Slack notification included.
    port_a = free_port()
    worker_a = EscuchaProcess(
        ["worker", "--config", str(_config(tmp_path, fake_slack, commit_interval_s=3600))],
        env={**env, "ESCUCHA_WEB_PORT": str(port_a)}, log=tmp_path / "worker-a.log")
    worker_b: EscuchaProcess | None = None
    try:
        # Garbage straight onto the raw topic, as a broken connector would write it.
        await produce_raw(broker.bootstrap, topics.RAW.name,
                          [b"\xff\xfenot json", b'{"source": "x", "id": 1e999}'])
        # In a thread: the fake Slack server shares this event loop and must keep answering.
        replay = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "streams.cli", "replay", str(history),
             "--config", str(_config(tmp_path, fake_slack, commit_interval_s=2.8))],
            env={**os.environ, **env}, capture_output=True, text=True,
            timeout=120, check=True,
        )
        assert f"{history}:{bad_json}: not valid JSON" in replay.stderr, replay.stderr
        assert f"{history}:{bad_type}: author.followers" in replay.stderr, replay.stderr
        assert "2 bad lines" in replay.stderr

        await fake_slack.wait_for(lambda calls: any(
            c.method == "chat.postMessage" and c.ok for c in calls), timeout=150)
        worker_a.kill9()

        port_b = free_port()
        worker_b = EscuchaProcess(
            ["worker", "--config", str(_config(tmp_path, fake_slack, commit_interval_s=2.8))],
            env={**env, "ESCUCHA_WEB_PORT": str(port_b)}, log=tmp_path / "worker-b.log")
        deadline = time.monotonic() + 150
        seen = 0.0
        while time.monotonic() < deadline:
            seen = sum(metric_value(port_b, "escucha_notifications_total",
                                    {"channel": "slack", "outcome": o}) or 0
                       for o in ("duplicate", "delivered"))
            if seen >= 1:
                break
            await asyncio.sleep(1)
        assert seen >= 1, "restarted worker never re-handled the notification:\n" + \
            worker_b.output()[-3000:]
        await asyncio.sleep(3)  # room for a wrong second post to show up

        posts = _posts(fake_slack)
        assert len(posts) == 1, posts
        assert "Acme" in posts[0]
        assert "Globex" not in posts[0]
        assert "INCIDENT" in worker_a.output()

        dead = await read_all(broker.bootstrap, topics.DLQ.name)
        by_stage = {(d["stage"], d["origin"].rsplit(":", 1)[-1]) for d in dead
                    if d["stage"] == "replay"}
        assert by_stage == {("replay", str(bad_json)), ("replay", str(bad_type))}, dead
        classify = [d for d in dead if d["stage"] == "classify"]
        assert len({d["origin"] for d in classify}) == 2, dead  # once each (maybe re-read)
        assert all(d["reason"] for d in classify)
    finally:
        worker_a.close()
        if worker_b is not None:
            worker_b.close()
