"""A recording fake of Bluesky's Jetstream and of the searchPosts/session XRPC endpoints.

One aiohttp server on 127.0.0.1:0 plays three roles, so a test points every URL at it:

- **Jetstream** (https://github.com/bluesky-social/jetstream): ``GET /subscribe`` upgrades to
  a WebSocket and sends one JSON text frame per event, ``{"did", "time_us", "kind", ...}``.
  ``wantedCollections`` filters commits (identity and account events always pass); ``cursor``
  (unix microseconds) replays every stored event with ``time_us >= cursor`` and then tails
  live; no cursor, or one from the future, tails live only.
- **AppView** ``GET /xrpc/app.bsky.feed.searchPosts`` (q, sort, since, until, limit 1-100,
  cursor) answering ``{"posts": [PostView], "cursor"?, "hitsTotal"}`` newest first, with
  atproto's ``ratelimit-*`` headers and XRPC errors ``{"error", "message"}``.
- **PDS** ``POST /xrpc/com.atproto.server.createSession`` / ``refreshSession`` when built with
  ``accounts``; then searchPosts needs ``Authorization: Bearer <accessJwt>``.

Faults: :meth:`fail_next_handshake` (an HTTP error instead of the upgrade),
:meth:`drop_after` (close or cut the next stream after n frames), :meth:`raw` (a malformed
frame), :meth:`fail_next_search`, :meth:`add_raw_post_view`, :meth:`expire_tokens`.
Every handshake and search request is recorded with its monotonic time.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from tests.fakes._server import LocalServer, serve

__all__ = ["FakeBluesky", "HandshakeRequest", "SearchRequest"]

_POST = "app.bsky.feed.post"
_ERROR_NAMES = {400: "InvalidRequest", 401: "AuthMissing", 403: "Forbidden",
                429: "RateLimitExceeded", 500: "InternalServerError", 502: "UpstreamFailure",
                503: "NotEnoughResources"}
_MESSAGES = {400: "Invalid request", 401: "Authentication Required", 403: "Forbidden",
             429: "Rate Limit Exceeded", 500: "Internal Server Error",
             502: "Bad Gateway", 503: "Service Unavailable"}
_RATE_LIMIT, _RATE_WINDOW = 3000, 300


@dataclass
class HandshakeRequest:
    """One ``/subscribe`` request: when (time.monotonic()), its query, what it got."""

    at: float
    query: dict[str, list[str]]
    status: int = 101
    frames_sent: int = 0

    @property
    def cursor(self) -> int | None:
        values = self.query.get("cursor")
        return int(values[0]) if values else None


@dataclass
class SearchRequest:
    at: float
    params: dict[str, str]
    token: str | None
    status: int = 200


@dataclass
class _Event:
    time_us: int
    collection: str | None  # None: identity/account/raw frames, sent to every subscriber
    frame: str


@dataclass
class _Failure:
    status: int
    headers: dict[str, str]
    remaining: int


@dataclass
class _Drop:
    after: int
    abrupt: bool


@dataclass
class _Stream:
    ws: web.WebSocketResponse
    request: web.Request
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _parse_time(value: str) -> datetime:
    when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when


def _tid() -> str:
    """A record key shaped like atproto's TIDs (13 base32-sortable characters)."""
    alphabet = "234567abcdefghijklmnopqrstuvwxyz"
    n = time.time_ns() // 1000 << 10 | secrets.randbelow(1024)
    return "".join(alphabet[(n >> (5 * i)) & 31] for i in range(12, -1, -1))


