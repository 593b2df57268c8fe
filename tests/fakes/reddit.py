"""A recording fake of Reddit's OAuth API: a real aiohttp server on 127.0.0.1:0.

It speaks the wire format a Reddit client sees: ``POST /api/v1/access_token`` with HTTP Basic
app credentials and ``grant_type=client_credentials`` or ``password`` -> ``{"access_token",
"token_type": "bearer", "expires_in", "scope"}`` (bad app credentials: 401; bad login: 200
``{"error": "invalid_grant"}``); ``GET /r/{a+b}/new``, ``/r/{a+b}/comments`` and
``/search?q=..&sort=new`` with ``Authorization: bearer`` -> Listings ``{"kind": "Listing",
"data": {"after", "before", "dist", "children": [{"kind": "t3"|"t1", "data": {...}}]}}``,
newest first, paged with ``limit`` (25 by default, at most 100), ``after`` and ``before``;
``&``, ``<``, ``>`` HTML-escaped in text unless ``raw_json=1``; ``X-Ratelimit-Used``/
``-Remaining``/``-Reset`` (seconds left in the window) on every API answer and a 429 when the
window is spent; a 429 for missing or generic User-Agents, as Reddit throttles those.

Both base URLs (token and API) are this one server. Knobs: :meth:`FakeReddit.fail_next`,
:meth:`FakeReddit.revoke_tokens`, ``token_ttl_s``, :meth:`FakeReddit.set_rate_window`,
:meth:`FakeReddit.add_raw` (malformed children).
"""

from __future__ import annotations

import base64
import html
import math
import re
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes._server import LocalServer, serve

__all__ = ["FakeReddit", "RedditRequest"]

_B36 = "0123456789abcdefghijklmnopqrstuvwxyz"


def _base36(n: int) -> str:
    out = ""
    while n:
        n, r = divmod(n, 36)
        out = _B36[r] + out
    return out or "0"


def _slug(title: str) -> str:
    return "_".join(re.findall(r"[a-z0-9]+", title.lower()))[:50] or "post"


@dataclass
class RedditRequest:
    """One request the fake received, refused ones included."""

    method: str
    path: str
    query: dict[str, str]
    at: float  # time.monotonic() on arrival
    user_agent: str | None
    bearer: str | None = None
    basic: tuple[str, str] | None = None  # (user, password) of HTTP Basic auth
    form: dict[str, str] = field(default_factory=dict)
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)  # rate-limit headers answered


@dataclass
class _Entry:
    sort_utc: float
    seq: int
    subreddit: str
    child: dict[str, Any]


