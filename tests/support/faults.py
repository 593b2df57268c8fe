"""What the fault-injection tests (tests/reliability) share: deadlines, mentions that are
sure to alert, reading Slack and the incidents topic back, and the figures each run reports.

Every scenario appends one JSON line of measured figures to the file named by
``$ESCUCHA_FAULT_REPORT`` (when set), so a run of the suite leaves its numbers behind.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import time
import urllib.request
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from streams.connectors.publish import Publisher
from streams.core import topics
from streams.core.records import Author, Engagement, Mention
from tests.fakes.slack import FakeSlack, SlackCall
from tests.support.kafka import read_all, read_records

__all__ = [
    "Figures",
    "counted_by_watch",
    "distinct_by_watch",
    "uncommitted_processed",
    "enriched_keys",
    "influencer_mention",
    "latest_incidents",
    "partitions_received",
    "posts_by_key",
    "publish",
    "raw_runs",
    "report_figures",
    "top_level_posts",
    "until",
]

T = TypeVar("T")
Figures = dict[str, Any]


def report_figures(scenario: str, **figures: Any) -> Figures:
    """Append ``{"scenario": …, **figures}`` as one JSON line to ``$ESCUCHA_FAULT_REPORT``."""
    line: Figures = {"scenario": scenario, **figures,
                     "at": datetime.now(UTC).isoformat(timespec="seconds")}
    target = os.environ.get("ESCUCHA_FAULT_REPORT")
    if target:
        with Path(target).open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(line, sort_keys=True) + "\n")
    print(json.dumps(line, sort_keys=True))  # shown with -s and in failure reports
    return line


# The deadline is the point of this helper, hence the timeout parameter.
async def until(
    probe: Callable[[], Awaitable[T | None] | T | None], *, timeout: float,  # noqa: ASYNC109
    what: str,
    every: float = 0.5, context: Callable[[], str] = lambda: "",
) -> T:
    """Poll ``probe`` (sync or async) until it returns something truthy; fail after
    ``timeout`` seconds naming ``what`` and whatever ``context()`` adds (e.g. a worker's log)."""
    deadline = time.monotonic() + timeout
    while True:
        found = probe()
        if isinstance(found, Awaitable):
            found = await found
        if found:
            return found  # type: ignore[return-value]
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}\n"
                                 f"{context()}")
        await asyncio.sleep(every)


def influencer_mention(*, term: str, id: str, handle: str,
                       at: datetime | None = None) -> Mention:
    """A furious post by a 2M-follower account: the influencer detector alerts on it at once,
    with no warm-up, so it proves the whole path mention → Slack in a few seconds."""
    return Mention(
        source="fault", id=id, url=f"https://example.com/{handle}/{id}",
        author=Author(handle=handle, name=handle.title(), followers=2_000_000, verified=True),
        text=(f"{term} is a disaster. Terrible, broken, dangerous product, awful support. "
              f"I hate it and I am furious. Never buying {term} again."),
        language="en", created_at=at or datetime.now(UTC),
        engagement=Engagement(likes=900, shares=400, replies=300),
    )


async def publish(bootstrap: str, mentions: Iterable[Mention]) -> int:
    """Send mentions to the raw topic the way `escucha replay` does; return how many."""
    async with Publisher(bootstrap=bootstrap) as pub:
        for mention in mentions:
            await pub.mention(mention)
        return pub.sent


def top_level_posts(slack: FakeSlack) -> dict[str, list[SlackCall]]:
    """Successful top-level chat.postMessage calls (not thread replies), by incident id."""
    out: dict[str, list[SlackCall]] = {}
    for call in slack.posted:
        if call.params.get("thread_ts"):
            continue
        payload = (call.params.get("metadata") or {}).get("event_payload") or {}
        out.setdefault(str(payload.get("incident_id")), []).append(call)
    return out


def posts_by_key(slack: FakeSlack) -> dict[str, int]:
    """How many successful posts carried each notification key (its idempotency key)."""
    counts: dict[str, int] = {}
    for call in slack.posted:
        payload = (call.params.get("metadata") or {}).get("event_payload") or {}
        key = str(payload.get("key"))
        counts[key] = counts.get(key, 0) + 1
    return counts


async def enriched_keys(bootstrap: str) -> set[str]:
    """Keys (source:id) of every mention on the enriched topic, any watch."""
    records = await read_all(bootstrap, topics.ENRICHED.name, skip_invalid=True)
    return {f"{r['mention']['source']}:{r['mention']['id']}" for r in records
            if isinstance(r.get("mention"), dict)}


