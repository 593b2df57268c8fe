"""A recording fake of a Mastodon server's timeline, search and streaming APIs on 127.0.0.1:0.

It speaks Mastodon's wire format (https://docs.joinmastodon.org/methods/timelines/,
/methods/search/, /methods/streaming/): Status JSON as Mastodon renders it; timelines
newest-first with ``max_id``/``since_id``/``min_id``/``limit`` (default 20, at most 40) and a
``Link`` header (``rel="next"`` -> ``max_id``, ``rel="prev"`` -> ``min_id``);
``/api/v2/search`` answering ``{"accounts", "statuses", "hashtags"}``; server-sent events on
``/api/v1/streaming/hashtag?tag=`` and ``/api/v1/streaming/public`` (``:)`` on connect,
``:thump`` heartbeats, ``event: update`` + ``data: <Status>``); ``X-RateLimit-*`` headers with
an ISO reset time on every REST answer, ``{"error": ...}`` bodies.

Knobs: :meth:`fail_next` (429 with reset/Retry-After, 5xx, on REST or stream requests),
``stream_status`` (refuse every stream), :meth:`drop_streams_mid_event` (half an event, then
the connection dies), :meth:`push_raw` (any bytes down the streams), :meth:`add_raw` (any
JSON, malformed included, into the timelines). Every request is recorded with its time.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from aiohttp import web

from tests.fakes._server import LocalServer, serve

__all__ = ["FakeMastodon", "MastodonRequest"]

_FIRST_ID = 111_000_000_000_000_000
_RATE_LIMIT = 300
_TAG_RE = re.compile(r"<[^>]+>")


@dataclass
class MastodonRequest:
    """One request the fake received, refused ones included."""

    path: str
    query: dict[str, str]
    token: str | None
    status: int
    at: float  # time.time() when it arrived

    @property
    def is_stream(self) -> bool:
        return self.path.startswith("/api/v1/streaming/")


@dataclass
class _Failure:
    status: int
    on: Literal["rest", "stream"]
    retry_after: int | None
    reset_in_s: float | None
    remaining: int


@dataclass
class _Entry:
    sort_id: int
    tags: frozenset[str]
    text: str
    status: dict[str, Any]


@dataclass
class _Conn:
    tag: str | None  # None: the public stream
    request: web.Request
    queue: asyncio.Queue[bytes | None] = field(default_factory=asyncio.Queue)

    @property
    def open(self) -> bool:
        transport = self.request.transport
        return transport is not None and not transport.is_closing()


def frame(status: dict[str, Any], event: str = "update") -> bytes:
    """One server-sent event as Mastodon's streaming server writes it."""
    return f"event: {event}\ndata: {json.dumps(status)}\n\n".encode()


