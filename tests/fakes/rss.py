"""A recording fake feed server: RSS 2.0, Atom and Google Alerts feeds on 127.0.0.1:0.

Each feed lives at a path and renders its items in one of three real wire formats:

- ``"rss"``: RSS 2.0 (``<rss version="2.0"><channel>`` with ``<item>``: ``title``, ``link``,
  ``guid``, ``pubDate`` (RFC 822), ``dc:creator``, ``description`` as HTML in CDATA) and the
  channel's ``<language>``;
- ``"atom"``: Atom 1.0 (``<feed xmlns="http://www.w3.org/2005/Atom">`` with ``<entry>``:
  ``id``, ``title``, ``link href``, ``published``/``updated`` (RFC 3339), ``author/name``,
  ``summary type="html"``);
- ``"google"``: a Google Alerts feed as Google serves it: Atom, ids
  ``tag:google.com,2013:googlealerts/feed:<n>``, titles ``type="html"`` with the matched words
  in ``<b>``, links ``https://www.google.com/url?rct=j&sa=t&url=<real url>&ct=ga&cd=..&usg=..``,
  ``content type="html"`` and an empty ``author/name``.

Responses carry a strong ``ETag`` (a hash of the body) and a ``Last-Modified`` (when the feed
last changed), and honour ``If-None-Match`` / ``If-Modified-Since`` with ``304 Not Modified``,
as Apache/nginx do for static feeds. Knobs: ``fail_next`` (429/5xx with ``Retry-After``),
``set_raw`` (serve a body that is not a feed), ``ignore_conditional`` (a server that always
answers 200). Every request is recorded with its conditional headers and arrival time.
"""

from __future__ import annotations

import email.utils
import hashlib
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal
from urllib.parse import quote
from xml.sax.saxutils import escape, quoteattr

from aiohttp import web

from tests.fakes._server import LocalServer, serve

__all__ = ["FakeFeeds", "FeedItem", "FeedRequest"]

FeedFormat = Literal["rss", "atom", "google"]


@dataclass
class FeedItem:
    """One item of a feed. ``link=None`` leaves the link out (a malformed entry)."""

    id: str
    title: str
    link: str | None
    summary: str = ""  # HTML
    author: str | None = None
    published: datetime = field(default_factory=lambda: datetime.now(UTC))


@dataclass
class FeedRequest:
    """One request the fake received."""

    path: str
    status: int
    at: float  # time.monotonic()
    if_none_match: str | None
    if_modified_since: str | None
    user_agent: str | None
    etag: str | None = None  # the ETag the response carried


@dataclass
class _Feed:
    format: FeedFormat
    title: str
    language: str | None
    items: list[FeedItem] = field(default_factory=list)
    raw: bytes | None = None
    raw_type: str = "text/html"
    changed_at: float = field(default_factory=time.time)


@dataclass
class _Failure:
    status: int
    retry_after: int | None
    remaining: int


def _rfc822(when: datetime) -> str:
    return email.utils.format_datetime(when.astimezone(UTC), usegmt=True)


