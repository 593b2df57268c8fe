"""The console's Mentions routes: ``/console/mentions`` and its export, and the incident link.

Any signed-in role may search and export (viewers included): reading mentions changes nothing.
The searching is the API's (agents/store/search.py, the store's keyset cursor), run in a
thread; the export streams through the same function as ``GET /api/mentions?format=csv``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Final

from aiohttp import web
from faust.web import Request

from agents.store.claims import ClaimBook
from agents.store.groups import story_page
from agents.store.search import Search, SearchError, search_from_params
from agents.store.store import MentionStore, SearchTimeout, StoreError, StoreUnavailable
from streams.core.records import Incident
from streams.i18n import EN, N_, Lang
from streams.runtime.pipeline import Pipeline
from streams.web.api import Page
from streams.web.console import render
from streams.web.console.auth import Session
from streams.web.console.claims import claim_link
from streams.web.console.mentions import (
    FORM_FIELDS,
    incident_mentions_link,
    incident_window,
    mentions_section,
    stories_section,
)
from streams.web.mentions import EXPORT_FORMATS, stream_export

__all__ = ["COUNT_CAP", "incident_link", "install_mentions_page"]

log = logging.getLogger(__name__)
#: The incident link counts up to this many; past it the page says "10,000+".
COUNT_CAP: Final = 10_000


def _params(request: Request) -> dict[str, list[str]]:
    query: Any = request.query  # aiohttp's MultiDict: repeated names kept
    return {name: query.getall(name) for name in set(query.keys())}


def _failure(exc: Exception) -> tuple[int, str, str]:
    """Status, what went wrong (a source string, translated by the page) and the refusal's
    own words (which field, what it takes: shown as they are)."""
    if isinstance(exc, SearchTimeout):
        return 422, N_("The search took too long:"), str(exc)
    if isinstance(exc, SearchError):
        return 400, N_("The search was refused:"), str(exc)
    if isinstance(exc, StoreUnavailable):
        log.warning("console mentions: %s", exc)
        return 503, N_("The mention store is unavailable; try again shortly."), ""
    log.error("console mentions: %s", exc)
    return 500, N_("The mention store cannot answer; see the worker's log."), ""


async def incident_link(store: MentionStore | None, inc: Incident, lang: Lang = EN) -> str:
    """The incident page's "all N mentions" link; without a count when counting fails (a
    slow or unreachable store must not take the incident page down with it)."""
    if store is None:
        return ""
    now = datetime.now(UTC)
    since, until = incident_window(inc, now=now)
    count: int | None
    try:
        count = await asyncio.to_thread(
            store.count_matching, Search(watches=(inc.watch_id,), since=since, until=until),
            cap=COUNT_CAP)
    except (SearchError, StoreError) as exc:
        log.warning("console: cannot count the mentions of %s: %s", inc.id, exc)
        count = None
    return incident_mentions_link(inc, count=count, cap=COUNT_CAP, now=now, lang=lang)


def install_mentions_page(pipeline: Pipeline, *, store: MentionStore | None,
                          names: Mapping[str, str],
                          session_of: Callable[[Request], Session | None],
                          csrf_of: Callable[[Session], str],
                          login_redirect: Callable[[Request], web.Response],
                          html: Callable[[str, int], web.Response],
                          claims: ClaimBook | None = None) -> None:
    """Add the routes; the callables are the console's own (routes.py), so sign-in, bearer
    tokens and headers behave as on every other console page."""
    app, metrics = pipeline.app, pipeline.metrics
    watch_ids = list(names)

    def page(session: Session, params: Mapping[str, list[str]], *, status: int = 200,
             found: tuple[list[Any], str | None] | None = None, error: str = "",
             detail: str = "", held: Mapping[str, str] | None = None) -> web.Response:
        shown = {k: v[-1] for k, v in params.items() if v and k in (*FORM_FIELDS, "cursor")}
        body = mentions_section(found[0] if found else None, params=shown, watches=names,
                                next_cursor=found[1] if found else None, error=error,
                                detail=detail, claims=held,
                                lang=Lang(session.locale, session.timezone))
        return html(render.mentions_page(body, session=session, csrf=csrf_of(session)),
                    status)

    async def grouped(session: Session, params: Mapping[str, list[str]],
                      search: Search) -> web.Response:
        assert store is not None
        lang = Lang(session.locale, session.timezone)
        try:
            result = await asyncio.to_thread(story_page, store, search)
        except (SearchError, StoreError) as exc:
            status, message, detail = _failure(exc)
            return page(session, params, status=status, error=message, detail=detail)
        held = None
        if claims is not None:  # who answers each story shown: one person per story
            ids = [row.story for row in result.stories]
            try:
                found = await asyncio.to_thread(lambda: claims.claims(ids, kind="story"))
            except StoreError as exc:
                log.warning("console mentions: story claims unreadable: %s", exc)
                found = {}
            held = {s: claim_link(s, found.get(s), lang, kind="story") for s in ids}
        shown = {k: v[-1] for k, v in params.items() if v and k in (*FORM_FIELDS, "cursor")}
        body = stories_section(result.stories, params=shown, watches=names,
                               next_cursor=result.cursor, claims=held, lang=lang)
        return html(render.mentions_page(body, session=session, csrf=csrf_of(session)), 200)

    @app.serve("/console/mentions", access="session")
    class Mentions(Page):
        async def get(self, request: Request) -> web.Response:
            session = session_of(request)
            if session is None:
                return login_redirect(request)
            params = _params(request)
            if store is None:
                return page(session, params, status=404, error=N_(
                    "The mention store is off (store.enabled: false in escucha.yaml)."))
            try:
                search = search_from_params(params, watch_ids=watch_ids)
                started = time.perf_counter()
                result = await asyncio.to_thread(store.search, search)
                metrics.store_search_seconds.observe(time.perf_counter() - started)
            except (SearchError, StoreError) as exc:
                status, message, detail = _failure(exc)
                return page(session, params, status=status, error=message, detail=detail)
            if search.group == "story":
                return await grouped(session, params, search)
            held = None
            if claims is not None:  # who answers each mention shown (one query a page)
                keys = [m.record.mention.key for m in result.mentions]
                try:
                    found = await asyncio.to_thread(claims.claims, keys)
                except StoreError as exc:  # the mentions are still worth showing
                    log.warning("console mentions: claims unreadable: %s", exc)
                    found = {}
                lang = Lang(session.locale, session.timezone)
                held = {k: claim_link(k, found.get(k), lang) for k in keys}
            return page(session, params, found=(result.mentions, result.cursor), held=held)

    @app.serve("/console/mentions/export", access="session")
    class Export(Page):
        async def get(self, request: Request) -> web.StreamResponse:
            session = session_of(request)
            if session is None:
                return login_redirect(request)
            params = _params(request)
            fmt = (params.pop("format", None) or [""])[-1]
            params.pop("cursor", None)  # the whole result, whichever page was on screen
            if fmt not in EXPORT_FORMATS:
                return page(session, params, status=400, error=N_("Export as csv or jsonl."))
            if store is None:
                return page(session, params, status=404, error=N_("The mention store is off."))
            try:
                search = search_from_params(params, watch_ids=watch_ids)
                log.info("console: %s exports mentions as %s", session.user, fmt)
                return await stream_export(request, store, search, fmt)
            except (SearchError, StoreError) as exc:
                status, message, detail = _failure(exc)
                return page(session, params, status=status, error=message, detail=detail)
