"""RSS 2.0 and Atom feeds (news sites, blogs, Google Alerts) polled over HTTP.

Each configured feed is fetched with aiohttp on its own schedule (``interval_s``) inside the one
connector task, and the bytes are parsed with ``feedparser`` (which is never allowed to fetch
anything itself). Requests are conditional: the stored ``ETag`` goes out as ``If-None-Match``
and the stored ``Last-Modified`` as ``If-Modified-Since``; a ``304 Not Modified`` means nothing
new. Google Alerts entries link to ``https://www.google.com/url?...&url=<real url>``: the real
URL is unwrapped, and the ``<b>`` highlighting Google puts in titles is stripped with the rest
of the HTML.

Cursor (JSON, one entry per feed URL)::

    {"feeds": {"<feed url>": {"etag": str | null, "last_modified": str | null,
                              "seen": ["<entry key>", ...]}}}

``seen`` holds the keys (entry id/guid, else link) of the last 500 entries of that feed, so a
feed that re-lists old items (or a server that ignores conditional requests) does not re-emit
them; ``ctx.emit`` dedups by (source, id) on top of that. A feed's entry is replaced only after
its mentions are on the broker, so a crash re-fetches rather than skips.

Failures are per feed: a 429/5xx/network error backs that feed off (its own exponential
backoff, at least what ``Retry-After`` says) while the other feeds keep polling. A body that is
not a feed, or an entry with no link or no text, goes to the dead-letter topic with the reason.
"""

from __future__ import annotations

import asyncio
import calendar
import hashlib
import io
import json
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import feedparser
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from streams.connectors.base import (
    Backoff,
    ConnectorContext,
    SourceError,
    SourceSettings,
    retry_after_seconds,
)
from streams.connectors.text import html_to_text
from streams.core.records import Author, Mention

__all__ = ["RssConnector", "RssFeed", "RssSettings"]

log = logging.getLogger(__name__)

#: Entry keys remembered per feed: more than any real feed lists at once.
_SEEN_PER_FEED = 500
_READ_CHUNK = 64 * 1024


