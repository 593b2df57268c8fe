"""Hacker News stories and comments, polled from the Algolia HN Search API.

``GET {api_url}/api/v1/search_by_date?query=<q>&tags=(story,comment)
&numericFilters=created_at_i>=<since>&hitsPerPage=100&page=<n>`` returns the newest matches
first as ``{"hits": [...], "nbHits", "page", "nbPages", "hitsPerPage"}``; each hit has
``objectID``, ``created_at``/``created_at_i``, ``author``, ``title``, ``url``,
``story_text``/``comment_text`` (HTML), ``points``, ``num_comments``, ``story_id`` and
``_tags``. One search per query (``settings.queries``, else every watch term), every page.

Cursor (JSON)::

    {"queries": {"<query>": {"since": <max created_at_i seen>,
                             "ids": ["<objectID seen at that second>", ...]}}}

A poll asks for ``created_at_i >= since``: the boundary second is fetched again so items
indexed late within it are not lost, and the ids already handled at that second are skipped
(``ctx.emit`` dedups by (source, id) on top of that). Pages are
emitted as they arrive with the cursor unchanged; the cursor moves only after the last page,
so a crash mid-way re-fetches rather than skips. Algolia stops paginating after 1,000 hits
(``nbPages`` is capped, ``nbHits`` is not): when that happens the window is narrowed to
``created_at_i <= <oldest hit seen>`` and paged again until the backlog is drained. The first
poll of a query starts ``start_lookback_s`` in the past, not at the beginning of HN.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import aiohttp
from pydantic import Field, ValidationError, field_validator

from streams.connectors.base import (
    ConnectorContext,
    SourceError,
    SourceSettings,
    retry_after_seconds,
)
from streams.connectors.text import html_to_text
from streams.core.records import Author, Engagement, Mention

__all__ = ["HackerNewsConnector", "HackerNewsSettings"]

log = logging.getLogger(__name__)

_ITEM_URL = "https://news.ycombinator.com/item?id={}"
#: Rounds of window narrowing per query and poll; a guard against a misbehaving server.
_MAX_WINDOWS = 50


class HackerNewsSettings(SourceSettings):
    """A Hacker News connector: keyword searches over stories and comments."""

    queries: list[str] = Field(default_factory=list,
                               description="Search queries, one request each per poll; empty: "
                               "every watch term.")
    api_url: str = Field(default="https://hn.algolia.com",
                         description="Base URL of the HN Search API (without /api/v1).")
    poll_interval_s: float = Field(default=60.0, gt=0, le=86400,
                                   description="Seconds between polls of all queries.")
    tags: str = Field(default="(story,comment)", min_length=1, max_length=200,
                      description="Algolia tags filter: comma = AND, parentheses = OR, e.g. "
                      "'(story,comment)' or 'story,show_hn'.")
    hits_per_page: int = Field(default=100, ge=1, le=1000,
                               description="Hits per request (Algolia allows up to 1000).")
    start_lookback_s: float = Field(default=3600.0, ge=0, le=30 * 86400,
                                    description="How far back the first poll of a new query "
                                    "reaches.")
    request_timeout_s: float = Field(default=30.0, gt=0, le=600,
                                     description="Total time allowed for one request.")
    user_agent: str = Field(default="escucha-hackernews/1.0 (social listening)",
                            min_length=1, max_length=300,
                            description="User-Agent sent with every request.")

    @field_validator("queries")
    @classmethod
    def _non_blank(cls, queries: list[str]) -> list[str]:
        cleaned = [q.strip() for q in queries]
        if any(not q for q in cleaned):
            raise ValueError("queries must not be blank; leave the list empty to use watch "
                             "terms")
        return list(dict.fromkeys(cleaned))

    @field_validator("api_url")
    @classmethod
    def _base(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("use an http(s) URL, e.g. 'https://hn.algolia.com'")
        return value.rstrip("/")


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _created(hit: Mapping[str, Any]) -> int | None:
    """Unix seconds of a hit: ``created_at_i``, else the ISO ``created_at``."""
    value = hit.get("created_at_i")
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    text = hit.get("created_at")
    if isinstance(text, str):
        try:
            return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp())
        except ValueError:
            return None
    return None


def _hit_key(hit: Any) -> str:
    """objectID, or a digest of the hit when it has none (so a bad hit is refused once)."""
    if isinstance(hit, dict):
        object_id = hit.get("objectID")
        if isinstance(object_id, str | int) and not isinstance(object_id, bool) and \
                str(object_id).strip():
            return str(object_id).strip()
    blob = json.dumps(hit, sort_keys=True, default=str).encode()
    return "sha1:" + hashlib.sha1(blob).hexdigest()


class _Cursor:
    """Newest ``created_at_i`` seen for a query, and the hits seen at that very second."""

    def __init__(self, since: int, ids: list[str]) -> None:
        self.since = since
        self.ids = ids

    @classmethod
    def load(cls, value: Any) -> _Cursor | None:
        if isinstance(value, dict) and isinstance(value.get("since"), int):
            ids = value.get("ids")
            return cls(value["since"], [str(i) for i in ids] if isinstance(ids, list) else [])
        return None

    def dump(self) -> dict[str, Any]:
        return {"since": self.since, "ids": self.ids}

    def see(self, created: int, key: str) -> None:
        if created > self.since:
            self.since, self.ids = created, [key]
        elif created == self.since and key not in self.ids:
            self.ids.append(key)


class HackerNewsConnector:
    """Polls the HN Search API; see the module docstring."""

    source = "hackernews"

    def __init__(self, settings: HackerNewsSettings) -> None:
        self.settings = settings
        self.name = settings.name

    def _queries(self, ctx: ConnectorContext) -> list[str]:
        if self.settings.queries:
            return list(self.settings.queries)
        return list(dict.fromkeys(t.strip() for t in ctx.terms if t.strip()))

    async def run(self, ctx: ConnectorContext) -> None:
        stored = ctx.cursor.get("queries") if isinstance(ctx.cursor, dict) else None
        cursors: dict[str, _Cursor] = {}
        if isinstance(stored, dict):
            for query, value in stored.items():
                cursor = _Cursor.load(value)
                if isinstance(query, str) and cursor is not None:
                    cursors[query] = cursor
        timeout = aiohttp.ClientTimeout(total=self.settings.request_timeout_s)
        headers = {"User-Agent": self.settings.user_agent, "Accept": "application/json"}
        warned = False
        async with aiohttp.ClientSession(timeout=timeout, headers=headers) as session:
            while True:
                queries = self._queries(ctx)
                if not queries and not warned:
                    log.warning("hackernews %s: no queries and no watch terms; nothing to "
                                "search until a watch has terms", self.name)
                    warned = True
                # Forget queries no longer configured, so the cursor does not grow forever.
                cursors = {q: v for q, v in cursors.items() if q in queries}
                for query in queries:
                    # Fixed once, so a retried first poll asks for the same window.
                    cursors.setdefault(query, _Cursor(
                        int(time.time() - self.settings.start_lookback_s), []))
                    while True:
                        try:
                            done = await self._poll(ctx, session, query, cursors)
                        except SourceError as exc:
                            await ctx.failed(exc)
                            continue
                        break
                    ctx.ok()
                    if done is not None:
                        cursors[query] = done
                    ctx.heartbeat()
                await asyncio.sleep(self.settings.poll_interval_s)

    async def _poll(self, ctx: ConnectorContext, session: aiohttp.ClientSession, query: str,
                    cursors: dict[str, _Cursor]) -> _Cursor | None:
        """Fetch everything for ``query`` since its cursor; the new cursor, if it moved."""
        start = cursors[query]
        since, sent_at_since = start.since, set(start.ids)
        newest = _Cursor(start.since, list(start.ids))
        upper: int | None = None
        for _ in range(_MAX_WINDOWS):
            page, received, oldest, nb_hits = 0, 0, None, 0
            while True:
                data = await self._get(ctx, session, query, since, upper, page)
                if data is None:  # answered, but unusable: dead-lettered, try next poll
                    return None
                hits = data["hits"]
                received += len(hits)
                nb_hits = data["nbHits"]
                mentions: list[Mention] = []
                for hit in hits:
                    mention, created, reason = self._mention(hit)
                    key = _hit_key(hit)
                    if created is not None:
                        newest.see(created, key)
                        oldest = created if oldest is None else min(oldest, created)
                        if created == since and key in sent_at_since:
                            continue  # the boundary second, handled by the previous poll
                    if mention is None:
                        await ctx.reject(f"query {query!r}: hit {reason}",
                                         json.dumps(hit, ensure_ascii=False, default=str),
                                         origin=f"{self.settings.api_url} query={query!r}")
                        continue
                    mentions.append(mention)
                # The cursor stays put until the last page: see the module docstring.
                await ctx.emit(mentions)
                page += 1
                if not hits or page >= data["nbPages"]:
                    break
            truncated = nb_hits > received
            if not truncated or oldest is None or oldest <= since or (
                    upper is not None and oldest >= upper):
                break
            # Algolia stopped paging before the end: page the older part on its own.
            # Inclusive bound: hits of that second beyond the cap come back, dedup drops
            # the repeats.
            upper = oldest
        else:
            log.warning("hackernews %s: query %r still had a backlog after %d windows",
                        self.name, query, _MAX_WINDOWS)
        queries = {q: c.dump() for q, c in cursors.items()}
        queries[query] = newest.dump()
        await ctx.emit([], cursor={"queries": queries})
        return newest

    async def _get(self, ctx: ConnectorContext, session: aiohttp.ClientSession, query: str,
                   since: int, upper: int | None, page: int) -> dict[str, Any] | None:
        numeric = f"created_at_i>={since}"
        if upper is not None:
            numeric += f",created_at_i<={upper}"
        params = {"query": query, "tags": self.settings.tags, "numericFilters": numeric,
                  "hitsPerPage": str(self.settings.hits_per_page), "page": str(page)}
        url = f"{self.settings.api_url}/api/v1/search_by_date"
        try:
            async with session.get(url, params=params) as resp:
                if resp.status == 429:
                    raise SourceError(f"HTTP 429 from {url}", kind="rate_limited",
                                      retry_after=retry_after_seconds(resp.headers))
                if resp.status >= 400:
                    body = (await resp.text(errors="replace"))[:300]
                    raise SourceError(f"HTTP {resp.status} from {url}: {body}", kind="server",
                                      retry_after=retry_after_seconds(resp.headers))
                raw = await resp.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise SourceError(f"searching {url}: {type(exc).__name__}: {exc}",
                              kind="transport") from exc
        try:
            data = json.loads(raw)
        except ValueError as exc:
            await ctx.reject(f"query {query!r}: response is not JSON: {exc}", raw, origin=url)
            return None
        if not isinstance(data, dict) or not isinstance(data.get("hits"), list):
            await ctx.reject(f"query {query!r}: response has no 'hits' list", raw, origin=url)
            return None
        data["nbPages"] = _count(data.get("nbPages"))
        data["nbHits"] = _count(data.get("nbHits"))
        return data

    def _mention(self, hit: Any) -> tuple[Mention | None, int | None, str]:
        """The hit as a Mention (or None and why), and its creation time if it has one."""
        if not isinstance(hit, dict):
            return None, None, "is not a JSON object"
        created = _created(hit)
        object_id = hit.get("objectID")
        if not isinstance(object_id, str | int) or isinstance(object_id, bool) or \
                not str(object_id).strip():
            return None, created, "has no objectID"
        object_id = str(object_id).strip()
        if created is None:
            return None, created, f"{object_id} has no created_at_i/created_at"
        author = hit.get("author")
        if not isinstance(author, str) or not author.strip():
            return None, created, f"{object_id} has no author"
        raw_tags = hit.get("_tags")
        tags: list[Any] = raw_tags if isinstance(raw_tags, list) else []
        comment = "comment" in tags or (hit.get("comment_text") and not hit.get("title"))
        if comment:
            text = html_to_text(hit.get("comment_text"))
        else:
            title = html_to_text(hit.get("title"))
            body = html_to_text(hit.get("story_text"))
            text = f"{title}\n{body}" if title and body else title or body
        if not text:
            return None, created, f"{object_id} has no title or text"
        try:
            mention = Mention(
                source=self.source,
                id=object_id,
                url=_ITEM_URL.format(object_id),
                author=Author(handle=author.strip()),
                text=text,
                created_at=datetime.fromtimestamp(created, UTC),
                engagement=Engagement(likes=_count(hit.get("points")),
                                      replies=_count(hit.get("num_comments"))),
            )
        except ValidationError as exc:
            return None, created, f"{object_id} is not a valid mention: " \
                f"{exc.errors(include_url=False)}"
        return mention, created, ""
