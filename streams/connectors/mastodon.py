"""Mastodon: hashtag and public timelines over the streaming API, with polling as the fallback.

Protocol. Streaming is server-sent events, one connection per timeline:
``GET /api/v1/streaming/hashtag?tag=X`` and ``GET /api/v1/streaming/public`` with
``Authorization: Bearer <token>`` (Mastodon >= 4.2 refuses these without a user token). Events
are ``event: update`` + ``data: <Status JSON>`` ended by a blank line; lines starting with ``:``
(``:thump``) are heartbeats. Polling pages ``GET /api/v1/timelines/tag/:hashtag`` and
``GET /api/v1/timelines/public`` *forward* with ``min_id`` (following the
``Link: <...?min_id=...>; rel="prev"`` header), and asks ``GET /api/v2/search?type=statuses``
for keywords (the watch terms, ``ctx.terms``, when the settings name none). A 429 carries
``X-RateLimit-Reset`` (an ISO time) and maybe ``Retry-After``; both are honoured.

Cursor: ``{"tag:<name>": id, "public": id, "search:<keyword>": id}``, the highest status id
emitted per timeline. Ids are numeric strings, compared as numbers. ``ctx.emit`` stores it only
once the broker has the mentions.

No gap on resume or reconnect: the streams are opened first (their events wait in a queue),
then every timeline is polled from its cursor with ``min_id`` until a short page, then the
queued and live stream events are emitted; the (source, id) dedup drops the overlap. A backlog
longer than ``max_pages`` is paged on between stream events, and until it is done those events
do not move that timeline's cursor (which would skip the rest of the backlog). ``min_id``
and not ``since_id``: ``since_id`` returns the *newest* page above the id and silently skips
whatever did not fit in it. A timeline without a cursor starts from its newest page. After
``stream_failures_before_poll`` stream failures in a row (at once on 401/403) the connector
polls every ``poll_interval_s`` for ``stream_retry_s`` and then tries streaming again.

Known limit: Mastodon ids a remote status by its publish time, so a post that federates in
late can sort below the cursor: the stream delivers it live, a catch-up after downtime cannot.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote

import aiohttp
from multidict import MultiDictProxy
from pydantic import Field, SecretStr, field_validator
from yarl import URL

from streams.connectors.base import (
    ConnectorContext,
    SourceError,
    SourceSettings,
    retry_after_seconds,
)
from streams.connectors.text import html_to_text
from streams.core.records import Mention, RecordError, parse

__all__ = ["MastodonConnector", "MastodonSettings"]

log = logging.getLogger(__name__)

_MAX_LINE_BYTES = 1024 * 1024  # a status is a few kB; a megabyte without a newline is broken
_STABLE_S = 30.0  # a stream up this long without news counts as healthy again
_ID = re.compile(r"[0-9A-Za-z]{1,64}")


class MastodonSettings(SourceSettings):
    """One Mastodon server: the hashtags, timelines and keywords to follow there, and how."""

    base_url: str = Field(description="The server's URL, e.g. 'https://mastodon.social'.")
    streaming_url: str | None = Field(
        default=None, description="Base URL of the streaming API when the server serves it "
        "from another host (its /api/v2/instance 'configuration.urls.streaming'); default: "
        "base_url.")
    access_token: SecretStr | None = Field(
        default=None, description="A user access token with read:statuses. Streaming needs "
        "one on Mastodon >= 4.2 (without it the connector polls); timelines usually do not.")
    hashtags: list[str] = Field(default_factory=list,
                                description="Hashtags to follow, with or without '#'.")
    keywords: list[str] = Field(
        default_factory=list, description="Searched with /api/v2/search every poll_interval_s; "
        "empty: the watch terms. Full-text search needs a token and opt-in posts.")
    search: bool = Field(default=True, description="false: never call the search API.")
    public: bool = Field(default=False, description="Also follow the whole public timeline.")
    mode: Literal["stream", "poll"] = Field(
        default="stream", description="'stream': live SSE, polling only to fill gaps and as a "
        "fallback; 'poll': timelines every poll_interval_s.")
    poll_interval_s: float = Field(default=60.0, gt=0, le=86400,
                                   description="Seconds between polls (and keyword searches).")
    stream_failures_before_poll: int = Field(
        default=3, ge=1, le=1000,
        description="Stream failures in a row after which the connector polls instead.")
    stream_retry_s: float = Field(default=600.0, gt=0, le=86400,
                                  description="How long to poll before trying streams again.")
    stream_idle_timeout_s: float = Field(
        default=60.0, gt=0, le=3600, description="Reconnect a stream silent this long (Mastodon "
        "sends a heartbeat about every 15 s).")
    request_timeout_s: float = Field(default=30.0, gt=0, le=600,
                                     description="Timeout of one REST request.")
    page_limit: int = Field(default=40, ge=1, le=40,
                            description="Statuses per page (Mastodon allows at most 40).")
    max_pages: int = Field(default=25, ge=1, le=10_000, description="Pages per timeline in one "
                           "catch-up; the rest follows in the next.")
    languages: list[str] = Field(
        default_factory=list, description="Keep only statuses in these languages (ISO 639-1); "
        "statuses without a language are kept. Empty: every language.")

    @field_validator("base_url", "streaming_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip().rstrip("/")
        if not value.startswith(("https://", "http://")):
            raise ValueError("use an http(s) URL, e.g. 'https://mastodon.social'")
        return value

    @field_validator("hashtags")
    @classmethod
    def _tags(cls, value: list[str]) -> list[str]:
        tags: dict[str, str] = {}
        for raw in value:
            tag = raw.strip().lstrip("#")
            if not tag or any(c.isspace() or c in "#/?&" for c in tag):
                raise ValueError(f"bad hashtag {raw!r}: one word, e.g. 'acme' or '#acme'")
            tags.setdefault(tag.lower(), tag)
        return list(tags.values())

    @field_validator("keywords", "languages")
    @classmethod
    def _words(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(w.strip() for w in value if w.strip()))


class MastodonConnector:
    """Follows one Mastodon server; see the module docstring."""

    source = "mastodon"

    def __init__(self, settings: MastodonSettings) -> None:
        self.settings = settings
        self.name = settings.name

    async def run(self, ctx: ConnectorContext) -> None:
        """Stream (or poll) until cancelled."""
        s = self.settings
        headers = {"User-Agent": "escucha (mastodon connector)", "Accept": "application/json"}
        if s.access_token is not None:
            headers["Authorization"] = f"Bearer {s.access_token.get_secret_value()}"
        timeout = aiohttp.ClientTimeout(total=s.request_timeout_s)
        async with aiohttp.ClientSession(headers=headers, timeout=timeout) as http:
            await _Run(s, ctx, http).run()


@dataclass(frozen=True)
class _Timeline:
    key: str  # the cursor key
    poll_path: str
    stream_path: str
    stream_query: tuple[tuple[str, str], ...] = ()


@dataclass
class _Item:
    kind: Literal["connected", "update", "alive", "error"]
    key: str
    data: str = ""
    error: Exception | None = None


class _Forbidden(Exception):
    """The server will not stream to us (401/403); retrying will not change that."""


class _Malformed(Exception):
    """A status that cannot become a Mention; the message is the dead-letter reason."""


class _Run:
    """State of one ``run()`` call: the HTTP session, the cursor, the stream failures."""

    def __init__(self, s: MastodonSettings, ctx: ConnectorContext,
                 http: aiohttp.ClientSession) -> None:
        self.s, self.ctx, self.http = s, ctx, http
        saved = ctx.cursor
        self.cursor: dict[str, str] = (
            {str(k): str(v) for k, v in saved.items()} if isinstance(saved, dict) else {})
        self.timelines = [
            _Timeline(f"tag:{t.lower()}", f"/api/v1/timelines/tag/{quote(t, safe='')}",
                      "/api/v1/streaming/hashtag", (("tag", t),)) for t in s.hashtags]
        if s.public:
            self.timelines.append(_Timeline("public", "/api/v1/timelines/public",
                                            "/api/v1/streaming/public"))
        words = (s.keywords or ctx.terms) if s.search else []
        self.keywords = list(dict.fromkeys(w.strip() for w in words if w.strip()))
        self.languages = {lang.lower() for lang in s.languages}
        self.stream_failures = 0
        #: Timelines whose catch-up stopped at max_pages: their stream events must not move
        #: the cursor past what polling has not fetched yet.
        self.behind: set[str] = set()

    async def run(self) -> None:
        if not self.timelines and not self.keywords:
            log.error("connector %s: no hashtags, public timeline or keywords to follow; "
                      "set some in its settings", self.s.name)
            await self._idle(float("inf"))
        streaming = self.s.mode == "stream" and bool(self.timelines)
        while True:
            if not streaming:
                await self._poll(until=None)
            outcome = await self._stream()
            await self._poll(until=None if outcome == "forbidden"
                             else time.monotonic() + self.s.stream_retry_s)

    # -- polling -------------------------------------------------------------------------
    async def _poll(self, *, until: float | None) -> None:
        while until is None or time.monotonic() < until:
            try:
                await self._catch_up()
                for keyword in self.keywords:
                    await self._search(keyword)
            except SourceError as exc:
                await self.ctx.failed(exc)
                continue
            self.ctx.ok()
            await self._idle(self.s.poll_interval_s)

    async def _catch_up(self, only: set[str] | None = None) -> None:
        for timeline in self.timelines:
            if only is None or timeline.key in only:
                if await self._poll_timeline(timeline):
                    self.behind.discard(timeline.key)
                else:
                    self.behind.add(timeline.key)

    async def _poll_timeline(self, tl: _Timeline) -> bool:
        """Page forward from the cursor; True once a page came back short (caught up)."""
        limit = self.s.page_limit
        start = URL(self.s.base_url + tl.poll_path)
        first_look = tl.key not in self.cursor
        url: URL = start
        params: dict[str, str] | None = {"limit": str(limit)}
        if not first_look:
            params = {"limit": str(limit), "min_id": self.cursor[tl.key]}
        for _ in range(self.s.max_pages):
            body, links = await self._get(url, params)
            if body is None:
                return True  # 404: a hashtag nobody has used yet
            if not isinstance(body, list):
                await self.ctx.reject(f"{tl.poll_path}: the page is not a JSON array",
                                      json.dumps(body)[:4096])
                raise SourceError(f"{tl.poll_path}: unexpected page", kind="server")
            before = self.cursor.get(tl.key)
            await self._ingest(tl.key, body)
            if first_look or len(body) < limit:
                return True
            prev = _link(links, "prev")
            if prev is not None and prev.origin() == start.origin():
                url, params = prev, None  # the server's own "newer than this page" link
            elif self.cursor.get(tl.key) != before:
                url, params = start, {"limit": str(limit), "min_id": self.cursor[tl.key]}
            else:
                return True  # a full page of id-less statuses and no link: nothing to go on
        return False

    async def _search(self, keyword: str) -> None:
        key = f"search:{keyword.lower()}"
        params = {"q": keyword, "type": "statuses", "limit": str(self.s.page_limit)}
        if key in self.cursor:
            params["min_id"] = self.cursor[key]
        body, _ = await self._get(URL(self.s.base_url + "/api/v2/search"), params)
        if body is None:
            raise SourceError("/api/v2/search: HTTP 404; a Mastodon >= 2.4 server has it, "
                              "else set search: false")
        statuses = body.get("statuses") if isinstance(body, dict) else None
        if not isinstance(statuses, list):
            await self.ctx.reject("/api/v2/search: no 'statuses' array in the answer",
                                  json.dumps(body)[:4096])
            raise SourceError("/api/v2/search: unexpected answer", kind="server")
        await self._ingest(key, statuses)

    async def _get(self, url: URL, params: dict[str, str] | None) -> tuple[Any, Any]:
        try:
            async with self.http.get(url, params=params) as resp:
                _check(resp, url.path)
                raw = await resp.read()
                links = resp.links
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise SourceError(f"GET {url.path}: {_describe(exc)}", kind="transport") from exc
        if resp.status == 404:
            return None, links
        try:
            return json.loads(raw), links
        except ValueError as exc:
            await self.ctx.reject(f"GET {url.path}: the answer is not JSON ({exc})", raw)
            raise SourceError(f"GET {url.path}: the answer is not JSON", kind="server") from exc

    # -- streaming -----------------------------------------------------------------------
    async def _stream(self) -> Literal["fallback", "forbidden"]:
        self.stream_failures = 0
        while True:
            queue: asyncio.Queue[_Item] = asyncio.Queue()
            tasks = [asyncio.create_task(self._listen(tl, queue)) for tl in self.timelines]
            try:
                await self._serve(queue, len(tasks))
            except _Forbidden as exc:
                log.warning("connector %s: %s; polling instead", self.s.name, exc)
                return "forbidden"
            except SourceError as exc:
                self.stream_failures += 1
                await self.ctx.failed(exc)
                if self.stream_failures >= self.s.stream_failures_before_poll:
                    log.warning("connector %s: %d stream failures in a row; polling for %.0fs",
                                self.s.name, self.stream_failures, self.s.stream_retry_s)
                    return "fallback"
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)

    async def _serve(self, queue: asyncio.Queue[_Item], streams: int) -> None:
        pending: list[_Item] = []
        connected = 0
        while connected < streams:
            item = await queue.get()
            if item.kind == "error" and item.error is not None:
                raise item.error
            if item.kind == "connected":
                connected += 1
            else:
                pending.append(item)
        # Every stream is open, so whatever is posted from now on is in the queue: polling
        # from the cursor now closes the gap behind us.
        while True:
            try:
                await self._catch_up()
                break
            except SourceError as exc:
                await self.ctx.failed(exc)
        if self.stream_failures == 0:
            self.ctx.ok()
        await self._handle(pending)
        next_search = time.monotonic()
        while True:
            try:
                if self.behind:  # a long outage: keep paging while the streams queue up
                    await self._catch_up(only=set(self.behind))
                if self.keywords and time.monotonic() >= next_search:
                    next_search = time.monotonic() + self.s.poll_interval_s
                    for keyword in self.keywords:
                        await self._search(keyword)
            except SourceError as exc:
                await self.ctx.failed(exc)
            items: list[_Item] = []
            if not self.behind:
                wait = min(5.0, max(0.01, next_search - time.monotonic())) \
                    if self.keywords else 5.0
                try:
                    items.append(await asyncio.wait_for(queue.get(), wait))
                except TimeoutError:
                    self.ctx.heartbeat()
                    continue
            while not queue.empty() and len(items) < 500:
                items.append(queue.get_nowait())
            await self._handle(items)

    async def _handle(self, items: list[_Item]) -> None:
        batch: dict[str, list[Any]] = {}
        for item in items:
            if item.kind == "update":
                self._stream_healthy()
                try:
                    batch.setdefault(item.key, []).append(json.loads(item.data))
                except ValueError as exc:
                    await self.ctx.reject(f"stream {item.key}: update data is not JSON ({exc})",
                                          item.data)
            elif item.kind == "alive":
                self._stream_healthy()
            elif item.kind == "error" and item.error is not None:
                await self._ingest_batch(batch)
                raise item.error
        await self._ingest_batch(batch)

    async def _ingest_batch(self, batch: dict[str, list[Any]]) -> None:
        for key, statuses in batch.items():
            await self._ingest(key, statuses, advance=key not in self.behind)

    def _stream_healthy(self) -> None:
        # Only real traffic (or a long quiet spell) counts: a server that accepts and drops
        # at once must keep the backoff growing and end in the polling fallback.
        self.stream_failures = 0
        self.ctx.ok()

    async def _listen(self, tl: _Timeline, queue: asyncio.Queue[_Item]) -> None:
        try:
            await self._read_stream(tl, queue)
            error: Exception = SourceError(f"stream {tl.key}: closed by the server")
        except (SourceError, _Forbidden) as exc:
            error = exc
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            error = SourceError(f"stream {tl.key}: {_describe(exc)}", kind="transport")
        except Exception as exc:  # a bug here must not leave the main loop waiting forever
            log.exception("connector %s: stream %s failed", self.s.name, tl.key)
            error = SourceError(f"stream {tl.key}: {_describe(exc)}", kind="crash")
        queue.put_nowait(_Item("error", tl.key, error=error))

    async def _read_stream(self, tl: _Timeline, queue: asyncio.Queue[_Item]) -> None:
        base = URL((self.s.streaming_url or self.s.base_url) + tl.stream_path)
        url = base.with_query(dict(tl.stream_query)) if tl.stream_query else base
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=self.s.request_timeout_s,
                                        sock_read=self.s.stream_idle_timeout_s)
        async with self.http.get(url, timeout=timeout,
                                 headers={"Accept": "text/event-stream"}) as resp:
            if resp.status in (401, 403):
                raise _Forbidden(f"stream {tl.key}: HTTP {resp.status} (Mastodon >= 4.2 "
                                 "streams only to a user access token with read:statuses)")
            if 400 <= resp.status < 500 and resp.status != 429:
                raise _Forbidden(f"stream {tl.key}: HTTP {resp.status}; check streaming_url")
            _check(resp, url.path)
            queue.put_nowait(_Item("connected", tl.key))
            sse, opened, stable = _SSE(), time.monotonic(), False
            async for chunk in resp.content.iter_any():
                for event, data in sse.feed(chunk):
                    if event == "update":
                        queue.put_nowait(_Item("update", tl.key, data))
                    elif not event:  # a heartbeat comment
                        self.ctx.heartbeat()
                if not stable and time.monotonic() - opened >= _STABLE_S:
                    stable = True
                    queue.put_nowait(_Item("alive", tl.key))

    # -- normalising ---------------------------------------------------------------------
    async def _ingest(self, key: str, statuses: list[Any], *, advance: bool = True) -> None:
        best = self.cursor.get(key)
        mentions: list[Mention] = []
        for status in statuses:
            sid = status.get("id") if isinstance(status, dict) else None
            if isinstance(sid, str) and _ID.fullmatch(sid) and (
                    best is None or _id_key(sid) > _id_key(best)):
                best = sid  # even a malformed status is behind us now
            try:
                mention = self._mention(status)
            except _Malformed as exc:
                await self.ctx.reject(f"{key}: {exc}", json.dumps(status)[:4096])
                continue
            if mention is not None:
                mentions.append(mention)
        cursor = dict(self.cursor)
        if best is not None and advance:
            cursor[key] = best
        if mentions or cursor != self.cursor:
            mentions.sort(key=lambda m: m.created_at)
            await self.ctx.emit(mentions, cursor=cursor)
            self.cursor = cursor

    def _mention(self, status: Any) -> Mention | None:
        """The Mention for a Status (a reblog's original), None if filtered out."""
        if not isinstance(status, dict):
            raise _Malformed(f"a status must be a JSON object, not {type(status).__name__}")
        if isinstance(status.get("reblog"), dict):
            status = status["reblog"]  # the original post is what was said, and by whom
        sid = status.get("id")
        if not isinstance(sid, str) or not sid.strip():
            raise _Malformed("status has no id")
        account = status.get("account")
        if not isinstance(account, dict):
            raise _Malformed(f"status {sid} has no account")
        content, spoiler = status.get("content") or "", status.get("spoiler_text") or ""
        if not isinstance(content, str) or not isinstance(spoiler, str):
            raise _Malformed(f"status {sid}: content and spoiler_text must be strings")
        text = _plain_text(content)
        if spoiler.strip():
            text = f"{spoiler.strip()}\n\n{text}" if text else spoiler.strip()
        language = status.get("language")
        language = language.lower() if isinstance(language, str) and language else None
        if language is not None and len(language) > 16:
            language = None
        if language and self.languages and language.split("-")[0] not in self.languages:
            return None
        name = account.get("display_name")
        record = {
            "source": "mastodon", "id": sid, "url": status.get("url") or status.get("uri"),
            "author": {"handle": account.get("acct") or account.get("username"),
                       "name": name if isinstance(name, str) and name else None,
                       "followers": _count(account.get("followers_count")),
                       "verified": False},  # Mastodon has no verified flag
            "text": text, "language": language, "created_at": status.get("created_at"),
            "engagement": {"likes": _count(status.get("favourites_count")),
                           "shares": _count(status.get("reblogs_count")),
                           "replies": _count(status.get("replies_count"))},
        }
        try:
            return parse(Mention, record)
        except RecordError as exc:
            raise _Malformed(f"status {sid}: {exc}") from exc

    async def _idle(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            self.ctx.heartbeat()
            await asyncio.sleep(min(left, 5.0))


def _check(resp: aiohttp.ClientResponse, path: str) -> None:
    """Raise the retryable error an HTTP status stands for (404 and 2xx pass)."""
    if resp.status == 429:
        raise SourceError(f"GET {path}: HTTP 429 rate limited", kind="rate_limited",
                          retry_after=retry_after_seconds(resp.headers))
    if resp.status >= 500:
        raise SourceError(f"GET {path}: HTTP {resp.status}", kind="server",
                          retry_after=retry_after_seconds(resp.headers))
    if resp.status >= 400 and resp.status != 404:
        raise SourceError(f"GET {path}: HTTP {resp.status}; check base_url and access_token",
                          kind="transport")


def _describe(exc: BaseException) -> str:
    # Not repr(): an aiohttp ClientResponseError's repr holds the request headers, and with
    # them the access token.
    return f"{type(exc).__name__}: {exc}"


def _link(links: Any, rel: str) -> URL | None:
    entry = links.get(rel) if isinstance(links, MultiDictProxy) else None
    url = entry.get("url") if entry is not None else None
    return url if isinstance(url, URL) else None


def _id_key(sid: str) -> tuple[int, str]:
    # Numeric ids compare as numbers this way, and the fixed-width base62 ids of other
    # servers (Pleroma, Akkoma) still compare in their own order.
    digits = sid.lstrip("0")
    return len(digits), digits


def _count(value: Any) -> int:
    # Remote servers have been seen to send negative or missing counts: not worth a dead letter.
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


class _SSE:
    """Incremental text/event-stream parser that only ever returns *complete* events.

    ``feed`` returns ``(event, data)`` pairs, ``("", comment)`` for comment lines. A line or
    an event cut off by a dropped connection stays in the buffer and dies with the parser.
    """

    def __init__(self) -> None:
        self._buf = b""
        self._event = ""
        self._data: list[str] = []

    def feed(self, chunk: bytes) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        lines = (self._buf + chunk).split(b"\n")
        self._buf = lines.pop()
        if len(self._buf) > _MAX_LINE_BYTES:
            raise ValueError(f"stream line longer than {_MAX_LINE_BYTES} bytes")
        for raw in lines:
            line = raw.rstrip(b"\r").decode("utf-8", "replace")
            if not line:
                if self._data:
                    out.append((self._event or "message", "\n".join(self._data)))
                self._event, self._data = "", []
            elif line.startswith(":"):
                out.append(("", line[1:]))
            else:
                field, _, value = line.partition(":")
                value = value[1:] if value.startswith(" ") else value
                if field == "event":
                    self._event = value
                elif field == "data":
                    self._data.append(value)
        return out


def _plain_text(html: str) -> str:
    """Mastodon's status HTML as plain text: <br> a line break, paragraphs a blank line.

    Link text is kept whole (Mastodon hides the scheme and the tail of long URLs in
    ``class="invisible"`` spans; the text still holds them).
    """
    return html_to_text(html, lines=True)
