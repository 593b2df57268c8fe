"""A recording fake of the Algolia Hacker News Search API on 127.0.0.1:0.

``GET /api/v1/search_by_date`` answers like hn.algolia.com: hits sorted newest first,
filtered by ``query`` (every word must occur in the title, url, author, story or comment
text, case-insensitively), ``tags`` (comma = AND, ``(a,b)`` = OR, against each hit's
``_tags``) and ``numericFilters`` (``created_at_i>=N,created_at_i<=M``, ``points>N`` ...,
ANDed), paged with ``hitsPerPage`` (max 1000) and 0-based ``page``. The envelope is Algolia's:
``hits``, ``nbHits``, ``page``, ``nbPages``, ``hitsPerPage``, ``exhaustiveNbHits``, ``query``,
``params``, ``processingTimeMS``. Like Algolia, paging stops after ``pagination_limit`` hits
(1000 there): ``nbPages`` is capped, ``nbHits`` is not. Bad parameters get Algolia's
``{"message", "status": 400}``.

Knobs: ``fail_next`` (429/5xx with ``Retry-After``), ``add_raw`` (any JSON as a hit, e.g.
one without ``objectID``), ``pagination_limit``. Every request is recorded with its query
parameters and arrival time.
"""

from __future__ import annotations

import json
import math
import operator
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from tests.fakes._server import LocalServer, serve

__all__ = ["FakeHackerNews", "HNRequest"]

_OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge, "<=": operator.le, "!=": operator.ne,
    ">": operator.gt, "<": operator.lt, "=": operator.eq,
}
_NUMERIC = re.compile(r"^\s*([a-z_]+)\s*(>=|<=|!=|>|<|=)\s*(-?\d+(?:\.\d+)?)\s*$")
_SEARCHED = ("title", "url", "author", "story_text", "comment_text", "story_title")


@dataclass
class HNRequest:
    """One request the fake received."""

    path: str
    params: dict[str, str]
    status: int
    at: float  # time.monotonic()


@dataclass
class _Failure:
    status: int
    retry_after: int | None
    remaining: int


class _BadParams(Exception):
    pass


