"""classify: raw mentions → watch match → batched transformer sentiment → priority.

Mentions arrive keyed by their id; each one that matches a watch leaves as one
EnrichedMention per watch, keyed by watch id, so detection state for a watch lives in one
partition. The model call runs in a thread: it is CPU-bound and would otherwise freeze the
event loop (heartbeats, web server) for the length of a batch. With ``model.isolation:
process`` (the default) that thread only waits on the model's own process
(models/isolated.py), so the other stages keep the interpreter meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from agents.classify.classifier import Classifier, classifier_for, model_for
from models.sentiment import SentimentModel
from streams.core import topics
from streams.core.records import (
    Mention,
    RecordError,
    dumps,
    parse,
)
from streams.runtime.batches import BatchPolicy, handle_batch
from streams.runtime.dlq import dead_letter, origin_of
from streams.runtime.pipeline import Pipeline
from streams.runtime.stopping import finish_in_hand

__all__ = ["install"]

log = logging.getLogger(__name__)


def install(
    pipeline: Pipeline, *, model_factory: Callable[[], SentimentModel] | None = None
) -> None:
    settings, metrics = pipeline.settings, pipeline.metrics
    cfg = settings.model
    factory = model_factory or (lambda: model_for(cfg))
    loader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="model-load")
    futures: list[Future[SentimentModel]] = []

    def load() -> Future[SentimentModel]:
        if not futures:
            futures.append(loader.submit(factory))
        return futures[0]

    @pipeline.app.task
    async def preload_model() -> None:
        # Only a running worker loads the model (not `escucha faust agents`), and it does so
        # while Faust joins the consumer group: both take seconds, in parallel.
        await classifier()

    raw = pipeline.topic(topics.RAW)
    enriched_topic = pipeline.topic(topics.ENRICHED)
    dlq = pipeline.topic(topics.DLQ)
    state: dict[str, Classifier] = {}

    async def classifier() -> Classifier:
        if "c" not in state:
            model = await asyncio.wrap_future(load())
            if "c" in state:  # the preload and the first batch both waited for the load
                return state["c"]
            state["c"] = classifier_for(settings, model)
            metrics.model_loaded.set(1)
            pipeline.health["model"] = True
            log.info("model %s (%s) loaded", model.model_id, model.model_version)
        return state["c"]

    policy = BatchPolicy(attempts=settings.kafka.handler_attempts,
                         backoff_s=settings.kafka.handler_backoff_s)

    @pipeline.app.agent(raw, name="escucha.classify")
    async def classify(stream: Any) -> None:
        async def reject(item: tuple[Any, Mention], reason: str) -> None:
            await dead_letter_event(item[0], reason)

        async def ack(item: tuple[Any, Mention]) -> None:
            await stream.ack(item[0])

        # Acked by handle_batch once handled or dead-lettered, never by Faust on its own: an
        # exception or a stop must not ack what the model never saw (streams/runtime/batches.py).
        async for batch in stream.noack_take(
            settings.model.batch_size, within=settings.model.max_wait_s
        ):
            try:
                valid = await screen(batch, stream.ack)
                work = handle_batch(
                    valid, handle, ack=ack, reject=reject, stage="classify", policy=policy,
                    on_retry=metrics.handler_retries.labels("classify").inc)
                # A stop lets the batch in hand finish first: see streams/runtime/stopping.py.
                await finish_in_hand(work, what=f"a batch of {len(batch)} mentions")
            except asyncio.CancelledError:
                raise
            except Exception:  # the dead-letter topic unreachable: left unacked, read again
                log.exception("classify: a batch of %d could not be handled nor "
                              "dead-lettered; left unacknowledged", len(batch))

    async def dead_letter_event(event: Any, reason: str) -> None:
        await dead_letter(dlq, metrics, stage="classify", reason=reason, payload=event.value,
                          origin=origin_of(event))

    async def screen(batch: Sequence[Any], ack: Callable[[Any], Any]
                     ) -> list[tuple[Any, Mention]]:
        """The batch's valid mentions; the rest dead-lettered and acked, once, before the
        model is tried (a retried batch must not dead-letter them again)."""
        valid: list[tuple[Any, Mention]] = []
        for event in batch:
            try:
                valid.append((event, parse(Mention, event.value)))
            except RecordError as exc:
                await dead_letter_event(event, str(exc))
                await ack(event)
                continue
            metrics.mentions_in.labels(valid[-1][1].source).inc()
            metrics.source_last_event.labels(valid[-1][1].source).set(time.time())
        return valid

    async def handle(batch: Sequence[tuple[Any, Mention]]) -> None:
        if not batch:
            return
        mentions = [mention for _, mention in batch]
        ingested: dict[str, float | None] = {  # raw-topic write time, for latency
            mention.key: event.message.timestamp / 1000 if event.message.timestamp else None
            for event, mention in batch}
        clf = await classifier()
        started = time.perf_counter()
        if cfg.isolation == "inline":
            results = clf.enrich(mentions)
        else:  # a thread: the event loop serves heartbeats and the web meanwhile
            results = await asyncio.to_thread(clf.enrich, mentions)
        metrics.classify_batch_seconds.observe(time.perf_counter() - started)
        metrics.classify_batch_size.observe(len(mentions))
        metrics.model_texts.inc(len({e.mention.key for e in results}))
        now = time.time()
        for mention in mentions:
            written = ingested.get(mention.key)
            if written:
                metrics.latency.labels("ingest_to_enriched").observe(max(0.0, now - written))
        matched = {e.mention.key for e in results}
        metrics.mentions_unmatched.inc(len(mentions) - len(matched))
        for em in results:
            metrics.mentions_classified.labels(em.watch_id).inc()
            metrics.latency.labels("post_to_enriched").observe(
                max(0.0, now - em.mention.created_at.timestamp()))
            await enriched_topic.send(key=em.watch_id.encode(), value=dumps(em))