async def raw_runs(bootstrap: str, keys: Iterable[str], *, partitions: int = 4
                   ) -> dict[int, list[tuple[int, int]]]:
    """Where ``keys`` sit on the raw topic: per partition, runs of consecutive offsets
    (first, last). Tells which seek read a backlog again (the workers' trace of
    streams.runtime.reads says where each one went)."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    wanted = set(keys)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                auto_offset_reset="earliest", group_id=None)
    await consumer.start()
    found: dict[int, list[int]] = {}
    try:
        tps = [TopicPartition(topics.RAW.name, p) for p in range(partitions)]
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        pending = {tp for tp in tps if ends[tp] > 0}
        while pending:
            batch = await asyncio.wait_for(consumer.getmany(timeout_ms=1000), timeout=30)
            if not batch:
                break
            for tp, records in batch.items():
                found.setdefault(tp.partition, []).extend(
                    r.offset for r in records if (r.key or b"").decode() in wanted)
                if records and records[-1].offset + 1 >= ends[tp]:
                    pending.discard(tp)
    finally:
        await consumer.stop()
    runs: dict[int, list[tuple[int, int]]] = {}
    for partition, offsets in sorted(found.items()):
        for offset in sorted(offsets):
            own = runs.setdefault(partition, [])
            if own and own[-1][1] == offset - 1:
                own[-1] = (own[-1][0], offset)
            else:
                own.append((offset, offset))
    return runs


async def latest_incidents(bootstrap: str) -> dict[str, dict[str, Any]]:
    """The last snapshot of each incident on the incidents topic, by incident id."""
    latest: dict[str, dict[str, Any]] = {}
    for snap in await read_all(bootstrap, topics.INCIDENTS.name, skip_invalid=True):
        if "id" in snap:
            latest[str(snap["id"])] = snap
    return latest


def partitions_received(port: int, topic: str) -> set[int]:
    """Partitions of ``topic`` a worker has received messages from (its Faust metrics)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as resp:
            text = resp.read().decode()
    except OSError:
        return set()
    found = set()
    for line in text.splitlines():
        if not line.startswith("escucha_faust_messages_received_per_topics_partition{"):
            continue
        labels = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}")[0]))
        if labels.get("topic") == topic and float(line.rsplit(" ", 1)[1]) > 0:
            found.add(int(labels["partition"]))
    return found


async def distinct_by_watch(bootstrap: str) -> dict[str, set[str]]:
    """The distinct mention keys each watch matched: the enriched topic, copies folded."""
    out: dict[str, set[str]] = {}
    for r in await read_all(bootstrap, topics.ENRICHED.name, idle_s=2.0, skip_invalid=True):
        m = r.get("mention")
        if isinstance(m, dict) and "watch_id" in r:
            out.setdefault(str(r["watch_id"]), set()).add(f"{m['source']}:{m['id']}")
    return out


#: The detect stage's table, as Faust names its changelog topic: <app id>-<table>-changelog.
DETECT_CHANGELOG = "escucha-escucha.detect-state-changelog"


async def counted_by_watch(bootstrap: str) -> dict[str, dict[str, int]]:
    """What each watch's stored counts say: ``{"aggregates": {watch: n}, "detect": {watch:
    n}}``, from the latest snapshot of every bucket and the latest saved detection state
    (its per-minute counts: the history of these tests is shorter than the hour it keeps)."""
    buckets: dict[str, dict[str, Any]] = {}
    for snap in await read_all(bootstrap, topics.AGGREGATES.name, idle_s=2.0,
                               skip_invalid=True):
        if "watch_id" in snap and "start" in snap:
            buckets[f"{snap['watch_id']}|{snap['start']}"] = snap
    stored: dict[str, int] = {}
    for snap in buckets.values():
        stored[snap["watch_id"]] = stored.get(snap["watch_id"], 0) + int(snap["count"])
    detected: dict[str, int] = {}
    for watch, state in (await _latest_by_key(bootstrap, DETECT_CHANGELOG)).items():
        detected[watch] = sum(int(row[0]) for row in state.get("m", {}).values())
    return {"aggregates": stored, "detect": detected}


async def _latest_by_key(bootstrap: str, topic: str) -> dict[str, Any]:
    latest: dict[str, Any] = {}
    for r in await read_records(bootstrap, topic, idle_s=2.0):
        if r.key is not None and r.value:
            latest[json.loads(r.key)] = json.loads(r.value)
    return latest


async def uncommitted_processed(bootstrap: str, *, partitions: int = 4) -> set[str]:
    """Keys of the raw mentions above the group's committed offsets that are already on
    the enriched topic: what a worker stopped now had processed and not committed, i.e.
    what its successor must classify again."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id="escucha",
                                enable_auto_commit=False, auto_offset_reset="earliest")
    await consumer.start()
    tail: set[str] = set()
    try:
        tps = [TopicPartition(topics.RAW.name, p) for p in range(partitions)]
        consumer.assign(tps)
        committed = {tp: await consumer.committed(tp) or 0 for tp in tps}
        ends = await consumer.end_offsets(tps)
        for tp in tps:
            if committed[tp] < ends[tp]:
                consumer.seek(tp, committed[tp])
            else:
                consumer.pause(tp)
        pending = {tp for tp in tps if committed[tp] < ends[tp]}
        while pending:
            batch = await asyncio.wait_for(consumer.getmany(timeout_ms=1000), timeout=30)
            if not batch:
                break
            for tp, records in batch.items():
                tail.update((r.key or b"").decode() for r in records)
                if records and records[-1].offset + 1 >= ends[tp]:
                    pending.discard(tp)
                    consumer.pause(tp)
    finally:
        await consumer.stop()
    return tail & await enriched_keys(bootstrap)

