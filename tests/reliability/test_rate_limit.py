"""The rate limit and its digest across a kill -9: 20 posts, then one digest of the other 30.

Real parts: the embedded broker, a worker running the deliver agent
(tests/support/deliver_worker.py), the fake Slack Web API. Fifty alerts about fifty incidents
go to one Slack channel, keyed as the escalate stage keys them; the limit is 20 a minute.
The worker posts 20 and holds 30, and is killed. The next one recovers the delivery ledger
and the rate window from their changelogs and reads the held 30 again: it must post none of
the 20 again, must not post the digest while the window still holds the dead worker's 20,
and then posts one digest listing exactly the other 30.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from streams.core import topics
from streams.core.records import Incident, Notification, dumps
from streams.runtime.broker import EmbeddedBroker
from tests.fakes.slack import FakeSlack, SlackCall
from tests.support.procs import free_port, write_config

# ~40 s (two cold starts, a group session timing out, half a minute of window): `make
# test-slow`. The same rules run in the main suite without a broker (tests/unit/agents/deliver/
# test_limits.py).
pytestmark = pytest.mark.slow

_SHIFT_S = 30.0  # the second worker's clock runs this far ahead
_NOW = datetime.now(UTC)


def _alert(i: int) -> Notification:
    inc = Incident(id=f"acme.{i:016x}", watch_id="acme", detector="negative_spike",
                   severity="warning", state="open", opened_at=_NOW, updated_at=_NOW,
                   summary=f"negatives 4x ({i})", fingerprint=f"acme-{i}")
    return Notification(id=f"n{i}", incident=inc, kind="trigger", channel="slack",
                        target="#crisis", level=1, created_at=_NOW)


def _start(config: Path, env: dict[str, str], log: Path, shift_s: float
           ) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "tests.support.deliver_worker", str(config), str(shift_s)],
            env=env, stdout=out, stderr=subprocess.STDOUT)


def _key(call: SlackCall) -> str:
    return str(((call.params.get("metadata") or {}).get("event_payload") or {}).get("key"))


def _digest_lines(call: SlackCall) -> list[int]:
    text = " ".join(b["text"]["text"] for b in call.params["blocks"] if b["type"] == "section")
    return [int(i) for i in re.findall(r"negatives 4x \((\d+)\)", text)]


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-3000:]


async def _until(predicate: Any, *, timeout: float, what: str, log: Path) -> None:  # noqa: ASYNC109
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}:\n{_tail(log)}")
        await asyncio.sleep(0.2)


async def test_twenty_posts_then_one_digest_of_thirty_across_a_kill(
        tmp_path: Path, broker: EmbeddedBroker) -> None:
    async with FakeSlack(known_channels={"#crisis"}) as slack:
        config = write_config(
            tmp_path / "escucha.yaml",
            notifiers={"slack": {"token": "xoxb-test-token", "channel": "#crisis",
                                 "base_url": slack.url}},
            escalation={"rate_limit_per_min": 20},
            datadir=str(tmp_path / "var"))
        env = {**os.environ, "ESCUCHA_KAFKA_BOOTSTRAP": broker.bootstrap,
               "ESCUCHA_WEB_PORT": str(free_port()), "PYTHONUNBUFFERED": "1"}
        log = tmp_path / "workers.log"
        first = _start(config, env, log, 0.0)
        second = None
        try:
            producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap)
            await producer.start()
            try:
                for i in range(50):
                    n = _alert(i)
                    await producer.send(topics.NOTIFICATIONS.name, value=dumps(n),
                                        key=topics.notification_key(n.channel, n.target))
                await producer.flush()
            finally:
                await producer.stop()
            await _until(lambda: len(slack.posted) >= 20, timeout=90, what="20 posts", log=log)
            await asyncio.sleep(2.0)  # a 21st post would have come by now
            assert len(slack.posted) == 20
            first.kill()  # SIGKILL: nothing flushed, nothing committed on the way out
            first.wait(10)

            second = _start(config, env, log, _SHIFT_S)
            await _until(lambda: any(_key(c).startswith("digest:") for c in slack.posted),
                         timeout=120, what="the digest", log=log)
            await asyncio.sleep(2.0)  # anything doubled would have come by now
        finally:
            for proc in (first, second):
                if proc is not None and proc.poll() is None:
                    proc.kill()
                    proc.wait(10)

    keys = [_key(c) for c in slack.posted]
    alerts = sorted(k for k in keys if not k.startswith("digest:"))
    digests = [c for c in slack.posted if _key(c).startswith("digest:")]
    assert len(alerts) == len(set(alerts)) == 20  # none posted twice
    assert len(digests) == 1
    # The second worker's window recovered the 20 posts: the digest waited for the first of
    # them to leave it (60 s after it, on a clock _SHIFT_S ahead), not only for the restart
    # (a worker that forgot the window posts it ~20 s after the first post).
    waited = digests[0].at - slack.posted[0].at
    assert waited >= 60 - _SHIFT_S - 1, waited
    assert sorted(_digest_lines(digests[0])) == sorted(
        set(range(50)) - {int(k[1:]) for k in alerts})
