"""Workers die or leave in the middle of a crisis; nothing is lost, nothing is said twice.

Scenario 1: a worker is killed with SIGKILL while a replay is still producing and the crisis
burst is being processed; a new worker takes over from the committed offsets.
Scenario 2: two workers share the partitions; the one that opened the first incident is
stopped (SIGTERM, as a rolling update does) during the crisis, and the other takes over.

Counts are asserted exactly: the stored aggregates and the saved detection state of each
watch count every distinct mention it matched once, whatever was classified twice around the
fault, and a quiet control watch (Initech, no crisis) fires nothing across it. What was
classified again is held to a target: after the kill, what the dead worker had processed
above its committed offsets; after the hand-over, one batch per moved partition plus what
the stopped worker had not committed.

Real parts only: the embedded Tansu broker, `escucha worker` and `escucha replay` as child
processes, the bundled model, and a local server speaking Slack's Web API. Each test appends
its figures to ``$ESCUCHA_FAULT_REPORT`` (tests/support/faults.py).
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from streams.connectors.simulate import Crisis, SimBrand, simulate
from streams.core import topics
from streams.runtime.broker import EmbeddedBroker
from tests.fakes.slack import FakeSlack
from tests.support.faults import (
    counted_by_watch,
    distinct_by_watch,
    enriched_keys,
    latest_incidents,
    partitions_received,
    posts_by_key,
    raw_runs,
    report_figures,
    top_level_posts,
    uncommitted_processed,
    until,
)
from tests.support.kafka import read_all
from tests.support.procs import EscuchaProcess, free_port, metric_value, write_config

_START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
_MINUTES = 22
_CRISIS_AT = timedelta(minutes=12)
# Event time plays this much faster than the wall clock: the whole history takes ~110 s to
# publish, so the replay is still producing when the crisis burst reaches the workers. Slow
# enough that the ~20 s a new worker takes to start are under the watches' lateness in
# event time: what it reads back then is not too late to count.
_SPEED = 12.0
_LATENESS_MIN = 6
_BATCH = 32  # model.batch_size: a hand-over may classify this much again per moved partition
_LINK_SECRET = "link-secret-shared-by-all-workers-0123"


def _history(path: Path, *, seed: int) -> list[str]:
    """Two brands, both in crisis from minute 12 for 5 minutes, and a quiet third one;
    returns the mention keys."""
    mentions = list(simulate(
        brands=[SimBrand(name="Acme", terms=("Acme", "AcmePhone")),
                SimBrand(name="Globex", terms=("Globex", "GlobexPay")),
                SimBrand(name="Initech", terms=("Initech", "InitechCloud"))],
        start=_START, duration=timedelta(minutes=_MINUTES), rate_per_min=30,
        crises=[Crisis(brand="Acme", start=_CRISIS_AT, duration=timedelta(minutes=5),
                       multiplier=8.0, topic="outage"),
                Crisis(brand="Globex", start=_CRISIS_AT, duration=timedelta(minutes=5),
                       multiplier=8.0, topic="data breach")],
        seed=seed))
    path.write_text("".join(m.model_dump_json() + "\n" for m in mentions))
    return [m.key for m in mentions]


def _config(tmp: Path, slack: FakeSlack, name: str) -> Path:
    """One worker's config: its own datadir, everything else shared by the group."""
    return write_config(
        tmp / f"{name}.yaml",
        kafka={"commit_interval_s": 2.0},
        model={"batch_size": _BATCH},
        # The history is only 22 minutes long, published in event-time order.
        detect={"warmup_min": 4, "lateness_min": _LATENESS_MIN},
        notifiers={"slack": {"token": "xoxb-test-token", "channel": "#crisis",
                             "base_url": slack.url}},
        # Signed links must verify on whichever worker answers: one secret for the group.
        api={"link_secret": _LINK_SECRET},
        watches=[{"id": "acme", "name": "Acme", "terms": ["acme", "acmephone"]},
                 {"id": "globex", "name": "Globex", "terms": ["globex", "globexpay"]},
                 {"id": "initech", "name": "Initech", "terms": ["initech", "initechcloud"]}],
        datadir=str(tmp / f"var-{name}"),
    )