def _rfc3339(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _rss(feed: _Feed, base: str) -> str:
    items = []
    for it in feed.items:
        parts = [f"<title>{escape(it.title)}</title>"]
        if it.link is not None:
            parts.append(f"<link>{escape(it.link)}</link>")
        parts.append(f'<guid isPermaLink="false">{escape(it.id)}</guid>')
        parts.append(f"<pubDate>{_rfc822(it.published)}</pubDate>")
        if it.author:
            parts.append(f"<dc:creator>{escape(it.author)}</dc:creator>")
        if it.summary:
            parts.append(f"<description><![CDATA[{it.summary}]]></description>")
        items.append("<item>" + "".join(parts) + "</item>")
    lang = f"<language>{escape(feed.language)}</language>" if feed.language else ""
    return ('<?xml version="1.0" encoding="UTF-8"?>\n'
            '<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/">'
            f"<channel><title>{escape(feed.title)}</title><link>{escape(base)}/</link>"
            f"<description>{escape(feed.title)}</description>{lang}"
            + "".join(items) + "</channel></rss>\n")


def _atom(feed: _Feed, self_url: str) -> str:
    entries = []
    updated = max((it.published for it in feed.items), default=datetime.now(UTC))
    for it in feed.items:
        parts = [f"<id>{escape(it.id)}</id>",
                 f'<title type="html">{escape(it.title)}</title>']
        if it.link is not None:
            parts.append(f"<link href={quoteattr(it.link)}/>")
        parts.append(f"<published>{_rfc3339(it.published)}</published>")
        parts.append(f"<updated>{_rfc3339(it.published)}</updated>")
        if it.summary:
            parts.append(f'<summary type="html">{escape(it.summary)}</summary>')
        if it.author:
            parts.append(f"<author><name>{escape(it.author)}</name></author>")
        entries.append("<entry>" + "".join(parts) + "</entry>")
    lang = f" xml:lang={quoteattr(feed.language)}" if feed.language else ""
    return ('<?xml version="1.0" encoding="utf-8"?>\n'
            f'<feed xmlns="http://www.w3.org/2005/Atom"{lang}>'
            f"<id>{escape(self_url)}</id><title>{escape(feed.title)}</title>"
            f'<link href={quoteattr(self_url)} rel="self"/>'
            f"<updated>{_rfc3339(updated)}</updated>" + "".join(entries) + "</feed>\n")


def _google(feed: _Feed, self_url: str) -> str:
    entries = []
    updated = max((it.published for it in feed.items), default=datetime.now(UTC))
    for n, it in enumerate(feed.items):
        digits = int(hashlib.sha1(it.id.encode()).hexdigest()[:15], 16)
        parts = [f"<id>tag:google.com,2013:googlealerts/feed:{digits}</id>",
                 f'<title type="html">{escape(it.title)}</title>']
        if it.link is not None:
            wrapped = (f"https://www.google.com/url?rct=j&sa=t&url={quote(it.link, safe=':/')}"
                       f"&ct=ga&cd=CAIyGjE{n}ZWQ&usg=AOvVaw{n}Xyz")
            parts.append(f"<link href={quoteattr(wrapped)}></link>")
        parts.append(f"<published>{_rfc3339(it.published)}</published>")
        parts.append(f"<updated>{_rfc3339(it.published)}</updated>")
        parts.append(f'<content type="html">{escape(it.summary)}</content>')
        parts.append("<author><name></name></author>")
        entries.append("<entry>" + "".join(parts) + "</entry>")
    return ('<?xml version="1.0" encoding="utf-8"?>\n'
            '<feed xmlns="http://www.w3.org/2005/Atom" '
            'xmlns:idx="urn:atom-extension:indexing">'
            "<id>tag:google.com,2005:reader/user/00000000000000000000/state/com.google/alerts/"
            "11111111111111111111</id>"
            f"<title>{escape(feed.title)}</title>"
            f'<link href={quoteattr(self_url)} rel="self"></link>'
            f"<updated>{_rfc3339(updated)}</updated>" + "".join(entries) + "</feed>\n")


_CONTENT_TYPES = {"rss": "application/rss+xml", "atom": "application/atom+xml",
                  "google": "application/atom+xml"}


class FakeFeeds(LocalServer):
    """Feeds served at paths of one loopback server; see the module docstring."""

    def __init__(self) -> None:
        self.requests: list[FeedRequest] = []
        self.ignore_conditional = False
        self._feeds: dict[str, _Feed] = {}
        self._failures: dict[str, list[_Failure]] = {}
        self._runner: web.AppRunner | None = None
        self._url: str | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("GET", "/{path:.*}", self._serve)
        self._runner, self._url = await serve(app)

    @property
    def url(self) -> str:
        if self._url is None:
            raise RuntimeError("FakeFeeds has no URL yet: await start() or use 'async with'")
        return self._url

    def feed_url(self, path: str) -> str:
        return f"{self.url}{path}"

    # -- scripting ---------------------------------------------------------------------------
    def add_feed(self, path: str, *, format: FeedFormat = "rss", title: str = "Example feed",
                 language: str | None = None, items: list[FeedItem] | None = None) -> str:
        """Serve a feed at ``path`` (e.g. ``/news.xml``); returns its URL."""
        self._feeds[path] = _Feed(format, title, language, list(items or []))
        return self.feed_url(path)

    def add_items(self, path: str, *items: FeedItem) -> None:
        """Publish new items at the top of the feed (newest first, as feeds list them)."""
        feed = self._feeds[path]
        feed.items[:0] = list(reversed(items))
        feed.changed_at = time.time()

    def set_raw(self, path: str, body: bytes, *, content_type: str = "text/html") -> str:
        """Serve ``body`` at ``path`` instead of a feed (e.g. an HTML error page)."""
        feed = self._feeds.setdefault(path, _Feed("rss", "raw", None))
        feed.raw, feed.raw_type = body, content_type
        feed.changed_at = time.time()
        return self.feed_url(path)

    def fail_next(self, path: str, status: int, *, retry_after: int | None = None,
                  times: int = 1) -> None:
        """Answer the next ``times`` requests for ``path`` with ``status``."""
        self._failures.setdefault(path, []).append(_Failure(status, retry_after, times))

    def requests_for(self, path: str) -> list[FeedRequest]:
        return [r for r in self.requests if r.path == path]

    # -- HTTP --------------------------------------------------------------------------------
    async def _serve(self, request: web.Request) -> web.Response:
        path = request.path
        call = FeedRequest(path, 200, time.monotonic(), request.headers.get("If-None-Match"),
                           request.headers.get("If-Modified-Since"),
                           request.headers.get("User-Agent"))
        self.requests.append(call)
        failures = self._failures.get(path) or []
        if failures:
            failure = failures[0]
            failure.remaining -= 1
            if failure.remaining == 0:
                failures.pop(0)
            call.status = failure.status
            headers = {} if failure.retry_after is None else {
                "Retry-After": str(failure.retry_after)}
            return web.Response(status=failure.status, headers=headers,
                                text=f"{failure.status} error")
        feed = self._feeds.get(path)
        if feed is None:
            call.status = 404
            return web.Response(status=404, text="404 Not Found")
        if feed.raw is not None:
            return web.Response(body=feed.raw, content_type=feed.raw_type)
        body = self._render(feed, path).encode("utf-8")
        etag = '"' + hashlib.sha1(body).hexdigest()[:20] + '"'
        last_modified = email.utils.formatdate(int(feed.changed_at), usegmt=True)
        headers = {"ETag": etag, "Last-Modified": last_modified}
        call.etag = etag
        if not self.ignore_conditional and self._not_modified(request, etag, feed.changed_at):
            call.status = 304
            return web.Response(status=304, headers=headers)
        return web.Response(body=body, headers=headers,
                            content_type=_CONTENT_TYPES[feed.format], charset="utf-8")

    @staticmethod
    def _not_modified(request: web.Request, etag: str, changed_at: float) -> bool:
        # RFC 9110 13.1.3: If-None-Match wins; If-Modified-Since only when it is absent.
        inm = request.headers.get("If-None-Match")
        if inm is not None:
            return etag in [t.strip() for t in inm.split(",")] or inm.strip() == "*"
        ims = request.headers.get("If-Modified-Since")
        if ims is None:
            return False
        try:
            since = email.utils.parsedate_to_datetime(ims).timestamp()
        except (TypeError, ValueError):
            return False
        return int(changed_at) <= since

    def _render(self, feed: _Feed, path: str) -> str:
        if feed.format == "rss":
            return _rss(feed, self.url)
        if feed.format == "atom":
            return _atom(feed, self.feed_url(path))
        return _google(feed, self.feed_url(path))
