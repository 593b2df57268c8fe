"""``POST /ingest``: the webhook connector's route; the parsing is streams/connectors/webhook.py."""

from __future__ import annotations

import asyncio
import contextlib
import json
from datetime import UTC, datetime
from typing import Any

from faust.web import Request, Response

from streams.connectors.webhook import (
    CONTENT_TYPES,
    BodyError,
    WebhookIngestSettings,
    authorized,
    parse_ingest,
)
from streams.core import topics
from streams.core.records import dumps
from streams.core.security import bearer_token, media_type
from streams.runtime.dlq import make_dead_letter
from streams.runtime.pipeline import Pipeline
from streams.runtime.views import IngestedView
from streams.web.api import Page, client_of, too_many

__all__ = ["install_ingest"]

_VIEW_WAIT_S = 10.0  # how long a request waits for a starting worker's view of the keys


async def _ready(view: IngestedView, seconds: float) -> bool:
    if not view.ready.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(view.ready.wait(), seconds)
    return view.ready.is_set()


async def _read_limited(request: Any, limit: int) -> bytes | None:
    """The body, or None as soon as it passes ``limit`` bytes (never buffered whole)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(65536):
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def install_ingest(pipeline: Pipeline) -> None:
    """Add ``POST /ingest`` to the worker's web server."""
    app, metrics = pipeline.app, pipeline.metrics
    cfg: WebhookIngestSettings = pipeline.settings.connectors.webhook
    tokens = [t.get_secret_value().encode() for t in cfg.tokens]
    raw_topic, dlq = pipeline.topic(topics.RAW), pipeline.topic(topics.DLQ)
    keys_topic = pipeline.topic(topics.INGESTED)
    # Every worker reads the keys published by any of them, from the start of the topic:
    # a repeat is answered as a duplicate on another worker or after a restart too.
    published = IngestedView(bootstrap=pipeline.bootstrap, topic=topics.INGESTED.name,
                             max_items=cfg.dedup_size)
    name = "webhook"

    if cfg.dedup_size:
        pipeline.health["ingest_keys"] = False  # /readyz: not before the keys are read

        @app.task
        async def ingested_view_task() -> None:
            ready = asyncio.ensure_future(published.ready.wait())
            ready.add_done_callback(lambda _: pipeline.health.update(ingest_keys=True))
            await published.run()

    async def dead(reason: str, payload: str | bytes, origin: str) -> None:
        record = make_dead_letter(stage="ingest", reason=f"{name}: {reason}", payload=payload,
                                  origin=origin)
        metrics.dead_letters.labels("ingest").inc()
        metrics.connector_errors.labels(name, "malformed").inc()
        await dlq.send(key=b"ingest", value=dumps(record))

    @app.serve("/ingest", access="token")
    class Ingest(Page):
        async def post(self, request: Request) -> Response:
            client = client_of(pipeline, request)
            presented = bearer_token(request.headers.get("Authorization")) is not None
            wait = pipeline.gate.locked("ingest_token", client) if presented else None
            if wait is not None:
                raise too_many(wait)
            if not authorized(request.headers.get("Authorization", ""), tokens):
                if presented:
                    pipeline.gate.failed("ingest_token", client)
                why = ("no tokens configured: set connectors.webhook.tokens" if not tokens
                       else "missing or invalid bearer token")
                return self.json({"error": why}, status=401,
                                 headers={"WWW-Authenticate": 'Bearer realm="escucha"'})
            ctype = media_type(request.headers.get("Content-Type"))
            if ctype not in CONTENT_TYPES:
                return self.json({"error": "send Content-Type: application/json (one mention "
                                  "or an array) or application/x-ndjson (one per line), not "
                                  f"{ctype or 'none'!r}"[:200]}, status=415)
            length = request.headers.get("Content-Length")
            if length is not None and length.isdigit() and int(length) > cfg.max_bytes:
                return self.json({"error": f"body over {cfg.max_bytes} bytes"}, status=413)
            body = await _read_limited(request, cfg.max_bytes)
            if body is None:
                return self.json({"error": f"body over {cfg.max_bytes} bytes"}, status=413)
            try:
                result = parse_ingest(body, source=cfg.source, max_items=cfg.max_items,
                                      ndjson=ctype == "application/x-ndjson")
            except BodyError as exc:
                await dead(str(exc), body, f"POST /ingest from {client}")
                return self.json({"error": str(exc)}, status=exc.status)
            if cfg.dedup_size and not await _ready(published, _VIEW_WAIT_S):
                # Until the keys published so far are read, a repeat cannot be told apart.
                return self.json({"error": "starting up: retry in a few seconds"}, status=503,
                                 headers={"Retry-After": "5"})
            accepted = duplicates = 0
            for mention in result.mentions:
                if cfg.dedup_size and mention.key in published:
                    duplicates += 1
                    continue
                await raw_topic.send(key=mention.key.encode(), value=dumps(mention))
                if cfg.dedup_size:
                    published.add(mention.key)
                    await keys_topic.send(key=mention.key.encode(),
                                          value=json.dumps({"key": mention.key}).encode())
                accepted += 1
            for index, reason, raw in result.errors:
                await dead(f"item {index}: {reason}", raw, f"POST /ingest item {index}")
            if accepted:
                metrics.connector_events.labels(name).inc(accepted)
                metrics.connector_last_event.labels(name).set(
                    datetime.now(UTC).timestamp())
            status = 202 if result.mentions else 422
            return self.json({
                "accepted": accepted, "duplicates": duplicates,
                "errors": [{"index": i, "error": reason} for i, reason, _ in result.errors],
            }, status=status)
