"""Channels failing during a crisis: everything is delivered once after recovery, and a channel
that fails for good falls back.

Real parts: the embedded broker, `escucha worker` and `escucha replay`, the bundled model, and
local servers speaking Slack's Web API, SMTP (aiosmtpd), PagerDuty's Events API v2 and a signed
webhook. While the alert goes out: SMTP refuses connections for 20 s, PagerDuty answers 500
three times, Slack rate-limits once, and the webhook answers 404 to everything. (Slack down for
a full 60 s is tests/e2e/test_slack_outage.py.)

Every notification the escalation stage emitted (read back from escucha.notifications) must
reach its channel exactly once: email by Message-ID (one per notification id), Slack by the
idempotency key in the message metadata, PagerDuty one event per notification.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from notifiers.email import message_id
from streams.core import topics
from streams.runtime.broker import EmbeddedBroker
from tests.e2e.test_replay_to_slack import _history
from tests.fakes.pagerduty import FakePagerDuty
from tests.fakes.slack import FakeSlack
from tests.fakes.smtp import FakeSMTP
from tests.fakes.webhook import FakeWebhookReceiver
from tests.support.kafka import read_all
from tests.support.procs import EscuchaProcess, free_port, write_config

ROUTING_KEY = "R0UT1NGKEY0000000000000000000000"
HOOK_SECRET = "webhook-secret-0123456789abcdef"


async def _until(predicate: Any, *, timeout: float, what: str) -> Any:  # noqa: ASYNC109
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        await asyncio.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def _record(scenario: str, figures: dict[str, object]) -> None:
    path = os.environ.get("ESCUCHA_FAULT_REPORT")
    if path:
        with open(path, "a") as fh:
            fh.write(json.dumps({"scenario": scenario, **figures}) + "\n")


async def test_smtp_pagerduty_slack_failures_deliver_once_and_a_dead_channel_falls_back(
    tmp_path: Path, broker: EmbeddedBroker
) -> None:
    history = tmp_path / "history.jsonl"
    _history(history)
    async with FakeSlack(known_channels={"#crisis"}) as slack, FakeSMTP() as smtp, \
            FakePagerDuty(routing_keys=[ROUTING_KEY]) as pd, \
            FakeWebhookReceiver(secret=HOOK_SECRET) as hook:
        config = write_config(
            tmp_path / "escucha.yaml",
            detect={"warmup_min": 8, "lateness_min": 2},
            notifiers={
                "slack": {"token": "xoxb-test-token", "channel": "#crisis",
                          "base_url": slack.url},
                "email": {"host": "127.0.0.1", "port": smtp.port,
                          "from_addr": "escucha@example.com"},
                "pagerduty": {"events_url": pd.events_url,
                              "services": {"comms": ROUTING_KEY}},
                "webhook": {"endpoints": {"broken": {"url": hook.url,
                                                     "secret": HOOK_SECRET}}},
            },
            escalation={
                "policies": [{"id": "crisis", "levels": [{"targets": [
                    {"slack": "#crisis"}, {"email": ["comms@example.com"]},
                    {"pagerduty": "comms"}, {"webhook": "broken"}], "timeout_s": 3600}]}],
                "route": {"policy": "crisis"},
                "fallback": [{"email": ["fallback@example.com"]}],
            },
            watches=[{"id": "acme", "name": "Acme", "terms": ["acme", "acmephone"]},
                     {"id": "globex", "name": "Globex", "terms": ["globex"]}],
            datadir=str(tmp_path / "var"),
        )
        env = {"ESCUCHA_KAFKA_BOOTSTRAP": broker.bootstrap, "ESCUCHA_WEB_PORT": str(free_port())}
        await smtp.go_down()
        pd.fail_next(500, times=3)
        slack.fail_next("chat.postMessage", status=429, error="ratelimited", retry_after=2)
        hook.fail_next(404, times=10_000)
        worker = EscuchaProcess(["worker", "--config", str(config)], env=env,
                                log=tmp_path / "worker.log")
        try:
            await asyncio.to_thread(
                subprocess.run, [sys.executable, "-m", "streams.cli", "replay", str(history),
                                 "--config", str(config)],
                env={**os.environ, **env}, check=True, timeout=120, capture_output=True)
            await _until(lambda: slack.posted, timeout=150, what="the Slack alert")
            # Paged while SMTP is still down: one channel's outage holds no other back.
            await _until(lambda: pd.events, timeout=60, what="PagerDuty after its 500s")
            await asyncio.sleep(20)  # SMTP has been refusing connections all along
            up_at = time.monotonic()
            await smtp.come_up()
            await _until(lambda: [m for m in smtp.messages if "comms@" in str(m["To"])],
                         timeout=90, what="the email after SMTP came back")
            email_recovery_s = time.monotonic() - up_at
            await _until(lambda: [m for m in smtp.messages if "fallback@" in str(m["To"])],
                         timeout=90, what="the fallback email for the dead webhook")
            await asyncio.sleep(5)  # anything doubled would have arrived by now

            notes = await read_all(broker.bootstrap, topics.NOTIFICATIONS.name, idle_s=1.0)
            by_channel: dict[str, set[str]] = {}
            for n in notes:
                by_channel.setdefault(n["channel"], set()).add(n["id"])
            domain = "example.com"
            mail_ids = Counter(str(m["Message-ID"]) for m in smtp.messages
                               if "comms@" in str(m["To"]))
            expected_mail = {message_id(i, domain=domain) for i in by_channel["email"]}
            assert set(mail_ids) == expected_mail, (mail_ids, expected_mail)
            assert max(mail_ids.values()) == 1  # none doubled by the retries
            slack_keys = Counter(
                m["metadata"]["event_payload"]["key"] for m in slack.messages()
                if not m.get("thread_ts"))
            assert max(slack_keys.values()) == 1
            assert sum(1 for c in slack.posted if not c.params.get("thread_ts")) == len(
                {_incident(n) for n in notes if n["channel"] == "slack"})
            assert len(pd.events) == len(by_channel["pagerduty"])
            assert Counter(e["event_action"] for e in pd.events)["trigger"] == len(
                {_incident(n) for n in notes if n["channel"] == "pagerduty"})
            fallback = Counter(str(m["Message-ID"]) for m in smtp.messages
                               if "fallback@" in str(m["To"]))
            assert max(fallback.values()) == 1
            assert hook.received == []  # it never accepted anything
            _record("channel faults (SMTP down 20 s, PagerDuty 500 x3, Slack 429, webhook "
                    "404 for good)", {
                        "notifications": len(notes),
                        "email_expected": len(expected_mail), "email_delivered": len(mail_ids),
                        "email_duplicated": sum(v - 1 for v in mail_ids.values()),
                        "pagerduty_expected": len(by_channel["pagerduty"]),
                        "pagerduty_delivered": len(pd.events),
                        "slack_top_level_posts": sum(slack_keys.values()),
                        "fallback_emails": sum(fallback.values()),
                        "email_recovery_s": round(email_recovery_s, 1)})
        finally:
            worker.close()


def _incident(note: dict[str, Any]) -> str:
    return str(note["incident"]["id"])