class RssFeed(BaseModel):
    """One feed to poll."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    url: str = Field(description="The feed's http(s) URL (RSS 2.0 or Atom, e.g. a Google "
                     "Alerts feed).")
    interval_s: float = Field(default=300.0, gt=0, le=86400,
                              description="Seconds between polls of this feed.")
    name: str | None = Field(default=None, max_length=200,
                             description="Label for logs and dead letters; defaults to the URL.")

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("use an http(s) URL, e.g. 'https://example.com/feed.xml'")
        return value.strip()


class RssSettings(SourceSettings):
    """An RSS/Atom connector: a list of feeds, each with its own poll interval."""

    feeds: list[RssFeed] = Field(min_length=1, description="The feeds to poll.")
    user_agent: str = Field(default="escucha-rss/1.0 (social listening feed reader)",
                            min_length=1, max_length=300,
                            description="User-Agent sent with every request; some sites refuse "
                            "clients without one.")
    max_items_per_poll: int = Field(default=200, ge=1, le=10_000,
                                    description="Most new entries emitted per feed per poll; "
                                    "the rest come on the next poll.")
    request_timeout_s: float = Field(default=30.0, gt=0, le=600,
                                     description="Total time allowed for one feed request.")
    max_feed_bytes: int = Field(default=10 * 1024 * 1024, ge=1024, le=200 * 1024 * 1024,
                                description="Larger feed bodies are refused (dead-lettered).")

    @field_validator("feeds")
    @classmethod
    def _unique(cls, feeds: list[RssFeed]) -> list[RssFeed]:
        urls = [f.url for f in feeds]
        dupes = sorted({u for u in urls if urls.count(u) > 1})
        if dupes:
            raise ValueError(f"each feed URL once; repeated: {', '.join(dupes)}")
        return feeds


def _unwrap(link: str) -> str:
    """The real URL behind a Google redirect (Google Alerts, Google News), else ``link``."""
    parts = urlsplit(link)
    host = (parts.hostname or "").lower()
    if parts.path == "/url" and (host.startswith(("google.", "www.google."))):
        query = parse_qs(parts.query)
        for key in ("url", "q"):
            for target in query.get(key, []):
                if urlsplit(target).scheme in ("http", "https"):
                    return target
    return link


def _link(entry: Mapping[str, Any], *, guid_is_link: bool) -> str | None:
    """The entry's http(s) link, unwrapped; None when it has none.

    feedparser copies an entry's id into ``link`` when there is no link element
    (``guidislink``); that counts only where the format says the id is a permalink.
    """
    link = entry.get("link")
    if not isinstance(link, str) or not link.strip():
        return None
    if not entry.get("links") and not guid_is_link:
        return None
    link = _unwrap(link.strip())
    return link if urlsplit(link).scheme in ("http", "https") else None


def _domain(url: str) -> str:
    host = (urlsplit(url).hostname or "").lower()
    return host.removeprefix("www.")


def _language(value: Any) -> str | None:
    """'en-us' -> 'en'; anything that is not a language tag -> None."""
    if not isinstance(value, str):
        return None
    primary = value.strip().replace("_", "-").split("-")[0].lower()
    return primary if 2 <= len(primary) <= 3 and primary.isalpha() else None


def _when(entry: Mapping[str, Any]) -> datetime:
    for key in ("published_parsed", "updated_parsed", "created_parsed"):
        parsed = entry.get(key)
        if parsed:
            # feedparser normalises to UTC struct_time; timegm reads it as UTC.
            return datetime.fromtimestamp(calendar.timegm(parsed), UTC)
    return datetime.now(UTC)


def _entry_key(entry: Mapping[str, Any]) -> str:
    """Identity of an entry within its feed: id/guid, else link, else a hash of its text."""
    for key in ("id", "link"):
        value = entry.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    body = f"{entry.get('title', '')}\x1f{entry.get('summary', '')}"
    return "sha1:" + hashlib.sha1(body.encode()).hexdigest()


def _entry_raw(entry: Mapping[str, Any]) -> str:
    # feedparser entries hold struct_times; str() them so the dead letter shows everything.
    return json.dumps(entry, default=str, ensure_ascii=False)


class _FeedState:
    """The schedule and backoff of one feed, and its committed cursor entry."""

    def __init__(self, feed: RssFeed, stored: Any, backoff: Backoff) -> None:
        self.feed = feed
        self.label = feed.name or feed.url
        stored = stored if isinstance(stored, dict) else {}
        self.etag: str | None = stored.get("etag") if isinstance(stored.get("etag"), str) else None
        lm = stored.get("last_modified")
        self.last_modified: str | None = lm if isinstance(lm, str) else None
        seen = stored.get("seen")
        self.seen: list[str] = [s for s in seen if isinstance(s, str)] if isinstance(
            seen, list) else []
        self.backoff = backoff

    def as_cursor(self) -> dict[str, Any]:
        return {"etag": self.etag, "last_modified": self.last_modified, "seen": self.seen}


class RssConnector:
    """Polls RSS/Atom feeds; see the module docstring."""

    source = "rss"

    def __init__(self, settings: RssSettings) -> None:
        self.settings = settings
        self.name = settings.name
        self._states: dict[str, _FeedState] = {}
        self._commit = asyncio.Lock()

    async def run(self, ctx: ConnectorContext) -> None:
        stored = ctx.cursor.get("feeds") if isinstance(ctx.cursor, dict) else None
        stored = stored if isinstance(stored, dict) else {}
        self._states = {
            f.url: _FeedState(f, stored.get(f.url),
                              Backoff(base=self.settings.initial_backoff_s,
                                      cap=self.settings.max_backoff_s))
            for f in self.settings.feeds
        }
        timeout = aiohttp.ClientTimeout(total=self.settings.request_timeout_s)
        headers = {"User-Agent": self.settings.user_agent,
                   "Accept": "application/atom+xml, application/rss+xml, application/xml;q=0.9,"
                             " text/xml;q=0.8, */*;q=0.1"}
        # One child task per feed, so a feed sleeping off a Retry-After or its backoff does
        # not hold the others; the group ends (and is cancelled) with run().
        async with aiohttp.ClientSession(timeout=timeout, headers=headers) as session, \
                asyncio.TaskGroup() as group:
            for state in self._states.values():
                group.create_task(self._feed_loop(ctx, session, state),
                                  name=f"rss:{self.name}:{state.label}")

    async def _feed_loop(self, ctx: ConnectorContext, session: aiohttp.ClientSession,
                         state: _FeedState) -> None:
        while True:
            try:
                await self._poll(ctx, session, state)
            except SourceError as exc:
                # Each feed backs off on its own schedule: the shared context backoff is
                # reset by the other feeds' successes, so pass this feed's delay as the floor.
                delay = state.backoff.next_delay(exc.retry_after)
                message = f"{state.feed.name}: {exc}" if state.feed.name else str(exc)
                await ctx.failed(SourceError(message, kind=exc.kind, retry_after=delay))
                continue
            state.backoff.reset()
            ctx.ok()
            ctx.heartbeat()
            await asyncio.sleep(state.feed.interval_s)

    async def _poll(self, ctx: ConnectorContext, session: aiohttp.ClientSession,
                    state: _FeedState) -> None:
        url = state.feed.url
        headers: dict[str, str] = {}
        if state.etag:
            headers["If-None-Match"] = state.etag
        if state.last_modified:
            headers["If-Modified-Since"] = state.last_modified
        try:
            async with session.get(url, headers=headers) as resp:
                if resp.status == 304:
                    return
                if resp.status == 429:
                    raise SourceError(f"HTTP 429 from {url}", kind="rate_limited",
                                      retry_after=retry_after_seconds(resp.headers))
                if resp.status >= 400:
                    hint = "" if resp.status >= 500 else " (check the feed URL)"
                    raise SourceError(f"HTTP {resp.status} from {url}{hint}", kind="server",
                                      retry_after=retry_after_seconds(resp.headers))
                body = await self._read(resp)
                # The final URL resolves relative links; the declared type and charset
                # guide feedparser's encoding detection.
                response_headers = {"content-location": str(resp.url)}
                if "Content-Type" in resp.headers:
                    response_headers["content-type"] = resp.headers["Content-Type"]
                etag = resp.headers.get("ETag")
                last_modified = resp.headers.get("Last-Modified")
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise SourceError(f"fetching {url}: {type(exc).__name__}: {exc}",
                              kind="transport") from exc
        if body is None:
            await ctx.reject(f"feed {url} is larger than {self.settings.max_feed_bytes} bytes",
                             b"", origin=url)
            return
        parsed = await asyncio.to_thread(
            feedparser.parse, io.BytesIO(body), response_headers=response_headers)
        entries = list(parsed.get("entries") or [])
        if not entries and (parsed.get("bozo") or not parsed.get("version")):
            why = parsed.get("bozo_exception")
            detail = f": {why}" if why else ""
            await ctx.reject(f"feed {url} is not RSS or Atom XML{detail}", body, origin=url)
            return
        await self._handle(ctx, state, parsed, entries, etag, last_modified)

    async def _read(self, resp: aiohttp.ClientResponse) -> bytes | None:
        """The body, or None when it is over ``max_feed_bytes``."""
        chunks: list[bytes] = []
        size = 0
        async for chunk in resp.content.iter_chunked(_READ_CHUNK):
            size += len(chunk)
            if size > self.settings.max_feed_bytes:
                return None
            chunks.append(chunk)
        return b"".join(chunks)

    async def _handle(self, ctx: ConnectorContext, state: _FeedState, parsed: Any,
                      entries: list[Any], etag: str | None, last_modified: str | None) -> None:
        url = state.feed.url
        feed_meta = parsed.get("feed") or {}
        language = _language(feed_meta.get("language"))
        # RSS 2.0 says a <guid> (isPermaLink defaults to true) is the item's permalink;
        # an Atom <id> is only an identifier, never a link.
        guid_is_link = str(parsed.get("version") or "").startswith("rss")
        seen = set(state.seen)
        keys_now: list[str] = []
        mentions: list[Mention] = []
        capped = False
        for entry in entries:
            key = _entry_key(entry)
            if key in seen:
                keys_now.append(key)
                continue
            if len(mentions) >= self.settings.max_items_per_poll:
                capped = True  # left unseen: the next poll picks it up
                continue
            keys_now.append(key)
            mention, reason = self._mention(entry, key, url, language,
                                            guid_is_link=guid_is_link)
            if mention is None:
                await ctx.reject(f"feed {url}: entry {key[:200]!r} {reason}", _entry_raw(entry),
                                 origin=url)
                continue
            mentions.append(mention)
        # The entries listed now first, so a long feed never evicts its own current items.
        merged = list(dict.fromkeys([*keys_now, *state.seen]))[:_SEEN_PER_FEED]
        # When capped, the next poll must get the full feed again, not a 304.
        new_etag = None if capped else etag
        new_last_modified = None if capped else last_modified
        new_entry = {"etag": new_etag, "last_modified": new_last_modified, "seen": merged}
        async with self._commit:
            # Serialised, and built from the committed entries of the other feeds, so the
            # stored cursor never runs ahead of what the broker has.
            feeds = {u: s.as_cursor() for u, s in self._states.items() if u != url}
            feeds[url] = new_entry
            await ctx.emit(mentions, cursor={"feeds": feeds})
            state.etag, state.last_modified = new_etag, new_last_modified
            state.seen = merged
        if mentions:
            log.debug("rss %s: %d new entries from %s", self.name, len(mentions), url)

    def _mention(self, entry: Mapping[str, Any], key: str, feed_url: str,
                 language: str | None, *, guid_is_link: bool) -> tuple[Mention | None, str]:
        link = _link(entry, guid_is_link=guid_is_link)
        if link is None:
            return None, "has no link"
        title = html_to_text(entry.get("title"))
        summary = entry.get("summary")
        if not summary and entry.get("content"):
            summary = entry["content"][0].get("value")
        summary_text = html_to_text(summary if isinstance(summary, str) else None)
        if not title and not summary_text:
            return None, "has neither title nor summary"
        text = f"{title}\n{summary_text}" if title and summary_text else title or summary_text
        detail = entry.get("author_detail") or {}
        author_name = html_to_text(detail.get("name") or entry.get("author")) or None
        handle = author_name or _domain(link) or _domain(feed_url)
        digest = hashlib.sha1(f"{feed_url}\x1f{key}".encode()).hexdigest()
        entry_lang = _language((entry.get("title_detail") or {}).get("language"))
        try:
            mention = Mention(
                source=self.source,
                id=f"{_domain(feed_url)[:100]}:{digest}",
                url=link,
                author=Author(handle=handle[:256], name=author_name[:512] if author_name
                              else None),
                text=text,
                language=language or entry_lang,
                created_at=_when(entry),
            )
        except ValidationError as exc:
            return None, f"is not a valid mention: {exc.errors(include_url=False)}"
        return mention, ""