class FakeReddit(LocalServer):
    """Reddit's token endpoint and three listings; content is added with ``add_*``."""

    def __init__(self, *, client_id: str = "app-id", client_secret: str = "app-secret",
                 username: str | None = None, password: str | None = None,
                 token_ttl_s: float = 3600.0, rate_limit: int = 1000,
                 window_s: float = 600.0) -> None:
        self.client_id, self.client_secret = client_id, client_secret
        self.username, self.password = username, password
        self.token_ttl_s = token_ttl_s
        self.requests: list[RedditRequest] = []
        self.tokens: dict[str, float] = {}  # token -> monotonic expiry
        self._entries: list[_Entry] = []
        self._seq = 0
        self._clock = float(int(time.time()) - 86_400)
        self._failures: list[tuple[int, float | None]] = []
        self.set_rate_window(rate_limit, window_s)
        self._runner: web.AppRunner | None = None
        self._url: str | None = None

    # -- lifecycle ---------------------------------------------------------------------------
    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/api/v1/access_token", self._token)
        app.router.add_get("/r/{subs}/new", self._new)
        app.router.add_get("/r/{subs}/comments", self._comments)
        app.router.add_get("/search", self._search)
        self._runner, self._url = await serve(app)

    @property
    def url(self) -> str:
        if self._url is None:
            raise RuntimeError("FakeReddit has no URL yet: await start() or use 'async with'")
        return self._url

    # -- content -----------------------------------------------------------------------------
    def _next(self, created_utc: float | None) -> tuple[int, float]:
        self._seq += 1
        if created_utc is None:
            self._clock += 1.0  # one second apart: a strict, realistic order
            created_utc = self._clock
        return self._seq, created_utc

    def add_post(self, subreddit: str = "acme", title: str = "a post", selftext: str = "", *,
                 author: str = "alice", score: int = 1, num_comments: int = 0,
                 created_utc: float | None = None) -> dict[str, Any]:
        seq, utc = self._next(created_utc)
        pid = _base36(10_000_000 + seq)
        permalink = f"/r/{subreddit}/comments/{pid}/{_slug(title)}/"
        data = {
            "approved_at_utc": None, "subreddit": subreddit, "selftext": selftext,
            "author_fullname": f"t2_{_base36(999 + seq)}", "title": title,
            "subreddit_name_prefixed": f"r/{subreddit}", "name": f"t3_{pid}", "ups": score,
            "score": score, "created": utc, "created_utc": utc, "num_comments": num_comments,
            "permalink": permalink, "url": "https://www.reddit.com" + permalink, "id": pid,
            "is_self": True, "over_18": False, "author": author, "link_flair_text": None,
            "subreddit_id": "t5_2qh1i", "selftext_html": None, "domain": f"self.{subreddit}",
        }
        self._entries.append(_Entry(utc, seq, subreddit.lower(), {"kind": "t3", "data": data}))
        return data

    def add_comment(self, post: dict[str, Any], body: str = "a comment", *,
                    author: str = "bob", score: int = 1,
                    created_utc: float | None = None) -> dict[str, Any]:
        seq, utc = self._next(created_utc)
        cid = _base36(50_000_000 + seq)
        data = {
            "subreddit": post["subreddit"], "link_id": post["name"], "parent_id": post["name"],
            "id": cid, "name": f"t1_{cid}", "body": body, "body_html": None, "author": author,
            "score": score, "ups": score, "created": utc, "created_utc": utc,
            "permalink": f"{post['permalink']}{cid}/", "link_title": post["title"],
            "link_permalink": post["url"], "subreddit_name_prefixed": f"r/{post['subreddit']}",
        }
        self._entries.append(_Entry(utc, seq, str(post["subreddit"]).lower(),
                                    {"kind": "t1", "data": data}))
        return data

    def add_raw(self, kind: str, data: dict[str, Any], *, subreddit: str = "acme") -> None:
        """A child exactly as given (e.g. without ``name``), listed as the newest item."""
        seq, utc = self._next(None)
        self._entries.append(_Entry(utc, seq, subreddit.lower(), {"kind": kind, "data": data}))

    # -- knobs -------------------------------------------------------------------------------
    def fail_next(self, status: int, *, retry_after: float | None = None,
                  times: int = 1) -> None:
        """Answer the next ``times`` listing requests with ``status`` (before anything else)."""
        self._failures.extend([(status, retry_after)] * times)

    def revoke_tokens(self) -> None:
        """Forget every issued token: the next listing request gets a 401."""
        self.tokens.clear()

    def set_rate_window(self, limit: int, window_s: float) -> None:
        """Start a fresh rate-limit window of ``limit`` requests lasting ``window_s``."""
        self.rate_limit, self.window_s = limit, window_s
        self._window_end = time.monotonic() + window_s
        self._used = 0

    def listing_requests(self, path_end: str = "") -> list[RedditRequest]:
        return [r for r in self.requests if r.method == "GET" and r.path.endswith(path_end)]

    # -- HTTP --------------------------------------------------------------------------------
    def _record(self, request: web.Request) -> RedditRequest:
        call = RedditRequest(request.method, request.path, dict(request.query),
                             time.monotonic(), request.headers.get("User-Agent"))
        scheme, _, value = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer":
            call.bearer = value.strip()
        elif scheme.lower() == "basic":
            try:
                user, _, pw = base64.b64decode(value.strip()).decode().partition(":")
                call.basic = (user, pw)
            except ValueError:
                pass
        self.requests.append(call)
        return call

    @staticmethod
    def _error(call: RedditRequest, status: int, headers: dict[str, str] | None = None,
               message: str | None = None) -> web.Response:
        call.status = status
        body = {"message": message or {401: "Unauthorized", 429: "Too Many Requests",
                                       500: "Internal Server Error",
                                       503: "Service Unavailable"}.get(status, "Error"),
                "error": status}
        return web.json_response(body, status=status, headers=headers)

    @staticmethod
    def _generic_agent(agent: str | None) -> bool:
        return not agent or agent.startswith(("Python/", "python-requests", "curl/"))

    async def _token(self, request: web.Request) -> web.Response:
        call = self._record(request)
        call.form = {k: str(v) for k, v in (await request.post()).items()}
        if self._generic_agent(call.user_agent):
            return self._error(call, 429)
        if call.basic != (self.client_id, self.client_secret):
            return self._error(call, 401)
        grant = call.form.get("grant_type")
        if grant == "password":
            if (call.form.get("username"), call.form.get("password")) != (
                    self.username, self.password) or self.username is None:
                return web.json_response({"error": "invalid_grant"})
        elif grant != "client_credentials":
            return web.json_response({"error": "unsupported_grant_type"})
        token = secrets.token_urlsafe(24)
        self.tokens[token] = time.monotonic() + self.token_ttl_s
        return web.json_response({"access_token": token, "token_type": "bearer",
                                  "expires_in": self.token_ttl_s, "scope": "*"})

    def _rate_headers(self) -> tuple[dict[str, str], bool]:
        now = time.monotonic()
        if now >= self._window_end:
            self._window_end, self._used = now + self.window_s, 0
        self._used += 1
        over = self._used > self.rate_limit
        remaining = max(0, self.rate_limit - self._used)
        return {"X-Ratelimit-Used": str(min(self._used, self.rate_limit)),
                "X-Ratelimit-Remaining": f"{remaining:.1f}",
                "X-Ratelimit-Reset": str(math.ceil(self._window_end - now))}, over

    def _gate(self, request: web.Request) -> tuple[RedditRequest, web.Response | None,
                                                   dict[str, str]]:
        call = self._record(request)
        if self._generic_agent(call.user_agent):
            return call, self._error(call, 429, message="Too Many Requests: use a "
                                     "descriptive User-Agent"), {}
        if self._failures:
            status, retry_after = self._failures.pop(0)
            headers = {} if retry_after is None else {"Retry-After": f"{retry_after:g}"}
            return call, self._error(call, status, headers), {}
        expiry = self.tokens.get(call.bearer or "")
        if expiry is None or time.monotonic() >= expiry:
            return call, self._error(call, 401, {
                "www-authenticate": 'Bearer realm="reddit", error="invalid_token"'}), {}
        headers, over = self._rate_headers()
        call.headers = headers
        if over:
            return call, self._error(call, 429, headers), headers
        return call, None, headers

    async def _new(self, request: web.Request) -> web.Response:
        return self._answer(request, "t3", request.match_info["subs"])

    async def _comments(self, request: web.Request) -> web.Response:
        return self._answer(request, "t1", request.match_info["subs"])

    async def _search(self, request: web.Request) -> web.Response:
        return self._answer(request, "t3", None, query=request.query.get("q", ""))

    def _answer(self, request: web.Request, kind: str, subs: str | None,
                query: str | None = None) -> web.Response:
        call, refused, headers = self._gate(request)
        if refused is not None:
            return refused
        wanted = {s.lower() for s in subs.split("+")} if subs else None
        terms = [t.strip(' ()"').lower() for t in (query or "").split(" OR ") if t.strip()]
        entries = sorted((e for e in self._entries if e.child["kind"] == kind
                          and (wanted is None or e.subreddit in wanted)
                          and (query is None or self._matches(e, terms))),
                         key=lambda e: (e.sort_utc, e.seq), reverse=True)
        try:
            limit = min(100, max(1, int(request.query.get("limit", "25"))))
        except ValueError:
            limit = 25
        names = [e.child["data"].get("name") for e in entries]
        start, stop = 0, limit
        if (after := request.query.get("after")) is not None:
            start = names.index(after) + 1 if after in names else len(names)
            stop = start + limit
        elif (before := request.query.get("before")) is not None:
            stop = names.index(before) if before in names else 0
            start = max(0, stop - limit)
        page = entries[start:stop]
        escape = request.query.get("raw_json") != "1"
        children = [self._render(e.child, escape) for e in page]
        named = [n for n in names[start:stop] if n]
        data = {"after": named[-1] if stop < len(entries) and named else None,
                "before": named[0] if start > 0 and named else None,
                "dist": len(children), "modhash": "", "geo_filter": "", "children": children}
        call.status = 200
        return web.json_response({"kind": "Listing", "data": data}, headers=headers)

    @staticmethod
    def _matches(entry: _Entry, terms: list[str]) -> bool:
        data = entry.child["data"]
        text = f"{data.get('title', '')} {data.get('selftext', '')}".lower()
        return any(t in text for t in terms)

    @staticmethod
    def _render(child: dict[str, Any], escape: bool) -> dict[str, Any]:
        data = dict(child["data"])
        if escape:  # Reddit's legacy escaping of text fields, undone by raw_json=1
            for key in ("title", "selftext", "body"):
                if isinstance(data.get(key), str):
                    data[key] = html.escape(data[key], quote=False)
        return {"kind": child["kind"], "data": data}