class FakeBluesky(LocalServer):
    """Jetstream + searchPosts + sessions on a loopback port; see the module docstring."""

    def __init__(self, *, accounts: dict[str, str] | None = None) -> None:
        self.accounts = accounts
        self.handshakes: list[HandshakeRequest] = []
        self.searches: list[SearchRequest] = []
        self.sessions_created = 0
        self.sessions_refreshed = 0
        self._events: list[_Event] = []
        self._posts: list[dict[str, Any]] = []
        self._handshake_failures: list[_Failure] = []
        self._search_failures: list[_Failure] = []
        self._drops: list[_Drop] = []
        self._access: dict[str, bool] = {}  # token -> still valid
        self._refresh: set[str] = set()
        self._changed = asyncio.Event()
        self._streams: list[_Stream] = []
        self._last_us = 0
        self._url: str | None = None

    # -- lifecycle ----------------------------------------------------------------------------
    async def start(self) -> None:
        if self._runner is not None:
            raise RuntimeError("FakeBluesky is already started")
        app = web.Application()
        app.router.add_get("/subscribe", self._subscribe)
        app.router.add_get("/xrpc/app.bsky.feed.searchPosts", self._search_posts)
        app.router.add_post("/xrpc/com.atproto.server.createSession", self._create_session)
        app.router.add_post("/xrpc/com.atproto.server.refreshSession", self._refresh_session)
        self._runner, self._url = await serve(app)

    async def stop(self) -> None:
        for stream in list(self._streams):
            for task in stream.tasks:
                task.cancel()
            with contextlib.suppress(Exception):
                await stream.ws.close()
        await super().stop()

    @property
    def url(self) -> str:
        """HTTP base URL (appview_url, pds_url)."""
        if self._url is None:
            raise RuntimeError("FakeBluesky has no URL yet: await start() or use 'async with'")
        return self._url

    @property
    def ws_url(self) -> str:
        """WebSocket base URL, for ``jetstream_url``."""
        return "ws" + self.url[len("http"):]

    @property
    def connections(self) -> int:
        """Streams open now."""
        return len(self._streams)

    # -- Jetstream events ---------------------------------------------------------------------
    def _next_us(self) -> int:
        self._last_us = max(self._last_us + 1, time.time_ns() // 1000)
        return self._last_us

    def _append(self, collection: str | None, frame: str, time_us: int) -> None:
        self._events.append(_Event(time_us, collection, frame))
        self._changed.set()

    def post(self, text: str | None, *, did: str = "did:plc:alice", rkey: str | None = None,
             langs: list[str] | None = None, created_at: str | None = None,
             operation: str = "create", collection: str = _POST) -> dict[str, Any]:
        """Commit a post (``text=None``: a record without text) and return the event."""
        time_us = self._next_us()
        commit: dict[str, Any] = {"rev": _tid(), "operation": operation,
                                  "collection": collection, "rkey": rkey or _tid()}
        if operation != "delete":
            record: dict[str, Any] = {"$type": collection,
                                      "createdAt": created_at or _iso(datetime.now(UTC))}
            if text is not None:
                record["text"] = text
            if langs is not None:
                record["langs"] = langs
            commit["record"] = record
            commit["cid"] = "bafyrei" + secrets.token_hex(26)
        event = {"did": did, "time_us": time_us, "kind": "commit", "commit": commit}
        self._append(collection, json.dumps(event, ensure_ascii=False), time_us)
        return event

    def like(self, subject_uri: str, *, did: str = "did:plc:bob") -> dict[str, Any]:
        time_us = self._next_us()
        event = {"did": did, "time_us": time_us, "kind": "commit", "commit": {
            "rev": _tid(), "operation": "create", "collection": "app.bsky.feed.like",
            "rkey": _tid(), "record": {"$type": "app.bsky.feed.like",
                                       "createdAt": _iso(datetime.now(UTC)),
                                       "subject": {"uri": subject_uri, "cid": "bafyrei"}},
            "cid": "bafyrei" + secrets.token_hex(26)}}
        self._append("app.bsky.feed.like", json.dumps(event), time_us)
        return event

    def identity(self, did: str, handle: str) -> dict[str, Any]:
        time_us = self._next_us()
        event = {"did": did, "time_us": time_us, "kind": "identity", "identity": {
            "did": did, "handle": handle, "seq": len(self._events) + 1,
            "time": _iso(datetime.now(UTC))}}
        self._append(None, json.dumps(event), time_us)
        return event

    def account(self, did: str, *, active: bool = True) -> dict[str, Any]:
        time_us = self._next_us()
        event = {"did": did, "time_us": time_us, "kind": "account", "account": {
            "active": active, "did": did, "seq": len(self._events) + 1,
            "time": _iso(datetime.now(UTC))}}
        self._append(None, json.dumps(event), time_us)
        return event

    def raw(self, frame: str) -> None:
        """Send ``frame`` as is (a malformed event) in its place in the stream."""
        self._append(None, frame, self._next_us())

    def drop_after(self, frames: int, *, abrupt: bool = True) -> None:
        """The next stream ends after ``frames`` frames: cut (TCP closed, no close frame) when
        ``abrupt``, else closed with code 1011."""
        self._drops.append(_Drop(frames, abrupt))

    def fail_next_handshake(self, status: int, *, retry_after: int | None = None,
                            headers: dict[str, str] | None = None, times: int = 1) -> None:
        """Answer the next ``times`` ``/subscribe`` requests with ``status`` instead of 101."""
        extra = dict(headers or {})
        if retry_after is not None:
            extra["Retry-After"] = str(retry_after)
        self._handshake_failures.append(_Failure(status, extra, times))

    async def _subscribe(self, request: web.Request) -> web.StreamResponse:
        call = HandshakeRequest(time.monotonic(),
                                {k: request.query.getall(k) for k in request.query})
        self.handshakes.append(call)
        failure = _take(self._handshake_failures)
        if failure is not None:
            call.status = failure.status
            return _xrpc_error(failure.status, headers=failure.headers)
        wanted = set(request.query.getall("wantedCollections", []))
        cursor_text = request.query.get("cursor")
        now_us = time.time_ns() // 1000
        try:
            cursor = int(cursor_text) if cursor_text else None
        except ValueError:
            call.status = 400
            return _xrpc_error(400, "invalid cursor")
        if cursor is None or cursor > now_us:  # live tail
            index = len(self._events)
        else:
            index = next((i for i, e in enumerate(self._events) if e.time_us >= cursor),
                         len(self._events))
        drop = self._drops.pop(0) if self._drops else None
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        stream = _Stream(ws, request)
        self._streams.append(stream)
        reader = asyncio.create_task(self._read(ws))
        stream.tasks.append(reader)
        try:
            while not ws.closed and not reader.done():
                while index < len(self._events):
                    event = self._events[index]
                    index += 1
                    if event.collection is not None and wanted and event.collection not in wanted:
                        continue
                    if drop is not None and call.frames_sent >= drop.after:
                        if drop.abrupt and request.transport is not None:
                            request.transport.close()
                        else:
                            await ws.close(code=1011, message=b"fake: stream dropped")
                        return ws
                    await ws.send_str(event.frame)
                    call.frames_sent += 1
                self._changed.clear()
                waiter = asyncio.create_task(self._changed.wait())
                stream.tasks.append(waiter)
                await asyncio.wait({reader, waiter}, return_when=asyncio.FIRST_COMPLETED)
                waiter.cancel()
                stream.tasks.remove(waiter)
        except (ConnectionError, RuntimeError):
            pass  # the client went away mid-send
        finally:
            reader.cancel()
            self._streams.remove(stream)
        return ws

    @staticmethod
    async def _read(ws: web.WebSocketResponse) -> None:
        async for _ in ws:  # Jetstream ignores what subscribers say, beyond options updates
            pass

    # -- searchPosts -------------------------------------------------------------------------
    def add_post_view(self, text: str, *, did: str = "did:plc:alice",
                      handle: str = "alice.bsky.social", display_name: str | None = "Alice",
                      created_at: datetime | None = None, indexed_at: datetime | None = None,
                      langs: list[str] | None = None, likes: int = 0, reposts: int = 0,
                      replies: int = 0, quotes: int = 0, verified: bool = False,
                      ) -> dict[str, Any]:
        """Index a post for search; returns its PostView."""
        created = created_at or datetime.now(UTC)
        rkey = _tid()
        author: dict[str, Any] = {"did": did, "handle": handle, "labels": [],
                                  "createdAt": "2023-04-01T00:00:00.000Z"}
        if display_name is not None:
            author["displayName"] = display_name
        if verified:
            author["verification"] = {"verifications": [], "verifiedStatus": "valid",
                                      "trustedVerifierStatus": "none"}
        record: dict[str, Any] = {"$type": _POST, "text": text, "createdAt": _iso(created)}
        if langs is not None:
            record["langs"] = langs
        view = {"uri": f"at://{did}/{_POST}/{rkey}", "cid": "bafyrei" + secrets.token_hex(26),
                "author": author, "record": record, "replyCount": replies,
                "repostCount": reposts, "likeCount": likes, "quoteCount": quotes,
                "indexedAt": _iso(indexed_at or max(created, datetime.now(UTC))),
                "labels": []}
        self._posts.append(view)
        return view

    def add_raw_post_view(self, view: dict[str, Any], *, sort_at: datetime | None = None,
                          match: str = "") -> None:
        """Index a malformed PostView; ``match`` is the text search should find it by."""
        self._posts.append({**view, "_sort": _iso(sort_at or datetime.now(UTC)),
                            "_match": match})

    def fail_next_search(self, status: int, *, retry_after: int | None = None,
                         reset_in: float | None = None, times: int = 1) -> None:
        """Answer the next ``times`` searches with ``status``; ``reset_in``: ratelimit-reset
        that many seconds from now (epoch seconds, as atproto sends it)."""
        headers: dict[str, str] = {}
        if retry_after is not None:
            headers["Retry-After"] = str(retry_after)
        if reset_in is not None:
            headers.update({"ratelimit-limit": str(_RATE_LIMIT), "ratelimit-remaining": "0",
                            "ratelimit-reset": str(int(time.time() + reset_in + 0.999)),
                            "ratelimit-policy": f"{_RATE_LIMIT};w={_RATE_WINDOW}"})
        self._search_failures.append(_Failure(status, headers, times))

    def expire_tokens(self) -> None:
        """Every access token issued so far now gets ``ExpiredToken``."""
        for token in self._access:
            self._access[token] = False

    async def _search_posts(self, request: web.Request) -> web.Response:
        token = _bearer(request)
        call = SearchRequest(time.monotonic(), dict(request.query), token)
        self.searches.append(call)
        failure = _take(self._search_failures)
        if failure is not None:
            call.status = failure.status
            return _xrpc_error(failure.status, headers=failure.headers)
        if self.accounts is not None:
            if token is None:
                call.status = 401
                return _xrpc_error(401, "Authentication Required")
            if token not in self._access:
                call.status = 401
                return _xrpc_error(401, "Token could not be verified", name="InvalidToken")
            if not self._access[token]:
                call.status = 400
                return _xrpc_error(400, "Token has expired", name="ExpiredToken")
        q = request.query.get("q", "")
        if not q:
            call.status = 400
            return _xrpc_error(400, 'Error: Params must have the property "q"')
        try:
            limit = int(request.query.get("limit", "25"))
            offset = int(request.query.get("cursor", "0"))
            since = _parse_time(request.query["since"]) if "since" in request.query else None
            until = _parse_time(request.query["until"]) if "until" in request.query else None
        except ValueError as exc:
            call.status = 400
            return _xrpc_error(400, f"Error: {exc}")
        if not 1 <= limit <= 100 or request.query.get("sort", "latest") not in ("latest", "top"):
            call.status = 400
            return _xrpc_error(400, "Error: limit must be 1-100, sort latest or top")
        needle = q.strip('"').casefold()
        hits = []
        for view in self._posts:
            sort_at = _sort_at(view)
            text = view.get("_match") if "_match" in view else view["record"]["text"]
            if needle not in str(text).casefold():
                continue
            if (since and sort_at < since) or (until and sort_at >= until):
                continue
            hits.append((sort_at, view))
        hits.sort(key=lambda h: (h[0], h[1].get("uri", "")), reverse=True)
        page = [{k: v for k, v in view.items() if not k.startswith("_")}
                for _, view in hits[offset:offset + limit]]
        body: dict[str, Any] = {"posts": page, "hitsTotal": len(hits)}
        if offset + limit < len(hits):
            body["cursor"] = str(offset + limit)
        return web.json_response(body, headers=_rate_headers())

    # -- sessions ----------------------------------------------------------------------------
    def _issue(self, did: str, handle: str) -> dict[str, Any]:
        access, refresh = "acc-" + secrets.token_hex(8), "ref-" + secrets.token_hex(8)
        self._access[access] = True
        self._refresh.add(refresh)
        return {"accessJwt": access, "refreshJwt": refresh, "handle": handle, "did": did,
                "active": True}

    async def _create_session(self, request: web.Request) -> web.Response:
        try:
            data = await request.json()
        except ValueError:
            return _xrpc_error(400, "Request body must be JSON")
        identifier, password = data.get("identifier"), data.get("password")
        if self.accounts is None or self.accounts.get(identifier) != password:
            return _xrpc_error(401, "Invalid identifier or password",
                               name="AuthenticationRequired")
        self.sessions_created += 1
        return web.json_response(self._issue("did:plc:escucha", str(identifier)))

    async def _refresh_session(self, request: web.Request) -> web.Response:
        token = _bearer(request)
        if token not in self._refresh:
            return _xrpc_error(400, "Token has expired", name="ExpiredToken")
        self._refresh.discard(token)  # refresh tokens are single-use
        self.sessions_refreshed += 1
        return web.json_response(self._issue("did:plc:escucha", "escucha.bsky.social"))


def _take(failures: list[_Failure]) -> _Failure | None:
    if not failures:
        return None
    failure = failures[0]
    failure.remaining -= 1
    if failure.remaining <= 0:
        failures.pop(0)
    return failure


def _sort_at(view: dict[str, Any]) -> datetime:
    if "_sort" in view:
        return _parse_time(view["_sort"])
    created = _parse_time(view["record"]["createdAt"])
    return min(created, _parse_time(view["indexedAt"]))


def _rate_headers() -> dict[str, str]:
    return {"ratelimit-limit": str(_RATE_LIMIT), "ratelimit-remaining": str(_RATE_LIMIT - 1),
            "ratelimit-reset": str(int(time.time()) + _RATE_WINDOW),
            "ratelimit-policy": f"{_RATE_LIMIT};w={_RATE_WINDOW}"}


def _xrpc_error(status: int, message: str | None = None, *, name: str | None = None,
                headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(
        {"error": name or _ERROR_NAMES.get(status, "InternalServerError"),
         "message": message or _MESSAGES.get(status, "Internal Server Error")},
        status=status, headers=headers)


def _bearer(request: web.Request) -> str | None:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    return (value.strip() or None) if scheme.lower() == "bearer" else None