class _Worker:
    """`escucha worker` with its own web port, config and log."""

    def __init__(self, tmp: Path, slack: FakeSlack, broker: EmbeddedBroker, name: str) -> None:
        self.name = name
        self.port = free_port()
        self.proc = EscuchaProcess(
            ["worker", "--config", str(_config(tmp, slack, name))],
            env={"ESCUCHA_KAFKA_BOOTSTRAP": broker.bootstrap,
                 "ESCUCHA_WEB_PORT": str(self.port),
                 # Seeks, runs and commits per partition in the log: what a re-read came from.
                 "ESCUCHA_DEBUG_LOGGERS": "streams.runtime.reads"},
            log=tmp / f"{name}.log")

    def ready(self) -> bool:
        return metric_value(self.port, "escucha_ready") == 1

    def tail(self) -> str:
        return f"--- {self.name} ---\n{self.proc.output()[-3000:]}"


def _replay(history: Path, config: Path, bootstrap: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "streams.cli", "replay", str(history), "--config", str(config),
         "--speed", str(_SPEED)],
        env={**os.environ, "ESCUCHA_KAFKA_BOOTSTRAP": bootstrap},
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _first_incident_owner(workers: list[_Worker]) -> _Worker | None:
    for w in workers:
        if "INCIDENT " in w.proc.output():
            return w
    return None


class _Progress:
    """Polls the enriched topic until every key is there; says what is missing if not."""

    def __init__(self, bootstrap: str, keys: list[str], worker: _Worker) -> None:
        self.bootstrap, self.keys, self.worker = bootstrap, set(keys), worker
        self.missing: set[str] = set(keys)

    async def done(self) -> bool:
        self.missing = self.keys - await enriched_keys(self.bootstrap)
        return not self.missing

    def context(self) -> str:
        return (f"{len(self.missing)} of {len(self.keys)} mentions not enriched, e.g. "
                f"{sorted(self.missing)[:5]}\n{self.worker.tail()}")


