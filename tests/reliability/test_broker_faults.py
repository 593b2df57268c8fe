"""The broker is not there at start, or goes away mid-run: the worker says so, retries with
backoff, and carries on by itself when the broker is back.

Real parts: the Tansu broker (started with no topics, on a fixed loopback address, so it can
come back on the same one), `escucha worker` as a child process with the bundled model, and a local
server speaking Slack's Web API. Tansu keeps everything in memory, so a broker that comes
back has lost every topic, offset and changelog: the harshest return a worker can meet.
Each test appends its figures to ``$ESCUCHA_FAULT_REPORT`` (tests/support/faults.py).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from streams.connectors.simulate import SimBrand, simulate
from streams.core.records import Mention
from streams.runtime.broker import BrokerError, EmbeddedBroker, wait_until_ready
from tests.fakes.slack import FakeSlack
from tests.support.faults import (
    enriched_keys,
    influencer_mention,
    posts_by_key,
    publish,
    report_figures,
    top_level_posts,
    until,
)
from tests.support.procs import EscuchaProcess, free_port, metric_value, write_config

# Long enough for the worker's group session (10 s) to expire while the broker is away.
_OUTAGE_S = 12.0
_RETRY = re.compile(r"next try in (\d+\.\d)s")


def _config(tmp: Path, slack: FakeSlack) -> Path:
    return write_config(
        tmp / "escucha.yaml",
        kafka={"commit_interval_s": 1.0},
        notifiers={"slack": {"token": "xoxb-test-token", "channel": "#crisis",
                             "base_url": slack.url}},
        watches=[{"id": "acme", "name": "Acme", "terms": ["acme"]},
                 {"id": "globex", "name": "Globex", "terms": ["globex"]},
                 {"id": "initech", "name": "Initech", "terms": ["initech"]}],
        datadir=str(tmp / "var"),
    )


def _empty_broker(tmp: Path) -> EmbeddedBroker:
    """A Tansu broker on a fixed loopback address that starts with no topics, as a restarted
    in-memory broker comes back: start() again brings it back on the same address."""
    return EmbeddedBroker(port=free_port(), log_path=tmp / "broker.log", create_topics=False)


def _worker(tmp: Path, slack: FakeSlack, broker: EmbeddedBroker, port: int) -> EscuchaProcess:
    return EscuchaProcess(["worker", "--config", str(_config(tmp, slack))],
                          env={"ESCUCHA_KAFKA_BOOTSTRAP": broker.bootstrap,
                               "ESCUCHA_WEB_PORT": str(port)},
                          log=tmp / "worker.log")


def _batch(brand: str, *, seed: int, critic: str | None) -> list[Mention]:
    """Ordinary recent chatter about ``brand`` and, with a ``critic``, one post that must
    alert at once."""
    now = datetime.now(UTC)
    chatter = [m for m in simulate(brands=[SimBrand(name=brand, terms=(brand,))],
                                   start=now - timedelta(minutes=2),
                                   duration=timedelta(minutes=2), rate_per_min=10, seed=seed)
               # Only the planted post may come from an account big enough to alert.
               if m.author.followers < 50_000]
    if critic is None:
        return chatter
    return [*chatter, influencer_mention(term=brand, id=f"{critic}-1", handle=critic)]


def _alerted(slack: FakeSlack, watch: str) -> bool:
    return any(i.startswith(watch + ".") for i in top_level_posts(slack))


def _classified(port: int, watch: str) -> float:
    return metric_value(port, "escucha_mentions_classified_total", {"watch": watch}) or 0


def _rebalances(port: int) -> float:
    """Consumer-group rebalances the worker has completed (Faust's own metric)."""
    return metric_value(port, "escucha_faust_rebalance_done_latency_count") or 0


def _ready(port: int) -> float | None:
    return metric_value(port, "escucha_ready")


async def _processed(bootstrap: str, mentions: list[Mention]) -> bool:
    return {m.key for m in mentions} <= await enriched_keys(bootstrap)


def test_waiting_for_a_broker_backs_off_and_says_so(caplog: pytest.LogCaptureFixture) -> None:
    dead = f"127.0.0.1:{free_port()}"  # nothing listens there
    caplog.set_level(logging.INFO, logger="streams.runtime.broker")
    started = time.monotonic()
    with pytest.raises(BrokerError, match=rf"no Kafka broker answered at {dead} within 4s"):
        wait_until_ready(dead, timeout=4)
    took = time.monotonic() - started
    text = caplog.text
    assert f"no Kafka broker answers at {dead} yet" in text
    assert "retrying with backoff for up to 4s" in text
    pauses = [float(p) for p in _RETRY.findall(text)]
    # 0.1 s doubling (capped at 2 s): six attempts in 4 s, not one every 100 ms.
    assert pauses[:4] == [0.2, 0.4, 0.8, 1.6], pauses
    assert len(pauses) <= 6, pauses
    assert 3.9 <= took <= 8, took


async def test_worker_started_before_its_broker_waits_then_runs(
    tmp_path: Path, fake_slack: FakeSlack
) -> None:
    broker = _empty_broker(tmp_path)
    port = free_port()
    worker = _worker(tmp_path, fake_slack, broker, port)
    try:
        # A clear message, then retries further and further apart.
        await until(lambda: "retrying with backoff until one does" in worker.output(), timeout=60,
                    what="the waiting message", context=worker.output)
        await until(lambda: len(_RETRY.findall(worker.output())) >= 4, timeout=30,
                    what="four retries", context=worker.output)
        assert worker.proc.poll() is None, worker.output()
        pauses = [float(p) for p in _RETRY.findall(worker.output())]
        assert pauses == sorted(pauses) and pauses[-1] > pauses[0], pauses

        broker.start()
        up = time.monotonic()
        await until(lambda: _ready(port) == 1, timeout=90, what="the worker to be ready",
                    context=worker.output)
        ready_s = time.monotonic() - up
        mentions = _batch("Acme", seed=1, critic="critic_one")
        await publish(broker.bootstrap, mentions)
        await until(lambda: _alerted(fake_slack, "acme"), timeout=60, what="the Slack alert",
                    context=worker.output)
        alert_s = time.monotonic() - up
        await until(lambda: _processed(broker.bootstrap, mentions), timeout=60, every=2.0,
                    what="every mention enriched", context=worker.output)
        posted = posts_by_key(fake_slack)
        report_figures(
            "5a-broker-absent-at-start", messages_in=len(mentions), processed=len(mentions),
            notifications_expected=1, notifications_delivered=len(posted),
            notifications_duplicated=sum(n - 1 for n in posted.values()),
            retries_before_broker=len(pauses) + 1, backoff_s=pauses,
            recovery_s=round(ready_s, 1), first_alert_s=round(alert_s, 1))
        assert list(posted.values()) == [1], posted
        assert worker.proc.poll() is None  # the same process all along: no restart
        assert "answered after" in worker.output()
    finally:
        worker.close()
        broker.stop()


# Flaky until 2026-12-07 (about half the runs): the rejoin's second seek moved no position
# and the batch published after it was dropped "before its run" (streams/runtime/reads.py).
async def test_broker_lost_mid_run_comes_back_empty_and_alerts_flow_again(
    tmp_path: Path, fake_slack: FakeSlack
) -> None:
    broker = _empty_broker(tmp_path)
    broker.start()
    port = free_port()
    worker = _worker(tmp_path, fake_slack, broker, port)
    try:
        await until(lambda: _ready(port) == 1, timeout=90, what="the worker to be ready",
                    context=worker.output)
        before = _batch("Acme", seed=1, critic="critic_one")
        await publish(broker.bootstrap, before)
        await until(lambda: _alerted(fake_slack, "acme"), timeout=60,
                    what="the first Slack alert", context=worker.output)
        await until(lambda: _processed(broker.bootstrap, before), timeout=60, every=2.0,
                    what="every mention enriched before the outage", context=worker.output)

        log_before = len(worker.output().splitlines())
        broker.stop()
        lost = time.monotonic()
        await until(lambda: _ready(port) == 0, timeout=30,
                    what="/readyz to report the broker gone", context=worker.output)
        noticed_s = time.monotonic() - lost
        await asyncio.sleep(max(0.0, _OUTAGE_S - (time.monotonic() - lost)))
        assert worker.proc.poll() is None, "the worker died with its broker:\n" + \
            worker.output()[-3000:]
        outage_lines = len(worker.output().splitlines()) - log_before

        rebalances = _rebalances(port)
        broker.start()  # same address, nothing in it
        back = time.monotonic()
        # Written while the worker is still reconnecting, as a connector would go on doing.
        early = _batch("Initech", seed=3, critic=None)
        await publish(broker.bootstrap, early)
        await until(lambda: _rebalances(port) > rebalances, timeout=90,
                    what="the worker to rejoin its group", context=worker.output)
        rejoined_s = time.monotonic() - back
        await until(lambda: _ready(port) == 1, timeout=90, what="the worker to be ready again",
                    context=worker.output)
        after = _batch("Globex", seed=2, critic="critic_two")
        await publish(broker.bootstrap, after)
        await until(lambda: _alerted(fake_slack, "globex"), timeout=90,
                    what="an alert after the broker came back", context=worker.output)
        alert_s = time.monotonic() - back
        # Counted by the worker itself, per watch: a broker that came back empty accepts the
        # worker's writes to topics it no longer lists, so a new reader finds nothing by name.
        await until(lambda: _classified(port, "globex") >= len(after), timeout=60,
                    what="every mention sent after the rejoin classified",
                    context=lambda: f"{_classified(port, 'globex')} of {len(after)}\n"
                    f"{worker.output()[-3000:]}")
        early_processed = min(len(early), int(_classified(port, "initech")))
        visible = {m.key for m in after} <= await enriched_keys(broker.bootstrap)
        posted = posts_by_key(fake_slack)
        report_figures(
            "5b-broker-lost-mid-run", messages_in=len(before) + len(early) + len(after),
            processed=len(before) + early_processed + len(after),
            notifications_expected=2, notifications_delivered=len(posted),
            notifications_duplicated=sum(n - 1 for n in posted.values()),
            outage_s=_OUTAGE_S, noticed_s=round(noticed_s, 1),
            log_lines_during_outage=outage_lines,
            # Sent in the seconds between the broker's return and the worker's rejoin.
            sent_before_rejoin=len(early), lost_before_rejoin=len(early) - early_processed,
            rejoined_s=round(rejoined_s, 1),
            # From the broker's return to Slack, for a mention published after the rejoin.
            recovery_s=round(alert_s, 1), enriched_readable_after_return=visible)
        assert sorted(posted.values()) == [1, 1], posted
        assert worker.proc.poll() is None  # recovered without a restart
        said = worker.output()
        assert f"lost the Kafka broker at {broker.bootstrap}" in said, said[-3000:]
        assert f"the Kafka broker at {broker.bootstrap} is back after" in said, said[-3000:]
        # The Kafka client's per-node retry errors are held back (streams/runtime/logs.py): before,
        # this outage wrote ~2,400 lines in 12 s.
        assert outage_lines < 100, said[-6000:]
    finally:
        worker.close()
        broker.stop()
