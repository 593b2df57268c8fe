"""Whole-topic views every worker keeps in memory: all incidents, silences and aggregates.

The tables behind escalation are split by partition across workers; the web API, the CLI and
the escalation engine's silence checks need the whole picture on any worker. These small,
append-only topics are read from the beginning by a plain consumer outside any consumer group
(so every worker reads every partition), and each record replaces the previous one by id.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from streams.core.buckets import Bucket, Point, Summary, series, summarize
from streams.core.records import Incident, RecordError, parse
from streams.core.silences import Silence
from streams.reports.ledger import LedgerEntry

__all__ = ["AggregateView", "IncidentView", "IngestedView", "ReportLedgerView", "SilenceView",
           "TopicView"]

log = logging.getLogger(__name__)

#: How long a view waits for its consumer to be given the partitions of a topic the broker
#: names, before it reads what comes without a backlog to wait for.
_ASSIGN_WAIT_S = 10.0
#: Longest ``sync`` waits for a view to catch up with its topic.
_SYNC_WAIT_S = 30.0


class TopicView:
    """Latest value per key of one topic, kept current by a background task."""

    def __init__(self, *, bootstrap: str, topic: str,
                 decode: Callable[[bytes], tuple[str, Any] | None],
                 max_items: int | None = None) -> None:
        self._bootstrap = bootstrap
        self._topic = topic
        self._decode = decode
        #: Past this many keys the oldest read are forgotten (None: keep all).
        self._max_items = max_items
        self.items: dict[str, Any] = {}
        self.ready = asyncio.Event()  # set once the backlog present at start is read
        self._live: AIOKafkaConsumer | None = None  # the consumer reading now, for sync()
        self._changed = asyncio.Condition()

    def _consumer(self) -> AIOKafkaConsumer:
        return AIOKafkaConsumer(
            self._topic, bootstrap_servers=self._bootstrap, group_id=None,
            auto_offset_reset="earliest", enable_auto_commit=False,
        )

    async def run(self) -> None:
        """Consume forever; reconnect with backoff if the broker goes away."""
        delay = 1.0
        while True:
            consumer = self._consumer()
            try:
                await consumer.start()
                self._live = consumer
                delay = 1.0
                backlog = None if self.ready.is_set() else await self._backlog(consumer)
                while True:
                    batch = await consumer.getmany(timeout_ms=500, max_records=500)
                    records = [r for rs in batch.values() for r in rs]
                    for record in records:
                        decoded = self._decode(record.value) if record.value else None
                        if decoded is not None:
                            self.items[decoded[0]] = decoded[1]
                    self._trim()
                    if records:
                        async with self._changed:
                            self._changed.notify_all()
                    if backlog is not None and await _caught_up(consumer, backlog):
                        backlog = None
                        self.ready.set()
            except asyncio.CancelledError:
                raise
            except (KafkaError, OSError) as exc:
                log.warning("view of %s lost the broker (%s); retrying in %.0fs",
                            self._topic, exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
            finally:
                self._live = None
                await consumer.stop()

    async def _backlog(self, consumer: AIOKafkaConsumer) -> dict[TopicPartition, int]:
        """The end offset of each partition now: what must be read before ``ready``.

        Not "the first fetch that comes back empty": on a loaded machine the first fetches
        of a fresh consumer return nothing for a while, and a view that said ready then was
        nearly empty. The aggregate stage seeded its buckets from it after a kill -9 and
        stored counts that had lost what the dead worker had stored (58 of 1,645 mentions in
        the fault suite, once in six parallel runs). A topic that does not exist yet holds
        nothing: no backlog."""
        deadline = asyncio.get_running_loop().time() + _ASSIGN_WAIT_S
        while not consumer.assignment():
            if self._topic not in await consumer.topics():
                return {}
            if asyncio.get_running_loop().time() > deadline:
                log.warning("view of %s: no partitions assigned after %.0f s; ready without "
                            "waiting for its backlog", self._topic, _ASSIGN_WAIT_S)
                return {}
            await asyncio.sleep(0.1)
        parts = list(consumer.assignment())
        ends: dict[TopicPartition, int] = await consumer.end_offsets(parts)
        return ends

    async def sync(self, timeout_s: float = _SYNC_WAIT_S) -> bool:
        """Wait until the view holds every record on the topic now; False on timeout.

        For a reader about to trust the view's latest values after another worker wrote
        them moments ago: a partition's new owner seeds its counts from the snapshots the
        old owner stored while handing it over, which this view may not have read yet."""
        deadline = asyncio.get_running_loop().time() + timeout_s
        try:
            await asyncio.wait_for(self.ready.wait(), timeout_s)
        except TimeoutError:
            return False
        consumer = self._live
        if consumer is None:
            return False  # the broker is gone: whatever was read is all there is
        try:
            ends: dict[TopicPartition, int] = await consumer.end_offsets(
                list(consumer.assignment()))
            while not await _caught_up(consumer, ends):
                if asyncio.get_running_loop().time() > deadline:
                    return False
                await self.wait_changed(0.1)
        except (KafkaError, OSError, AssertionError):  # reconnecting: assignment gone
            return False
        return True

    def _trim(self) -> None:
        if self._max_items is None:
            return
        while len(self.items) > self._max_items:
            del self.items[next(iter(self.items))]  # dicts keep insertion order: the oldest

    async def wait_changed(self, seconds: float) -> bool:
        """Block until new records arrive (for server-sent events); False on timeout."""
        async with self._changed:
            try:
                await asyncio.wait_for(self._changed.wait(), seconds)
                return True
            except TimeoutError:
                return False


async def _caught_up(consumer: AIOKafkaConsumer, ends: dict[TopicPartition, int]) -> bool:
    """Whether every partition is read up to ``ends``."""
    for tp, end in ends.items():
        if await consumer.position(tp) < end:
            return False
    return True


def _decode_incident(raw: bytes) -> tuple[str, Any] | None:
    try:
        inc = parse(Incident, raw)
    except RecordError:
        return None
    return inc.id, inc


def _decode_silence(raw: bytes) -> tuple[str, Any] | None:
    try:
        silence = Silence.from_dict(json.loads(raw))
    except (ValueError, KeyError, TypeError):
        return None
    return silence.id, silence


class IncidentView(TopicView):
    def __init__(self, *, bootstrap: str, topic: str) -> None:
        super().__init__(bootstrap=bootstrap, topic=topic, decode=_decode_incident)

    def incidents(self) -> list[Incident]:
        return sorted(self.items.values(), key=lambda i: i.opened_at, reverse=True)

    def get(self, incident_id: str) -> Incident | None:
        found: Incident | None = self.items.get(incident_id)
        return found

    def resolved_ids(self) -> set[str]:
        return {i.id for i in self.items.values() if i.state == "resolved"}


class SilenceView(TopicView):
    def __init__(self, *, bootstrap: str, topic: str, static: list[Silence]) -> None:
        super().__init__(bootstrap=bootstrap, topic=topic, decode=_decode_silence)
        self._static = static

    def silences(self) -> list[Silence]:
        return [*self._static, *self.items.values()]

    def active(self, at: datetime) -> list[Silence]:
        return [s for s in self.silences() if s.active(at)]


def _decode_bucket(raw: bytes) -> tuple[str, Any] | None:
    try:
        bucket = parse(Bucket, raw)
    except RecordError:
        return None
    return bucket.id, bucket


class AggregateView(TopicView):
    """Every stored bucket snapshot, the latest per (watch, start): reports for any period
    the topic still retains."""

    def __init__(self, *, bootstrap: str, topic: str) -> None:
        super().__init__(bootstrap=bootstrap, topic=topic, decode=_decode_bucket)

    def get(self, bucket_id: str) -> Bucket | None:
        found: Bucket | None = self.items.get(bucket_id)
        return found

    def buckets(self, watch_id: str, since: datetime, until: datetime) -> list[Bucket]:
        """The watch's buckets starting in ``[since, until)``, oldest first."""
        prefix = f"{watch_id}|"
        found = [b for k, b in list(self.items.items())
                 if k.startswith(prefix) and since <= b.start < until]
        return sorted(found, key=lambda b: b.start)

    def summary(self, watch_id: str, since: datetime, until: datetime, *, top_terms: int = 20,
                top_authors: int = 10, top_mentions: int = 5) -> Summary:
        return summarize(self.buckets(watch_id, since, until), since=since, until=until,
                         top_terms=top_terms, top_authors=top_authors,
                         top_mentions=top_mentions)

    def series(self, watch_id: str, since: datetime, until: datetime, *,
               step_s: int) -> list[Point]:
        return series(self.buckets(watch_id, since, until), since=since, until=until,
                      step_s=step_s)


