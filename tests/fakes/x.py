"""A recording fake of the X API v2 filtered stream, its rules and recent search (127.0.0.1:0).

Wire format as X documents it (docs.x.com, "Filtered stream" and "Recent search"):

- ``GET /2/tweets/search/stream``: chunked newline-delimited JSON, ``\\r\\n`` after each
  ``{"data", "includes": {"users"}, "matching_rules": [{"id", "tag"}]}`` and as keep-alive;
  only posts made while connected that match a rule; ``{"errors": [...]}`` before an
  operational disconnect. Fields follow ``tweet.fields`` / ``user.fields`` / ``expansions``
  (``id``, ``text``, ``edit_history_tweet_ids`` always; ``id``, ``name``, ``username``).
- ``GET|POST /2/tweets/search/stream/rules``: ``{"data": [{"id", "value", "tag"}], "meta":
  {"sent", "result_count"}}``; a POST body holds either ``add`` or ``delete``; ``meta.summary``
  counts created/not_created/valid/invalid or deleted/not_deleted; an invalid rule fails the
  whole add with 400 and an ``invalid-rules`` problem per rule; an existing value gives a
  ``DuplicateRule`` problem.
- ``GET /2/tweets/search/recent``: newest first, ``since_id``/``start_time``, ``max_results``
  10..100, ``meta.next_token``; a ``since_id`` older than 7 days is refused with X's message.
- Bearer auth, RFC 7807 problems, ``x-rate-limit-*`` headers on 429.

Rule matching is deliberately simple: a post matches when its text contains any quoted phrase
or bare word of the rule (operators with ``:`` and ``-negations`` are ignored).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import re
import time
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from tests.fakes._server import LocalServer, serve

__all__ = ["FakeX", "XRequest"]

_EPOCH_MS = 1288834974657  # X's snowflake epoch
_PROBLEM = "https://api.twitter.com/2/problems/"
_TWEET_DEFAULT = {"id", "text", "edit_history_tweet_ids"}
_USER_DEFAULT = {"id", "name", "username"}
_STATUS_TITLE = {400: "Invalid Request", 401: "Unauthorized", 403: "Forbidden",
                 429: "Too Many Requests", 500: "Internal Server Error",
                 502: "Bad Gateway", 503: "Service Unavailable"}
_CLOSE = b""


@dataclass
class XRequest:
    """One request the fake received (refused ones included)."""

    method: str
    path: str
    query: dict[str, str]
    body: Any
    token: str | None
    status: int = 200
    at: float = field(default_factory=time.time)
    headers: dict[str, str] = field(default_factory=dict)  # headers the fake answered with


@dataclass
class _Failure:
    status: int
    retry_after: int | None
    reset_in: float | None
    remaining: int


@dataclass
class _Conn:
    queue: asyncio.Queue[bytes]
    fields: dict[str, set[str]]
    silent: bool = False


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + \
        f"{int(ts * 1000) % 1000:03d}Z"


def _terms(query: str) -> list[str]:
    terms = []
    for quoted, bare in re.findall(r'"([^"]*)"|([^\s()"]+)', query):
        word = quoted or bare
        if quoted or (word not in ("OR", "AND") and ":" not in word
                      and not word.startswith("-")):
            terms.append(word.lower())
    return terms


def _matches(query: str, text: str) -> bool:
    terms = _terms(query)
    return not terms or any(t in text.lower() for t in terms)


def _invalid(value: str) -> str | None:
    if not value.strip():
        return "Rule must not be empty"
    if len(value) > 512:
        return "Rules must be 512 characters or less"
    depth = 0
    for ch in value.replace('\\"', ""):
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if depth < 0:
            break
    if depth:
        return "Unbalanced parentheses"
    if value.count('"') % 2:
        return "Unterminated quoted phrase"
    return None


class FakeX(LocalServer):
    """X's filtered stream, rules and recent search on a loopback port."""

    def __init__(self, *, token: str = "x-test-token", keepalive_s: float = 0.2) -> None:
        self.token = token
        self.keepalive_s = keepalive_s
        self.rules: dict[str, dict[str, str]] = {}  # id -> {"id", "value", "tag"}
        self.posts: list[tuple[dict[str, Any], dict[str, Any]]] = []  # (tweet, user), in order
        self.requests: list[XRequest] = []
        self.invalid_values: set[str] = set()
        self.keepalives_sent = 0
        self.opened = 0  # stream connections answered with 200, stalled ones included
        self._ids = itertools.count(1)
        self._seq = itertools.count()
        self._conns: list[_Conn] = []
        self._failures: dict[str, list[_Failure]] = {}
        self._drop_next = False
        self._stall_next = False
        self._url: str | None = None

    # -- lifecycle -------------------------------------------------------------------------
    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/2/tweets/search/stream", self._stream)
        app.router.add_get("/2/tweets/search/stream/rules", self._get_rules)
        app.router.add_post("/2/tweets/search/stream/rules", self._post_rules)
        app.router.add_get("/2/tweets/search/recent", self._search)
        self._runner, self._url = await serve(app)

    async def stop(self) -> None:
        for conn in list(self._conns):
            conn.queue.put_nowait(_CLOSE)
        await super().stop()

    @property
    def url(self) -> str:
        if self._url is None:
            raise RuntimeError("FakeX is not started: use 'async with FakeX() as x'")
        return self._url

    # -- scripting -------------------------------------------------------------------------
    def add_rule(self, value: str, tag: str | None = None) -> str:
        """Put a rule in the App's rule set as if added earlier; its id."""
        rid = str(1_500_000_000_000_000_000 + next(self._ids))
        self.rules[rid] = {"id": rid, "value": value} | ({"tag": tag} if tag else {})
        return rid

    def post(self, text: str, *, username: str = "alice", name: str | None = "Alice",
             followers: int = 10, verified: bool = False, lang: str = "en",
             likes: int = 0, retweets: int = 0, quotes: int = 0, replies: int = 0,
             age_s: float = 0.0) -> dict[str, Any]:
        """Publish a post: stored for search, streamed to connected clients it matches."""
        now = time.time() - age_s
        tid = str(((int(now * 1000) - _EPOCH_MS) << 22) | (next(self._seq) % 4096))
        uid = str(zlib.crc32(username.encode()) + 10**12)
        user = {"id": uid, "username": username, "name": name, "verified": verified,
                "public_metrics": {"followers_count": followers, "following_count": 1,
                                   "tweet_count": 5, "listed_count": 0}}
        tweet = {"id": tid, "text": text, "author_id": uid, "created_at": _iso(now),
                 "lang": lang, "conversation_id": tid, "edit_history_tweet_ids": [tid],
                 "public_metrics": {"retweet_count": retweets, "reply_count": replies,
                                    "like_count": likes, "quote_count": quotes,
                                    "bookmark_count": 0, "impression_count": 100}}
        self.posts.append((tweet, user))
        matched = [{"id": r["id"], "tag": r.get("tag", "")} for r in self.rules.values()
                   if _matches(r["value"], text)]
        if matched:
            for conn in self._live():
                line = self._line(conn, tweet, user, matched)
                if self._drop_next:  # half a line, then the connection dies
                    self._drop_next = False
                    conn.queue.put_nowait(line[: len(line) // 2])
                    conn.queue.put_nowait(_CLOSE)
                    self._conns.remove(conn)
                else:
                    conn.queue.put_nowait(line)
        return tweet

    def send_raw(self, line: bytes) -> None:
        """Write bytes as they are to every connected (non-stalled) stream."""
        for conn in self._live():
            conn.queue.put_nowait(line)

    def disconnect(self) -> None:
        """X's operational disconnect: an errors message, then the connection closes."""
        msg = {"errors": [{"title": "operational-disconnect",
                           "disconnect_type": "UpstreamOperationalDisconnect",
                           "detail": "This stream has been disconnected upstream for "
                                     "operational reasons.",
                           "type": _PROBLEM + "operational-disconnect"}]}
        for conn in self._live():
            conn.queue.put_nowait(json.dumps(msg).encode() + b"\r\n")
            conn.queue.put_nowait(_CLOSE)
            self._conns.remove(conn)

    def drop_next(self) -> None:
        """The next streamed post is cut half-way and the connection aborted."""
        self._drop_next = True

    def stall_next(self) -> None:
        """The next stream connection sends nothing at all (not even keep-alives)."""
        self._stall_next = True

    def fail_next(self, endpoint: str, status: int, *, retry_after: int | None = None,
                  reset_in: float | None = None, times: int = 1) -> None:
        """Answer the next ``times`` requests to ``endpoint`` ("stream", "rules", "search")
        with ``status``; ``reset_in`` sets ``x-rate-limit-reset`` that many seconds ahead."""
        self._failures.setdefault(endpoint, []).append(
            _Failure(status, retry_after, reset_in, times))

    def calls(self, path_end: str, method: str = "GET") -> list[XRequest]:
        return [r for r in self.requests if r.path.endswith(path_end) and r.method == method]

    @property
    def stream_requests(self) -> list[XRequest]:
        return self.calls("/stream")

    @property
    def search_requests(self) -> list[XRequest]:
        return self.calls("/recent")

    @property
    def connected(self) -> int:
        """Open, non-stalled stream connections (a client that left is noticed at the next
        keep-alive)."""
        return len(self._live())

    # -- helpers ---------------------------------------------------------------------------
    def _live(self) -> list[_Conn]:
        return [c for c in self._conns if not c.silent]

    @staticmethod
    def _fields(query: Any) -> dict[str, set[str]]:
        def split(key: str) -> set[str]:
            return {f for f in query.get(key, "").split(",") if f}
        return {"tweet": _TWEET_DEFAULT | split("tweet.fields"),
                "user": _USER_DEFAULT | split("user.fields"),
                "expansions": split("expansions")}

    @staticmethod
    def _shape(fields: dict[str, set[str]], tweets: list[dict[str, Any]],
               users: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        data = [{k: v for k, v in t.items() if k in fields["tweet"]} for t in tweets]
        includes: dict[str, Any] = {}
        if "author_id" in fields["expansions"]:
            unique = {u["id"]: u for u in users}
            includes["users"] = [{k: v for k, v in u.items() if k in fields["user"]}
                                 for u in unique.values()]
        return data, includes

    def _line(self, conn: _Conn, tweet: dict[str, Any], user: dict[str, Any],
              matched: list[dict[str, str]]) -> bytes:
        data, includes = self._shape(conn.fields, [tweet], [user])
        msg: dict[str, Any] = {"data": data[0]}
        if includes:
            msg["includes"] = includes
        msg["matching_rules"] = matched
        return json.dumps(msg).encode() + b"\r\n"

    def _record(self, request: web.Request, body: Any = None) -> XRequest:
        scheme, _, value = request.headers.get("Authorization", "").partition(" ")
        call = XRequest(request.method, request.path, dict(request.query), body,
                        value.strip() if scheme.lower() == "bearer" else None)
        self.requests.append(call)
        return call

    def _problem(self, call: XRequest, status: int, body: dict[str, Any] | None = None,
                 headers: dict[str, str] | None = None) -> web.Response:
        call.status = status
        call.headers = headers or {}
        title = _STATUS_TITLE.get(status, "Error")
        return web.json_response(body or {"title": title, "detail": title,
                                          "type": "about:blank", "status": status},
                                 status=status, headers=headers)

    def _refuse(self, call: XRequest, endpoint: str) -> web.Response | None:
        """The scripted failure or the auth check, if either applies."""
        queue = self._failures.get(endpoint) or []
        if queue:
            failure = queue[0]
            failure.remaining -= 1
            if failure.remaining == 0:
                queue.pop(0)
            headers = {}
            if failure.retry_after is not None:
                headers["Retry-After"] = str(failure.retry_after)
            if failure.reset_in is not None:
                headers.update({"x-rate-limit-limit": "50", "x-rate-limit-remaining": "0",
                                "x-rate-limit-reset": str(int(time.time() + failure.reset_in))})
            body = None
            if failure.status == 429 and endpoint == "stream":
                body = {"title": "ConnectionException", "connection_issue": "TooManyConnections",
                        "detail": "This stream is currently at the maximum allowed connection "
                                  "limit.", "type": _PROBLEM + "streaming-connection"}
            return self._problem(call, failure.status, body, headers)
        if call.token != self.token:
            return self._problem(call, 401)
        return None

    def _invalid_request(self, call: XRequest, message: str,
                         parameters: dict[str, list[str]] | None = None) -> web.Response:
        return self._problem(call, 400, {
            "errors": [{"parameters": parameters or {}, "message": message}],
            "title": "Invalid Request", "detail": "One or more parameters to your request "
            "was invalid.", "type": _PROBLEM + "invalid-request"})

    # -- HTTP ------------------------------------------------------------------------------
    async def _stream(self, request: web.Request) -> web.StreamResponse:
        call = self._record(request)
        refused = self._refuse(call, "stream")
        if refused is not None:
            return refused
        resp = web.StreamResponse(headers={"Content-Type": "application/json; charset=utf-8"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        conn = _Conn(asyncio.Queue(), self._fields(request.query), silent=self._stall_next)
        self._stall_next = False
        self._conns.append(conn)
        self.opened += 1
        try:
            while True:
                try:
                    item = await asyncio.wait_for(conn.queue.get(), self.keepalive_s)
                except TimeoutError:
                    if conn.silent:
                        continue
                    item = b"\r\n"
                    self.keepalives_sent += 1
                if item == _CLOSE:
                    break
                await resp.write(item)
                if item and not item.endswith(b"\n"):  # a cut line: die without a last chunk
                    await asyncio.sleep(0.05)
                    if request.transport is not None:
                        request.transport.abort()
                    return resp
        except (ConnectionResetError, asyncio.CancelledError):
            return resp
        finally:
            with contextlib.suppress(ValueError):
                self._conns.remove(conn)
        with contextlib.suppress(ConnectionResetError):
            await resp.write_eof()
        return resp

    async def _get_rules(self, request: web.Request) -> web.Response:
        call = self._record(request)
        refused = self._refuse(call, "rules")
        if refused is not None:
            return refused
        sent = _iso(time.time())
        rules = list(self.rules.values())
        body: dict[str, Any] = {"meta": {"sent": sent, "result_count": len(rules)}}
        if rules:
            body = {"data": rules} | body
        return web.json_response(body)

    async def _post_rules(self, request: web.Request) -> web.Response:
        try:
            payload = json.loads(await request.read())
        except ValueError:
            payload = None
        call = self._record(request, payload)
        refused = self._refuse(call, "rules")
        if refused is not None:
            return refused
        sent = _iso(time.time())
        if not isinstance(payload, dict) or len({"add", "delete"} & payload.keys()) != 1:
            return self._invalid_request(call, "Request body must hold either 'add' or "
                                         "'delete'")
        if "delete" in payload:
            ids = (payload["delete"] or {}).get("ids") or []
            gone = [i for i in ids if self.rules.pop(str(i), None) is not None]
            return web.json_response({"meta": {"sent": sent, "summary": {
                "deleted": len(gone), "not_deleted": len(ids) - len(gone)}}})
        adds = payload["add"] if isinstance(payload["add"], list) else []
        errors = []
        for rule in adds:
            value = str(rule.get("value", ""))
            why = "Rule is invalid" if value in self.invalid_values else _invalid(value)
            if why:
                errors.append({"value": value, "details": [why], "title": "UnprocessableEntity",
                               "type": _PROBLEM + "invalid-rules"})
        if errors:  # all or nothing
            return self._problem(call, 400, {"errors": errors, "meta": {"sent": sent, "summary": {
                "created": 0, "not_created": len(adds), "valid": len(adds) - len(errors),
                "invalid": len(errors)}}})
        created, dups = [], []
        for rule in adds:
            value = str(rule["value"])
            same = next((r for r in self.rules.values() if r["value"] == value), None)
            if same is not None:
                dups.append({"value": value, "id": same["id"], "title": "DuplicateRule",
                             "type": _PROBLEM + "duplicate-rules"})
                continue
            rid = self.add_rule(value, rule.get("tag"))
            created.append(self.rules[rid])
        body: dict[str, Any] = {"meta": {"sent": sent, "summary": {
            "created": len(created), "not_created": len(dups), "valid": len(adds),
            "invalid": 0}}}
        if created:
            body["data"] = created
        if dups:
            body["errors"] = dups
        return web.json_response(body, status=201 if created else 200)

    async def _search(self, request: web.Request) -> web.Response:
        call = self._record(request)
        refused = self._refuse(call, "search")
        if refused is not None:
            return refused
        q = request.query
        query = q.get("query", "")
        if not query:
            return self._invalid_request(call, "The `query` query parameter can not be empty",
                                         {"query": [""]})
        try:
            size = int(q.get("max_results", "10"))
        except ValueError:
            size = 0
        if not 10 <= size <= 100:
            return self._invalid_request(call, "The `max_results` query parameter value "
                                         f"[{q.get('max_results')}] is not between 10 and 100",
                                         {"max_results": [q.get("max_results", "")]})
        window = time.time() - 7 * 86400
        posts = [(t, u) for t, u in reversed(self.posts)
                 if datetime.fromisoformat(t["created_at"].replace("Z", "+00:00")).timestamp()
                 >= window and _matches(query, t["text"])]
        if "since_id" in q:
            since = q["since_id"]
            floor = ((int(window * 1000) - _EPOCH_MS) << 22)
            if not since.isdigit() or int(since) < floor:
                first = datetime.fromtimestamp(window, UTC).strftime("%Y-%m-%dT%H:%MZ")
                return self._invalid_request(
                    call, f"Invalid 'since_id':'{since}'. 'since_id' must be a tweet id "
                    f"created after {first}. Please use a 'since_id' that is larger than "
                    f"{floor}", {"since_id": [since]})
            posts = [(t, u) for t, u in posts if int(t["id"]) > int(since)]
        if "start_time" in q:
            start = datetime.fromisoformat(q["start_time"].replace("Z", "+00:00"))
            posts = [(t, u) for t, u in posts
                     if datetime.fromisoformat(t["created_at"].replace("Z", "+00:00")) >= start]
        offset = int(base64.b32decode(q["next_token"]).decode()) if "next_token" in q else 0
        page = posts[offset:offset + size]
        meta: dict[str, Any] = {"result_count": len(page)}
        body: dict[str, Any] = {}
        if page:
            data, includes = self._shape(self._fields(q), [t for t, _ in page],
                                         [u for _, u in page])
            body["data"] = data
            if includes:
                body["includes"] = includes
            meta |= {"newest_id": page[0][0]["id"], "oldest_id": page[-1][0]["id"]}
        if offset + size < len(posts):
            meta["next_token"] = base64.b32encode(str(offset + size).encode()).decode()
        body["meta"] = meta
        return web.json_response(body)