async def _positions(bootstrap: str, missing: set[str]) -> str:
    """Where the missing mentions sit on the raw topic, against the group's committed offsets:
    tells a consumer that stopped short from a broker that did not show the tail."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id="escucha",
                                enable_auto_commit=False, auto_offset_reset="earliest")
    await consumer.start()
    try:
        tps = [TopicPartition(topics.RAW.name, p) for p in range(4)]
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        committed = {tp.partition: await consumer.committed(tp) for tp in tps}
        await consumer.seek_to_beginning(*tps)
        found: dict[int, list[int]] = {}
        while True:
            batch = await consumer.getmany(timeout_ms=1000)
            if not batch:
                break
            for tp, records in batch.items():
                found.setdefault(tp.partition, []).extend(
                    r.offset for r in records if (r.key or b"").decode() in missing)
    finally:
        await consumer.stop()
    return (f"raw end offsets {({tp.partition: o for tp, o in ends.items()})}, committed "
            f"{committed}, missing offsets by partition "
            f"{ {p: (min(o), max(o), len(o)) for p, o in found.items() if o} }")


async def _settle(replay: subprocess.Popen[bytes], bootstrap: str, keys: list[str],
                  worker: _Worker, slack: FakeSlack) -> None:
    """The replay done, every mention enriched, both brands alerted, then Slack quiet long
    enough for a wrong second post to show up."""
    # In a thread: the fake Slack server shares this event loop and must keep answering.
    out = (await asyncio.to_thread(replay.communicate, timeout=120))[1].decode()
    assert replay.returncode == 0, out
    progress = _Progress(bootstrap, keys, worker)
    try:
        await until(progress.done, timeout=100, every=3.0,
                    what="every replayed mention enriched", context=progress.context)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{await _positions(bootstrap, progress.missing)}") from None
    await until(lambda: {i.split(".")[0] for i in top_level_posts(slack)}
                >= {"acme", "globex"}, timeout=60, what="both alerts", context=worker.tail)
    await until(lambda: time.monotonic() - max(c.at for c in slack.calls) > 5,
                timeout=60, what="Slack to go quiet")


async def _account(bootstrap: str, slack: FakeSlack, keys: list[str]) -> dict[str, Any]:
    """What reached each stage, read back from the topics and the fake Slack server."""
    enriched = await read_all(bootstrap, topics.ENRICHED.name, idle_s=2.0, skip_invalid=True)
    copies = Counter(f"{r['mention']['source']}:{r['mention']['id']}" for r in enriched)
    dead = await read_all(bootstrap, topics.DLQ.name, idle_s=2.0, skip_invalid=True)
    notes = await read_all(bootstrap, topics.NOTIFICATIONS.name, idle_s=2.0, skip_invalid=True)
    expected = {n["id"] for n in notes if n.get("channel") == "slack"}
    posted = posts_by_key(slack)
    return {
        "messages_in": len(keys),
        "processed": len(set(keys) & set(copies)),
        # At-least-once: copies the enriched topic holds beyond one per mention.
        "reprocessed": sum(copies[k] - 1 for k in keys if copies[k] > 1),
        "dead_lettered": len(dead),
        "notifications_expected": len(expected),
        "notifications_delivered": len(expected & posted.keys()),
        "notifications_duplicated": sum(n - 1 for n in posted.values() if n > 1),
        "unexpected_posts": sorted(set(posted) - expected),
        "missing": sorted(expected - posted.keys()),
        "_missing_keys": sorted(set(keys) - set(copies)),
        "_reclassified": {k for k in keys if copies[k] > 1},
    }


async def _exact_counts(bootstrap: str) -> dict[str, Any]:
    """Each watch's stored aggregate total and detection count against the distinct
    mentions it matched; signals of the quiet control watch."""
    distinct = {w: len(k) for w, k in (await distinct_by_watch(bootstrap)).items()}
    # Snapshots are stored once a second and states saved on a timer: the last ones may
    # still be on their way. Read again for a while; the assertion then shows any gap.
    deadline = time.monotonic() + 30
    while True:
        counted = await counted_by_watch(bootstrap)
        if ((counted["aggregates"] == distinct and counted["detect"] == distinct)
                or time.monotonic() > deadline):
            break
        await asyncio.sleep(2)
    signals = await read_all(bootstrap, topics.SIGNALS.name, idle_s=2.0, skip_invalid=True)
    return {"distinct_by_watch": distinct, "aggregates_by_watch": counted["aggregates"],
            "detected_by_watch": counted["detect"],
            "quiet_watch_signals": sum(1 for s in signals if s.get("watch_id") == "initech")}


def _assert_exact(counts: dict[str, Any]) -> None:
    distinct = counts["distinct_by_watch"]
    assert set(distinct) == {"acme", "globex", "initech"}, distinct
    assert counts["aggregates_by_watch"] == distinct, counts
    assert counts["detected_by_watch"] == distinct, counts
    assert counts["quiet_watch_signals"] == 0, counts


async def _check_incidents(bootstrap: str, slack: FakeSlack) -> dict[str, dict[str, Any]]:
    """One incident per fingerprint, each with one top-level Slack post and a sane snapshot."""
    incidents = await latest_incidents(bootstrap)
    by_fp = Counter(inc["fingerprint"] for inc in incidents.values())
    assert all(n == 1 for n in by_fp.values()), f"fingerprint opened twice: {by_fp}"
    for inc in incidents.values():
        assert inc["state"] == "open", inc
        assert inc["signal_ids"], inc
        assert inc["id"].startswith(inc["watch_id"] + "."), inc
    posts = top_level_posts(slack)
    assert {i: len(c) for i, c in posts.items() if len(c) != 1} == {}, "posted twice"
    assert set(posts) == set(incidents), (sorted(posts), sorted(incidents))
    assert {inc["watch_id"] for inc in incidents.values()} >= {"acme", "globex"}, incidents
    return incidents


def _assert_clean(figures: dict[str, Any], workers: list[_Worker]) -> None:
    # The hole watch (streams/runtime/holes.py) would mend a dropped message, and the counts above
    # would still add up: a worker that had to is a rebalance bug coming back.
    for w in workers:
        assert "never processed" not in w.proc.output(), w.tail()
    assert not figures["_missing_keys"], f"{len(figures['_missing_keys'])} mentions lost"
    assert figures["processed"] == figures["messages_in"]
    assert figures["dead_lettered"] == 0
    assert figures["notifications_expected"] >= 2
    assert not figures["missing"], f"notifications never delivered: {figures['missing']}"
    assert not figures["unexpected_posts"], figures["unexpected_posts"]
    assert figures["notifications_duplicated"] == 0


async def test_kill9_mid_burst_loses_nothing_and_posts_once(
    tmp_path: Path, broker: EmbeddedBroker, fake_slack: FakeSlack
) -> None:
    history = tmp_path / "history.jsonl"
    keys = _history(history, seed=21)
    first = _Worker(tmp_path, fake_slack, broker, "worker-a")
    second: _Worker | None = None
    replay: subprocess.Popen[bytes] | None = None
    try:
        await until(first.ready, timeout=90, what="worker-a ready", context=first.tail)
        replay = _replay(history, tmp_path / "worker-a.yaml", broker.bootstrap)
        started = time.monotonic()
        # The first alert means the crisis burst is in flight: more signals, the other
        # brand's incident and their notifications are somewhere between topics right now.
        await until(lambda: top_level_posts(fake_slack), timeout=100,
                    what="the first Slack alert", context=first.tail)
        replay_running = replay.poll() is None
        killed_at = time.monotonic()
        await asyncio.to_thread(first.proc.kill9)
        assert replay_running, "the replay had finished before the kill: not mid-burst"
        # What the dead worker had classified above its committed offsets: the target for
        # what its successor classifies again.
        tail = await uncommitted_processed(broker.bootstrap)

        second = _Worker(tmp_path, fake_slack, broker, "worker-b")
        await until(second.ready, timeout=90, what="worker-b ready", context=second.tail)
        ready_s = time.monotonic() - killed_at
        await _settle(replay, broker.bootstrap, keys, second, fake_slack)
        caught_up_s = time.monotonic() - killed_at

        incidents = await _check_incidents(broker.bootstrap, fake_slack)
        figures = await _account(broker.bootstrap, fake_slack, keys)
        counts = await _exact_counts(broker.bootstrap)
        report_figures(
            "1-kill9-mid-burst",
            **{k: v for k, v in figures.items() if not k.startswith("_")}, **counts,
            uncommitted_at_kill=len(tail),
            reclassified_beyond_target=len(figures["_reclassified"] - tail),
            incidents=len(incidents), killed_after_s=round(killed_at - started, 1),
            replay_running_at_kill=replay_running,
            recovery_s=round(ready_s, 1), caught_up_s=round(caught_up_s, 1))
        _assert_clean(figures, [first, second])
        _assert_exact(counts)
        # Only the dead worker's uncommitted tail is classified again: what the new worker
        # fetched before its seek is not handed to the stages (streams/runtime/reads.py).
        beyond = sorted(figures["_reclassified"] - tail)
        assert not beyond, f"classified again beyond the uncommitted tail: {beyond[:10]}"
    finally:
        if replay is not None and replay.poll() is None:
            replay.kill()
            replay.wait(10)
        first.proc.close()
        if second is not None:
            second.proc.close()


async def test_worker_stopped_during_crisis_hands_over_without_doubles(
    tmp_path: Path, broker: EmbeddedBroker, fake_slack: FakeSlack
) -> None:
    history = tmp_path / "history.jsonl"
    keys = _history(history, seed=22)
    workers = [_Worker(tmp_path, fake_slack, broker, "worker-a"),
               _Worker(tmp_path, fake_slack, broker, "worker-b")]
    replay: subprocess.Popen[bytes] | None = None
    try:
        await until(lambda: all(w.ready() for w in workers), timeout=100,
                    what="both workers ready",
                    context=lambda: "\n".join(w.tail() for w in workers))
        replay = _replay(history, tmp_path / "worker-a.yaml", broker.bootstrap)
        started = time.monotonic()
        # Stop the worker that opened the first incident: its watch moves to the other one
        # in the middle of that watch's crisis.
        leaving = await until(lambda: _first_incident_owner(workers), timeout=100,
                              what="a first incident",
                              context=lambda: "\n".join(w.tail() for w in workers))
        staying = next(w for w in workers if w is not leaving)
        moved = re.search(r"=== INCIDENT (\w+)\.", leaving.proc.output())
        assert moved is not None
        before = partitions_received(staying.port, topics.RAW.name)
        replay_running = replay.poll() is None
        stopped_at = time.monotonic()
        leaving.proc.proc.send_signal(signal.SIGTERM)
        rc = await asyncio.to_thread(leaving.proc.proc.wait, 60)
        stop_s = time.monotonic() - stopped_at
        # What the stopped worker left processed but uncommitted (the staying one may have
        # committed some of its own meanwhile: this is an upper bound on both).
        tail = await uncommitted_processed(broker.bootstrap)
        assert replay_running, "the replay had finished before the stop: not mid-crisis"
        # Taken over: the staying worker now reads every raw partition.
        await until(lambda: partitions_received(staying.port, topics.RAW.name) == {0, 1, 2, 3},
                    timeout=60, what="the other worker to take every partition",
                    context=staying.tail)
        takeover_s = time.monotonic() - stopped_at

        await _settle(replay, broker.bootstrap, keys, staying, fake_slack)
        caught_up_s = time.monotonic() - stopped_at

        incidents = await _check_incidents(broker.bootstrap, fake_slack)
        figures = await _account(broker.bootstrap, fake_slack, keys)
        counts = await _exact_counts(broker.bootstrap)
        # The crisis went on after the hand-over: the staying worker detected more of it on
        # the moved watch (and joined the open incident: one per fingerprint, checked above).
        later = re.findall(rf"signal \w+ for {moved[1]}:", staying.proc.output())
        moved_partitions = 4 - len(before) if before else 2
        target = _BATCH * moved_partitions + len(tail)
        report_figures(
            "2-worker-stopped-mid-crisis",
            **{k: v for k, v in figures.items() if not k.startswith("_")}, **counts,
            uncommitted_at_stop=len(tail), reclassified_target=target,
            reclassified_beyond_tail=len(figures["_reclassified"] - tail),
            incidents=len(incidents), stopped_after_s=round(stopped_at - started, 1),
            replay_running_at_stop=replay_running, stop_exit_code=rc,
            stop_s=round(stop_s, 1), partitions_before=len(before),
            recovery_s=round(takeover_s, 1), caught_up_s=round(caught_up_s, 1),
            moved_watch=moved[1], signals_after_takeover=len(later),
            reclassified_raw_runs={p: r[:20] for p, r in (await raw_runs(
                broker.bootstrap, figures["_reclassified"])).items()})
        _assert_clean(figures, workers)
        _assert_exact(counts)
        assert rc == 0, leaving.tail()
        assert later, f"no signal for {moved[1]} after the hand-over:\n{staying.tail()}"
        # A second seek in the staying worker's new generation handed out again what the
        # first had (20 a partition in one traced run); a generation now hands each record
        # out once (streams/runtime/reads.py).
        assert figures["reprocessed"] <= target, (
            f"classified {figures['reprocessed']} again against a target of {target}: "
            f"{sorted(figures['_reclassified'] - tail)[:10]}\n{staying.tail()}")
    finally:
        if replay is not None and replay.poll() is None:
            replay.kill()
            replay.wait(10)
        for w in workers:
            w.proc.close()
