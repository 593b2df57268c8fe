"""``GET /api/mentions``: search the mention store, a page at a time or as a whole export.

Parameters (agents/store/search.py): ``q`` (the watch query syntax, e.g. ``"battery" AND
lang:es -author:acmesupport``), ``watch``, ``since``/``until`` (ISO 8601), ``sentiment``,
``lang``, ``source`` (each repeatable or comma-separated), ``min_priority``, ``verified``,
``sort`` (time, priority, reach), ``order`` (desc, asc), ``limit`` (≤ 500), ``cursor`` (the
``next_cursor`` of the previous page), ``format`` (json; csv or jsonl export the whole result),
``story`` (a story id; ``story:<id>`` in ``q`` alike), ``group`` (``story``: one row per story,
``{"stories": [...], "next_cursor"}``, agents/store/groups.py).

Bearer-token protected like every /api route. The database work runs in a thread.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any, Final

from aiohttp import web as aioweb
from faust.web import Request, Response

from agents.store.export import CHUNK, csv_header, csv_rows, jsonl_lines, pages
from agents.store.groups import story_page
from agents.store.rows import StoredMention
from agents.store.search import Search, SearchError, search_from_params
from agents.store.store import MentionStore, SearchTimeout, StoreError, StoreUnavailable
from streams.runtime.pipeline import Pipeline
from streams.web.api import Page, Refused, check_bearer

__all__ = ["EXPORT_FORMATS", "install_mentions", "stream_export"]

log = logging.getLogger(__name__)
EXPORT_FORMATS: Final = {
    "csv": ("text/csv; charset=utf-8", "mentions.csv"),
    "jsonl": ("application/x-ndjson; charset=utf-8", "mentions.jsonl"),
}
_CHALLENGE: Final = {"WWW-Authenticate": 'Bearer realm="escucha"'}


def _refusal(status: int, message: str, headers: dict[str, str] | None = None) -> Refused:
    return Refused(aioweb.json_response({"error": message}, status=status, headers=headers))


def _failure(exc: Exception) -> Refused:
    if isinstance(exc, SearchTimeout):
        return _refusal(422, str(exc))
    if isinstance(exc, SearchError):
        return _refusal(400, str(exc))
    if isinstance(exc, StoreUnavailable):
        log.warning("GET /api/mentions: %s", exc)
        return _refusal(503, "the mention store is unavailable; try again shortly",
                        {"Retry-After": "10"})
    log.error("GET /api/mentions: %s", exc)
    return _refusal(500, "the mention store cannot answer; see the worker's log")


def install_mentions(pipeline: Pipeline, *, store: MentionStore | None) -> None:
    """Add ``GET /api/mentions``; with ``store`` None (``store.enabled: false``) it says so."""
    app, metrics = pipeline.app, pipeline.metrics
    tokens = [t.get_secret_value().encode() for t in pipeline.settings.api.tokens]

    def authorize(request: Request) -> None:
        if check_bearer(pipeline, request, kind="api_token", secrets=tokens) is None:
            raise _refusal(401, "missing or invalid bearer token" if tokens else
                           "no API tokens configured: set api.tokens", _CHALLENGE)

    async def run(fn: Callable[..., Any], *args: Any) -> Any:
        try:
            return await asyncio.to_thread(fn, *args)
        except (SearchError, StoreError) as exc:
            raise _failure(exc) from None

    @app.serve("/api/mentions", access="token")
    class Mentions(Page):
        async def get(self, request: Request) -> Response | aioweb.StreamResponse:
            authorize(request)
            if store is None:
                return self.json({"error": "the mention store is off (store.enabled)"},
                                 status=404)
            query: Any = request.query  # aiohttp's MultiDict: repeated names kept
            params = {name: query.getall(name) for name in set(query.keys())}
            fmt = (params.pop("format", None) or ["json"])[-1]
            if fmt not in ("json", *EXPORT_FORMATS):
                return self.json({"error": "format: use json, csv or jsonl"}, status=400)
            try:
                search = search_from_params(params)
            except SearchError as exc:
                return self.json({"error": str(exc)}, status=400)
            if fmt != "json" and search.group == "story":
                return self.json({"error": "format: exports are of mentions; leave group out, "
                                  "or filter by story= to export a story's mentions"},
                                 status=400)
            if search.group == "story":
                grouped = await run(story_page, store, search)
                return self.json({"stories": [row.summary() for row in grouped.stories],
                                  "next_cursor": grouped.cursor})
            if fmt != "json":
                try:
                    return await stream_export(request, store, search, fmt)
                except (SearchError, StoreError) as exc:
                    raise _failure(exc) from None
            started = time.perf_counter()
            page = await run(store.search, search)
            metrics.store_search_seconds.observe(time.perf_counter() - started)
            return self.json({"mentions": [m.summary() for m in page.mentions],
                              "next_cursor": page.cursor})


async def stream_export(request: Request, store: MentionStore, search: Search,
                        fmt: str) -> aioweb.StreamResponse:
    """The whole result of ``search`` as ``fmt`` (csv or jsonl), streamed page by page.

    :class:`SearchError` / :class:`StoreError` from the first page propagate (nothing is sent
    yet, so the caller answers with a proper status); a later one cuts the connection."""
    content_type, filename = EXPORT_FORMATS[fmt]
    walk: Iterator[list[StoredMention]] = pages(store, replace(search, limit=CHUNK))
    # The first page before the headers: a bad search or a database down is still a
    # proper status, not a truncated download.
    first = await asyncio.to_thread(next, walk, None)
    resp = aioweb.StreamResponse(headers={
        "Content-Type": content_type, "Cache-Control": "no-store",
        "Content-Disposition": f'attachment; filename="{filename}"'})
    await resp.prepare(request)  # type: ignore[arg-type]
    if fmt == "csv":
        await resp.write(csv_header().encode())
    chunk = first
    try:
        while chunk is not None:
            text = csv_rows(chunk) if fmt == "csv" else jsonl_lines(chunk, search)
            await resp.write(text.encode())
            chunk = await asyncio.to_thread(next, walk, None)
    except (SearchError, StoreError) as exc:
        # Too late for a status: cut the connection so the client sees an incomplete
        # download, not a short file that looks whole.
        log.warning("mentions export cut short: %s", exc)
        transport = getattr(request, "transport", None)
        if transport is not None:
            transport.abort()
        return resp
    await resp.write_eof()
    return resp
