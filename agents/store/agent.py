"""store: enriched mentions (keyed by watch) → the mention store (SQLite file or PostgreSQL).

Mentions are taken in batches (``store.batch_size``, ``store.max_wait_s``) and written in a
thread, one transaction a batch, idempotently by mention key: a mention re-read after a crash,
or one copy per watch it matched, is stored once. Acks are manual and follow the write
(agents/store/stage.py says what becomes of a batch when the database is unavailable). A
record that does not parse is detect's to dead-letter (both reading it would report it
twice); one the store refuses is dead-lettered here, stage ``store``.

Before the first batch the store's story ids are seeded from its own recent rows
(agents/store/seeding.py). The leader worker deletes expired mentions every
``store.expire_every_s``.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Sequence
from typing import Any

from agents.store.seeding import seed_stories
from agents.store.stage import StoreStage
from agents.store.store import MentionStore, StoreError
from streams.core import topics
from streams.core.records import EnrichedMention, RecordError, parse
from streams.runtime.dlq import dead_letter, origin_of
from streams.runtime.pipeline import Pipeline
from streams.runtime.stopping import finish_in_hand

__all__ = ["PROBE_EVERY_S", "install"]

log = logging.getLogger(__name__)
#: How often an unavailable database is tried again.
PROBE_EVERY_S = 5.0


def _span(events: Sequence[Any]) -> str:
    """``topic[p]@first-last`` per partition: what `escucha store rebuild` will restore."""
    by: dict[str, list[int]] = {}
    for e in events:
        by.setdefault(f"{e.message.topic}[{e.message.partition}]", []).append(e.message.offset)
    return ", ".join(f"{tp}@{min(o)}-{max(o)}" for tp, o in sorted(by.items()))


def install(pipeline: Pipeline, *, store: MentionStore) -> None:
    app, settings, metrics = pipeline.app, pipeline.settings, pipeline.metrics
    cfg = settings.store
    watches = [w.id for w in settings.watches]
    stage = StoreStage(store=store, hold_s=cfg.hold_s, seed=functools.partial(
        seed_stories, store, watches=watches, hours=cfg.story_seed_hours,
        per_watch=cfg.story_seed_max))
    metrics.store_enabled.set(1)
    metrics.store_up.set(1)  # until a write says otherwise: the alert looks at writes anyway
    enriched = pipeline.topic(topics.ENRICHED)
    dlq = pipeline.topic(topics.DLQ)

    @app.task
    async def store_open() -> None:
        # The schema before the first batch, and a misconfigured store said once at start.
        try:
            await asyncio.to_thread(store.open)
            log.info("mention store at %s", store.location)
        except StoreError as exc:
            log.error("mention store: %s", exc)

    @app.agent(enriched, name="escucha.store")
    async def store_agent(stream: Any) -> None:
        async for batch in stream.noack_take(cfg.batch_size, within=cfg.max_wait_s):
            items: list[tuple[Any, EnrichedMention]] = []
            for event in batch:
                try:
                    items.append((event, parse(EnrichedMention, event.value)))
                except RecordError:
                    await stream.ack(event)  # detect dead-letters it
            try:
                # A stop lets the batch in hand finish: see streams/runtime/stopping.py.
                await finish_in_hand(write(stream, items), what=f"{len(items)} to store")
            except asyncio.CancelledError:
                raise
            except Exception:  # the dead-letter topic unreachable: left unacked, read again
                log.exception("store: a batch of %d could not be handled; left "
                              "unacknowledged", len(items))

    async def write(stream: Any, items: list[tuple[Any, EnrichedMention]]) -> None:
        started = time.perf_counter()
        outcome = await stage.handle(items)
        metrics.store_write_seconds.observe(time.perf_counter() - started)
        metrics.store_written.inc(outcome.stored)
        metrics.store_up.set(0 if stage.unavailable is not None else 1)
        if outcome.written:
            metrics.store_last_write.set_to_current_time()
        for event in outcome.written:
            await stream.ack(event)
        if outcome.let_go:
            metrics.store_let_go.inc(len(outcome.let_go))
            metrics.store_errors.labels("write").inc()
            log.error("store: let go of %d mention(s) (%s): %s. They are still on the "
                      "enriched topic: run `escucha store rebuild` once the database is back",
                      len(outcome.let_go), _span(outcome.let_go), outcome.error)
            for event in outcome.let_go:
                await stream.ack(event)
        for event, reason in outcome.rejected:
            await dead_letter(dlq, metrics, stage="store", reason=reason, payload=event.value,
                              origin=origin_of(event))
            await stream.ack(event)

    @app.timer(interval=PROBE_EVERY_S, name="escucha.store-probe")
    async def store_probe() -> None:
        # While the database is unavailable, batches are let go at once (stage.py); this is
        # what notices it is back.
        if stage.unavailable is not None and await stage.probe():
            metrics.store_up.set(1)
            log.warning("store: the database at %s is back; writing again", store.location)

    @app.timer(interval=cfg.expire_every_s, on_leader=True, name="escucha.store-expire")
    async def store_expire() -> None:
        try:
            gone = await asyncio.to_thread(store.expire, default_days=cfg.retention_days,
                                           days=dict(cfg.watch_retention_days))
        except StoreError as exc:
            metrics.store_errors.labels("expire").inc()
            log.warning("store: expiring old mentions failed (%s); next try in %ds", exc,
                        cfg.expire_every_s)
            return
        metrics.store_expired.inc(gone)
        try:  # measured here, by the leader alone, as it scans the files or the catalogue
            metrics.store_size.set(await asyncio.to_thread(store.size_bytes))
        except StoreError as exc:
            log.warning("store: measuring its size failed (%s)", exc)
        if gone:
            log.info("store: %d expired mention(s) deleted", gone)