def _decode_ingested(raw: bytes) -> tuple[str, Any] | None:
    try:
        key = json.loads(raw)["key"]
    except (ValueError, KeyError, TypeError):
        return None
    return (key, True) if isinstance(key, str) else None


class IngestedView(TopicView):
    """The mention keys POST /ingest has published (escucha.ingest.keys), the newest
    ``max_items``: a repeat is a duplicate whichever worker took the first copy."""

    def __init__(self, *, bootstrap: str, topic: str, max_items: int) -> None:
        super().__init__(bootstrap=bootstrap, topic=topic, decode=_decode_ingested,
                         max_items=max_items)

    def __contains__(self, key: object) -> bool:
        return key in self.items

    def add(self, key: str) -> None:
        """A key this worker just published, before it comes back from the topic."""
        self.items[key] = True
        self._trim()


def _decode_ledger(raw: bytes) -> tuple[str, Any] | None:
    try:
        entry = parse(LedgerEntry, raw)
    except RecordError:
        return None
    return entry.key, entry


class ReportLedgerView(TopicView):
    """Every report delivery recorded on escucha.reports (streams/reports/ledger.py)."""

    def __init__(self, *, bootstrap: str, topic: str) -> None:
        super().__init__(bootstrap=bootstrap, topic=topic, decode=_decode_ledger)

    def entries(self, report_id: str | None = None) -> list[LedgerEntry]:
        found: list[LedgerEntry] = [e for e in list(self.items.values())
                                    if report_id is None or e.report_id == report_id]
        return sorted(found, key=lambda e: (e.slot, e.channel))

    def record(self, entry: LedgerEntry) -> None:
        """Count an entry this worker just sent before it comes back from the topic, so the
        next tick does not send its channel again meanwhile."""
        self.items[entry.key] = entry