class FakeMastodon(LocalServer):
    """A Mastodon server on a loopback port; statuses posted with :meth:`post`."""

    def __init__(self, *, token: str | None = None, heartbeat_s: float = 15.0,
                 domain: str = "fake.social") -> None:
        self.token = token
        self.heartbeat_s = heartbeat_s
        self.domain = domain
        self.requests: list[MastodonRequest] = []
        self.stream_status: int | None = None
        self._entries: list[_Entry] = []
        self._next_id = _FIRST_ID
        self._failures: list[_Failure] = []
        self._conns: list[_Conn] = []
        self._rest_gate = asyncio.Event()
        self._rest_gate.set()
        self._runner: web.AppRunner | None = None
        self._url: str | None = None

    # -- lifecycle -------------------------------------------------------------------------
    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/api/v1/timelines/tag/{hashtag}", self._tag_timeline)
        app.router.add_get("/api/v1/timelines/public", self._public_timeline)
        app.router.add_get("/api/v2/search", self._search)
        app.router.add_get("/api/v1/streaming/hashtag", self._stream)
        app.router.add_get("/api/v1/streaming/public", self._stream)
        app.router.add_get("/api/v1/streaming/health", self._health)
        self._runner, self._url = await serve(app)

    async def stop(self) -> None:
        for conn in self._conns:
            conn.queue.put_nowait(None)
        await super().stop()

    @property
    def url(self) -> str:
        if self._url is None:
            raise RuntimeError("FakeMastodon is not started: await start() or 'async with'")
        return self._url

    # -- scripting -------------------------------------------------------------------------
    def status(self, text: str, *, tags: Iterable[str] = (), acct: str = "alice",
               display_name: str = "Alice", followers: int = 12, language: str | None = "en",
               spoiler: str = "", html: str | None = None, favourites: int = 0,
               reblogs: int = 0, replies: int = 0,
               reblog: dict[str, Any] | None = None) -> dict[str, Any]:
        """A Status as Mastodon renders it, with the next id (not stored: see :meth:`post`)."""
        sid = str(self._next_id)
        self._next_id += 1
        username = acct.split("@")[0]
        tags = [t.lower() for t in tags]
        if html is None:
            links = " ".join(
                f'<a href="https://{self.domain}/tags/{t}" class="mention hashtag" '
                f'rel="tag">#<span>{t}</span></a>' for t in tags)
            html = f"<p>{text}{' ' + links if links else ''}</p>"
        return {
            "id": sid, "created_at": datetime.now(UTC).isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "in_reply_to_id": None, "in_reply_to_account_id": None, "sensitive": bool(spoiler),
            "spoiler_text": spoiler, "visibility": "public", "language": language,
            "uri": f"https://{self.domain}/users/{username}/statuses/{sid}",
            "url": f"https://{self.domain}/@{username}/{sid}",
            "replies_count": replies, "reblogs_count": reblogs, "favourites_count": favourites,
            "edited_at": None, "content": "" if reblog else html, "reblog": reblog,
            "application": {"name": "Web", "website": None},
            "account": {
                "id": str(abs(hash(acct)) % 10**15), "username": username, "acct": acct,
                "display_name": display_name, "locked": False, "bot": False,
                "discoverable": True, "group": False, "created_at": "2022-11-13T00:00:00.000Z",
                "note": "", "url": f"https://{self.domain}/@{username}",
                "followers_count": followers, "following_count": 3, "statuses_count": 40,
                "last_status_at": "2024-01-01", "emojis": [], "fields": []},
            "media_attachments": [], "mentions": [],
            "tags": [{"name": t, "url": f"https://{self.domain}/tags/{t}"} for t in tags],
            "emojis": [], "card": None, "poll": None,
        }

    def post(self, text: str = "", *, status: dict[str, Any] | None = None,
             tags: Iterable[str] = (), stream: bool = True, **fields: Any) -> dict[str, Any]:
        """Publish a status: into the timelines and, unless ``stream=False``, to the open
        streams it belongs to. Returns the Status JSON."""
        status = status or self.status(text, tags=tags, **fields)
        original = status["reblog"] if isinstance(status.get("reblog"), dict) else status
        tag_set = frozenset(str(t.get("name", "")).lower() for t in original.get("tags", []))
        self._store(int(status["id"]), tag_set, status)
        if stream:
            for conn in self._conns:
                if conn.tag is None or conn.tag in tag_set:
                    conn.queue.put_nowait(frame(status))
        return status

    def add_raw(self, status: dict[str, Any], *, tags: Iterable[str] = ()) -> int:
        """Put any JSON object, malformed ones too, into the timelines (not streamed); its
        place in the timeline (the id the server pages by) is returned."""
        sort_id = self._next_id
        self._next_id += 1
        self._store(sort_id, frozenset(t.lower() for t in tags), status)
        return sort_id

    def push_raw(self, data: bytes) -> None:
        """Write ``data`` as is down every open stream."""
        for conn in self._conns:
            conn.queue.put_nowait(data)

    def drop_streams_mid_event(self, status: dict[str, Any]) -> None:
        """``status`` is posted, but every open stream gets only the first half of its event
        and then loses its connection (as when a proxy or the server restarts)."""
        self.post(status=status, stream=False)
        data = frame(status)
        for conn in self._conns:
            conn.queue.put_nowait(data[: len(data) // 2])
            conn.queue.put_nowait(None)

    def fail_next(self, status: int, *, on: Literal["rest", "stream"] = "rest", times: int = 1,
                  retry_after: int | None = None, reset_in_s: float | None = None) -> None:
        """Answer the next ``times`` REST (or stream) requests with ``status``; a 429 carries
        ``X-RateLimit-Remaining: 0`` and, given ``reset_in_s``, ``X-RateLimit-Reset``; a
        ``Retry-After`` only when ``retry_after`` is given."""
        self._failures.append(_Failure(status, on, retry_after, reset_in_s, times))

    def pause_rest(self) -> None:
        """Hold every REST answer (requests are still recorded) until :meth:`resume_rest`."""
        self._rest_gate.clear()

    def resume_rest(self) -> None:
        self._rest_gate.set()

    def open_streams(self) -> int:
        return sum(1 for c in self._conns if c.open)

    async def wait_streams(self, count: int, *, within_s: float = 10.0) -> None:
        """Wait until ``count`` streams are open (TimeoutError after ``within_s``)."""
        deadline = time.monotonic() + within_s
        while self.open_streams() < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.open_streams()} streams open, wanted {count}")
            await asyncio.sleep(0.02)

    def timeline_requests(self, path_prefix: str = "/api/v1/timelines/") -> list[MastodonRequest]:
        return [r for r in self.requests if r.path.startswith(path_prefix)]

    def stream_requests(self) -> list[MastodonRequest]:
        return [r for r in self.requests if r.is_stream]

    # -- HTTP ------------------------------------------------------------------------------
    def _store(self, sort_id: int, tags: frozenset[str], status: dict[str, Any]) -> None:
        content = status.get("content") if isinstance(status.get("content"), str) else ""
        self._entries.append(_Entry(sort_id, tags, _TAG_RE.sub(" ", content or ""), status))
        self._entries.sort(key=lambda e: e.sort_id)

    def _begin(self, request: web.Request) -> tuple[MastodonRequest, web.Response | None]:
        """Record the request; the error answer if a scripted failure or auth says so."""
        call = MastodonRequest(request.path, dict(request.query), _bearer(request), 200,
                               time.time())
        self.requests.append(call)
        on = "stream" if call.is_stream else "rest"
        failure = next((f for f in self._failures if f.on == on), None)
        if failure is not None:
            failure.remaining -= 1
            if failure.remaining <= 0:
                self._failures.remove(failure)
            headers = self._rate_headers(0 if failure.status == 429 else _RATE_LIMIT - 1,
                                         failure.reset_in_s)
            if failure.retry_after is not None:
                headers["Retry-After"] = str(failure.retry_after)
            text = "Too many requests" if failure.status == 429 else "Internal server error"
            return call, self._error(call, failure.status, text, headers)
        if self.token is not None and call.token != self.token:
            return call, self._error(call, 401, "The access token is invalid")
        return call, None

    def _error(self, call: MastodonRequest, status: int, text: str,
               headers: dict[str, str] | None = None) -> web.Response:
        call.status = status
        return web.json_response({"error": text}, status=status, headers=headers)

    @staticmethod
    def _rate_headers(remaining: int, reset_in_s: float | None = None) -> dict[str, str]:
        reset = datetime.now(UTC) + timedelta(seconds=300 if reset_in_s is None else reset_in_s)
        return {"X-RateLimit-Limit": str(_RATE_LIMIT), "X-RateLimit-Remaining": str(remaining),
                "X-RateLimit-Reset": reset.isoformat(timespec="microseconds")
                .replace("+00:00", "Z")}

    async def _tag_timeline(self, request: web.Request) -> web.Response:
        tag = request.match_info["hashtag"].lower()
        return await self._page(request, lambda e: tag in e.tags)

    async def _public_timeline(self, request: web.Request) -> web.Response:
        return await self._page(request, lambda e: True)

    async def _page(self, request: web.Request,
                    belongs: Callable[[_Entry], bool]) -> web.Response:
        _, refused = self._begin(request)
        await self._rest_gate.wait()
        if refused is not None:
            return refused
        _, picked = _select(request, [e for e in self._entries if belongs(e)])
        headers = self._rate_headers(_RATE_LIMIT - 1)
        if picked:
            keep = {k: v for k, v in request.query.items()
                    if k not in ("max_id", "min_id", "since_id")}
            newer = request.url.with_query({**keep, "min_id": str(picked[0].sort_id)})
            older = request.url.with_query({**keep, "max_id": str(picked[-1].sort_id)})
            headers["Link"] = f'<{older}>; rel="next", <{newer}>; rel="prev"'
        return web.json_response([e.status for e in picked], headers=headers)

    async def _search(self, request: web.Request) -> web.Response:
        _, refused = self._begin(request)
        await self._rest_gate.wait()
        if refused is not None:
            return refused
        q = request.query.get("q", "").strip().lower()
        kind = request.query.get("type")
        statuses: list[dict[str, Any]] = []
        if q and kind in (None, "statuses"):
            matching = [e for e in self._entries if q in e.text.lower()]
            _, picked = _select(request, matching)
            statuses = [e.status for e in picked]
        return web.json_response({"accounts": [], "statuses": statuses, "hashtags": []},
                                 headers=self._rate_headers(_RATE_LIMIT - 1))

    async def _health(self, request: web.Request) -> web.Response:
        return web.Response(text="OK")

    async def _stream(self, request: web.Request) -> web.StreamResponse:
        call, refused = self._begin(request)
        if refused is not None:
            return refused
        if self.stream_status is not None:
            return self._error(call, self.stream_status, "Streaming refused")
        tag: str | None = None
        if request.path.endswith("/hashtag"):
            tag = request.query.get("tag", "").lower()
            if not tag:
                return self._error(call, 400, "No tag for stream provided")
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                           "Cache-Control": "private, no-store"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        conn = _Conn(tag, request)
        self._conns.append(conn)
        try:
            await resp.write(b":)\n")
            while True:
                try:
                    item = await asyncio.wait_for(conn.queue.get(), self.heartbeat_s)
                except TimeoutError:
                    await resp.write(b":thump\n")
                    continue
                if item is None:  # die without ending the chunked body: a dropped connection
                    if request.transport is not None:
                        request.transport.abort()
                    break
                await resp.write(item)
        except (ConnectionError, RuntimeError):
            pass  # the client went away
        finally:
            with contextlib.suppress(ValueError):
                self._conns.remove(conn)
        return resp


def _select(request: web.Request, entries: list[_Entry]) -> tuple[int, list[_Entry]]:
    """Mastodon's id paging over ``entries`` (ascending): newest first, ``limit`` at most."""

    def arg(name: str) -> int | None:
        value = request.query.get(name, "")
        return int(value) if value.isdigit() else None

    limit = min(max(arg("limit") or 20, 1), 40)
    max_id, since_id, min_id = arg("max_id"), arg("since_id"), arg("min_id")
    chosen = [e for e in entries
              if (max_id is None or e.sort_id < max_id)
              and (since_id is None or e.sort_id > since_id)
              and (min_id is None or e.sort_id > min_id)]
    # min_id pages forward: the statuses immediately newer than it; otherwise the newest.
    chosen = chosen[:limit] if min_id is not None else chosen[-limit:]
    return limit, list(reversed(chosen))


def _bearer(request: web.Request) -> str | None:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    return (value.strip() or None) if scheme.lower() == "bearer" else None