def _iso(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _split_top(text: str) -> list[str]:
    parts, depth, cur = [], 0, []
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return [p.strip() for p in parts if p.strip()]


def _tag_filter(spec: str) -> Callable[[dict[str, Any]], bool]:
    groups: list[set[str]] = []
    for part in _split_top(spec):
        if part.startswith("(") and part.endswith(")"):
            groups.append({t.strip() for t in part[1:-1].split(",") if t.strip()})
        elif "(" in part or ")" in part:
            raise _BadParams(f"invalid tags: {spec}")
        else:
            groups.append({part})

    def match(hit: dict[str, Any]) -> bool:
        tags = set(hit.get("_tags") or [])
        return all(tags & group for group in groups)

    return match


def _numeric_filter(spec: str) -> Callable[[dict[str, Any]], bool]:
    tests = []
    for part in spec.split(","):
        if not part.strip():
            continue
        m = _NUMERIC.match(part)
        if m is None:
            raise _BadParams(f"invalid numericFilters: {part}")
        tests.append((m.group(1), _OPS[m.group(2)], float(m.group(3))))

    def match(hit: dict[str, Any]) -> bool:
        for attr, op, value in tests:
            have = hit.get(attr)
            if not isinstance(have, int | float) or not op(have, value):
                return False
        return True

    return match


def _query_filter(query: str) -> Callable[[dict[str, Any]], bool]:
    words = query.lower().split()

    def match(hit: dict[str, Any]) -> bool:
        hay = " ".join(str(hit.get(k) or "") for k in _SEARCHED).lower()
        return all(w in hay for w in words)

    return match


class FakeHackerNews(LocalServer):
    """The HN Search API's ``search_by_date`` on a loopback port; see the module docstring."""

    def __init__(self, *, pagination_limit: int = 1000) -> None:
        self.pagination_limit = pagination_limit
        self.requests: list[HNRequest] = []
        self.hits: list[dict[str, Any]] = []
        self._failures: list[_Failure] = []
        self._next_id = 40_000_000
        self._runner: web.AppRunner | None = None
        self._url: str | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/api/v1/search_by_date", self._search)
        self._runner, self._url = await serve(app)

    @property
    def url(self) -> str:
        if self._url is None:
            raise RuntimeError("FakeHackerNews has no URL yet: use 'async with'")
        return self._url

    # -- scripting ---------------------------------------------------------------------------
    def _id(self) -> int:
        self._next_id += 1
        return self._next_id

    def add_story(self, title: str, *, author: str = "pg", created_at_i: int | None = None,
                  url: str | None = None, story_text: str | None = None, points: int = 1,
                  num_comments: int = 0) -> dict[str, Any]:
        """A story as Algolia indexes it; returns the hit."""
        oid = self._id()
        ts = int(time.time()) if created_at_i is None else created_at_i
        hit = {
            "_tags": ["story", f"author_{author}", f"story_{oid}"],
            "author": author, "children": [], "created_at": _iso(ts), "created_at_i": ts,
            "num_comments": num_comments, "objectID": str(oid), "points": points,
            "story_id": oid, "title": title, "updated_at": _iso(ts), "url": url,
        }
        if story_text is not None:
            hit["story_text"] = story_text
        self.hits.append(hit)
        return hit

    def add_comment(self, text: str, *, story: dict[str, Any], author: str = "dang",
                    created_at_i: int | None = None) -> dict[str, Any]:
        """A comment (HTML ``text``) on ``story``; returns the hit."""
        oid = self._id()
        ts = int(time.time()) if created_at_i is None else created_at_i
        hit = {
            "_tags": ["comment", f"author_{author}", f"story_{story['story_id']}"],
            "author": author, "comment_text": text, "created_at": _iso(ts),
            "created_at_i": ts, "objectID": str(oid), "parent_id": story["story_id"],
            "story_id": story["story_id"], "story_title": story.get("title"),
            "story_url": story.get("url"), "updated_at": _iso(ts),
        }
        self.hits.append(hit)
        return hit

    def add_raw(self, hit: dict[str, Any]) -> dict[str, Any]:
        """Index ``hit`` as given (e.g. without an objectID)."""
        self.hits.append(hit)
        return hit

    def fail_next(self, status: int, *, retry_after: int | None = None, times: int = 1) -> None:
        self._failures.append(_Failure(status, retry_after, times))

    # -- HTTP --------------------------------------------------------------------------------
    async def _search(self, request: web.Request) -> web.Response:
        params = dict(request.query)
        call = HNRequest(request.path, params, 200, time.monotonic())
        self.requests.append(call)
        if self._failures:
            failure = self._failures[0]
            failure.remaining -= 1
            if failure.remaining == 0:
                self._failures.pop(0)
            call.status = failure.status
            headers = {} if failure.retry_after is None else {
                "Retry-After": str(failure.retry_after)}
            return web.json_response({"message": "error", "status": failure.status},
                                     status=failure.status, headers=headers)
        started = time.perf_counter()
        try:
            body = self._answer(params)
        except _BadParams as exc:
            call.status = 400
            return web.json_response({"message": str(exc), "status": 400}, status=400)
        body["processingTimeMS"] = int((time.perf_counter() - started) * 1000)
        return web.Response(text=json.dumps(body), content_type="application/json")

    def _answer(self, params: dict[str, str]) -> dict[str, Any]:
        try:
            per_page = int(params.get("hitsPerPage", "20"))
            page = int(params.get("page", "0"))
        except ValueError:
            raise _BadParams("hitsPerPage and page must be integers") from None
        if not 1 <= per_page <= 1000 or page < 0:
            raise _BadParams("hitsPerPage must be 1..1000 and page >= 0")
        query = params.get("query", "")
        tests = [_query_filter(query)]
        if params.get("tags"):
            tests.append(_tag_filter(params["tags"]))
        if params.get("numericFilters"):
            tests.append(_numeric_filter(params["numericFilters"]))
        matched = [h for h in self.hits if all(t(h) for t in tests)]
        matched.sort(key=lambda h: (h.get("created_at_i") or 0, str(h.get("objectID"))),
                     reverse=True)
        reachable = matched[:self.pagination_limit]
        nb_pages = math.ceil(len(reachable) / per_page)
        hits = reachable[page * per_page:(page + 1) * per_page]
        return {
            "exhaustive": {"nbHits": True, "typo": True}, "exhaustiveNbHits": True,
            "exhaustiveTypo": True, "hits": hits, "hitsPerPage": per_page,
            "nbHits": len(matched), "nbPages": nb_pages, "page": page,
            "params": urlencode(params), "query": query,
        }
