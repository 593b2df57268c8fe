"""X (Twitter) API v2 filtered stream, with rules kept in sync and gaps filled by recent search.

Protocol. ``GET {api_url}/2/tweets/search/stream`` with ``Authorization: Bearer <token>`` is a
long-lived HTTP response of newline-delimited JSON: one ``{"data": {tweet}, "includes":
{"users": [...]}, "matching_rules": [...]}`` per matching post, a bare ``\\r\\n`` keep-alive
about every 20 s, and ``{"errors": [...]}`` (e.g. ``operational-disconnect``) before X closes
the connection. What the stream delivers is decided by the App's rule set, which this connector
owns: on start it reads ``GET /2/tweets/search/stream/rules``, deletes the rules it does not
want and adds the missing ones (``POST .../rules`` with ``{"delete": {"ids": [...]}}``, then
``{"add": [{"value", "tag"}]}``); equal rules (same value and tag) are left alone. A rule X
refuses is logged, shown as the health's ``last_error`` and not sent again by this process, so
a bad watch query cannot turn into a request loop. One X connector per App: a second one with
other rules would delete the first one's.

Reconnects follow X's documented backoff, applied as the floor of ``SourceError.retry_after``
(``ctx.failed`` waits at least that, jittered above it): network errors and dropped or stalled
streams back off linearly (``network_backoff_step_s`` more per attempt, 250 ms to 16 s), HTTP
errors exponentially (5 s doubling to 320 s), 429 exponentially from 1 min and never before
``x-rate-limit-reset`` (epoch seconds). A stream silent for ``stall_timeout_s`` (no tweet, no
keep-alive) is taken as dead and reconnected.

Cursor and resume. The filtered stream cannot replay what was posted while nobody was
connected (that is the paid backfill). The cursor is ``{"last_id", "last_created_at"}``: the
newest tweet emitted (or, before the first one, when the stream was first connected). After
every (re)connect, before reading the stream, the gap is filled with ``GET
/2/tweets/search/recent?query=(rule) OR (rule)&since_id=<last_id>`` paged by
``meta.next_token`` (``start_time`` instead when there is no tweet id yet). The stream is
already connected then, so nothing falls between the two; overlaps are deduplicated by
``ctx.emit``. The cursor only moves past a backfill once all its pages were emitted, so a
crash half-way re-runs it. Limits: recent search covers the last 7 days only, so an outage
longer than that loses the older part (logged); it is capped at ``backfill_max_pages`` pages
(tweets count against the App's monthly cap); a post made in the seconds before a reconnect
that search has not indexed yet can be missed; a rule using operators that search does not
support makes the backfill fail with a logged error while the stream carries on.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import json
import logging
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
from pydantic import Field, SecretStr, field_validator

from streams.connectors.base import ConnectorContext, SourceError, SourceSettings
from streams.core.records import Mention, RecordError, parse

__all__ = ["XConnector", "XSettings"]

log = logging.getLogger(__name__)

_TWEET_FIELDS = "created_at,lang,public_metrics,author_id,conversation_id,note_tweet"
_USER_FIELDS = "username,name,public_metrics,verified"
# X's codes for "no linguistic content": undefined, media/hashtag/mention/cashtag-only, etc.
_NO_LANGUAGE = {"und", "zxx", "qme", "qam", "qct", "qht", "qst"}
_SEARCH_WINDOW = timedelta(days=7) - timedelta(minutes=5)  # margin for clock skew
_MAX_LINE = 5 * 1024 * 1024


class XSettings(SourceSettings):
    """An X App's filtered stream (API v2, App-only bearer token)."""

    bearer_token: SecretStr = Field(description="App-only OAuth 2.0 bearer token of the X App.")
    api_url: str = Field(default="https://api.x.com", description="Base URL of the X API.")
    rules: dict[str, str] = Field(
        default_factory=dict,
        description="Stream rules, tag -> rule value in X's rule syntax. Empty: one rule "
        "made of the watch terms, quoted and joined with OR.")
    stall_timeout_s: float = Field(default=30.0, gt=0, le=600, description=(
        "Seconds without any byte (X sends a keep-alive every ~20 s) before the stream is "
        "taken as stalled and reconnected."))
    backfill: bool = Field(default=True, description=(
        "After a reconnect or restart, fill the gap with recent search (last 7 days)."))
    backfill_max_pages: int = Field(default=50, ge=1, le=10_000, description=(
        "Most recent-search pages per backfill (each tweet counts against the App's cap)."))
    search_page_size: int = Field(default=100, ge=10, le=100,
                                  description="max_results of each recent-search page.")
    search_query_max_chars: int = Field(default=512, ge=16, le=4096, description=(
        "Longest recent-search query of the App's access level; rules are split over "
        "several queries to fit."))
    request_timeout_s: float = Field(default=30.0, gt=0, le=600,
                                     description="Timeout of the rules and search requests.")
    network_backoff_step_s: float = Field(default=0.25, gt=0, le=600, description=(
        "Network errors: linear backoff, this much more per attempt (X: 250 ms)."))
    network_backoff_max_s: float = Field(default=16.0, gt=0, le=3600,
                                         description="Network errors: longest wait (X: 16 s).")
    http_backoff_base_s: float = Field(default=5.0, gt=0, le=3600, description=(
        "HTTP errors: first wait, doubled per attempt (X: 5 s)."))
    http_backoff_max_s: float = Field(default=320.0, gt=0, le=86400,
                                      description="HTTP errors: longest wait (X: 320 s).")
    rate_limit_backoff_base_s: float = Field(default=60.0, gt=0, le=3600, description=(
        "429: first wait, doubled per attempt (X: 1 min); x-rate-limit-reset wins if later."))
    rate_limit_backoff_max_s: float = Field(default=960.0, gt=0, le=86400,
                                            description="429: longest wait.")

    @field_validator("api_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @field_validator("rules")
    @classmethod
    def _rules(cls, value: dict[str, str]) -> dict[str, str]:
        for tag, rule in value.items():
            if not tag.strip() or not rule.strip():
                raise ValueError("every rule needs a non-empty tag and value, e.g. "
                                 "{'brand': 'acme -is:retweet'}")
        return value


class _Policy:
    """X's reconnect schedule as a floor for ``SourceError.retry_after``."""

    def __init__(self, s: XSettings) -> None:
        self.s = s
        self.network = self.http = self.rate = 0

    def reset(self) -> None:
        self.network = self.http = self.rate = 0

    def network_error(self, message: str) -> SourceError:
        self.network += 1
        floor = min(self.s.network_backoff_max_s, self.s.network_backoff_step_s * self.network)
        return SourceError(message, kind="transport", retry_after=floor)

    def http_error(self, status: int, headers: Mapping[str, str], message: str) -> SourceError:
        if status == 429:
            floor = min(self.s.rate_limit_backoff_max_s,
                        self.s.rate_limit_backoff_base_s * 2 ** min(self.rate, 32))
            self.rate += 1
            reset = {k.lower(): v for k, v in headers.items()}.get("x-rate-limit-reset")
            with contextlib.suppress(ValueError):  # epoch seconds; earlier is pointless
                floor = max(floor, float(reset or 0) - time.time())
            return SourceError(message, kind="rate_limited", retry_after=floor)
        floor = min(self.s.http_backoff_max_s,
                    self.s.http_backoff_base_s * 2 ** min(self.http, 32))
        self.http += 1
        return SourceError(message, kind="server", retry_after=floor)


class _Rejected(Exception):
    """A stream line or tweet that cannot become a Mention; the message is the reason."""


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _terms_rules(terms: list[str]) -> dict[str, str]:
    quoted = sorted({'"' + " ".join(t.replace('"', " ").split()) + '"' for t in terms
                     if t.replace('"', " ").strip()})
    return {"escucha-terms": " OR ".join(quoted)} if quoted else {}


def _pack(values: list[str], limit: int) -> list[str]:
    """OR the rules into as few search queries of at most ``limit`` characters as fit."""
    queries: list[str] = []
    for value in sorted(values):
        part = f"({value})"
        if queries and len(queries[-1]) + 4 + len(part) <= limit:
            queries[-1] += " OR " + part
        else:
            queries.append(part)
    return queries


def _newer(a: str | None, b: str | None) -> bool:
    """Is tweet id ``a`` newer than ``b``? Ids are snowflakes: bigger is later."""
    return a is not None and (b is None or int(a) > int(b))


def _to_mention(tweet: Any, includes: Any) -> Mention:
    if not isinstance(tweet, dict):
        raise _Rejected("'data' is not a tweet object")
    tid = tweet.get("id")
    if not isinstance(tid, str) or not tid.isdigit():
        raise _Rejected(f"tweet id {tid!r} is not a numeric string")
    users = includes.get("users") if isinstance(includes, dict) else None
    author_id = tweet.get("author_id")
    user = next((u for u in users or [] if isinstance(u, dict) and u.get("id") == author_id),
                None)
    if user is not None and isinstance(user.get("username"), str):
        handle = user["username"]
        url = f"https://x.com/{handle}/status/{tid}"
        followers = (user.get("public_metrics") or {}).get("followers_count", 0)
        author = {"handle": handle, "name": user.get("name"), "followers": followers,
                  "verified": bool(user.get("verified"))}
    elif isinstance(author_id, str) and author_id:
        # The user expansion can be missing (suspended author); the id still identifies them.
        url = f"https://x.com/i/web/status/{tid}"
        author = {"handle": author_id}
    else:
        raise _Rejected("tweet has no author_id and no expanded user")
    note = tweet.get("note_tweet")
    text = note.get("text") if isinstance(note, dict) else None
    text = text if isinstance(text, str) else tweet.get("text")
    if not isinstance(text, str):
        raise _Rejected("tweet has no text")
    lang = tweet.get("lang")
    metrics = tweet.get("public_metrics") or {}
    if not isinstance(metrics, dict):
        raise _Rejected("public_metrics is not an object")
    try:
        return parse(Mention, {
            "source": "x", "id": tid, "url": url, "author": author,
            "text": html.unescape(text),  # v2 text escapes &, < and > as HTML entities
            "language": None if not isinstance(lang, str) or lang in _NO_LANGUAGE else lang,
            "created_at": tweet.get("created_at"),
            "engagement": {"likes": metrics.get("like_count", 0),
                           "shares": (metrics.get("retweet_count", 0) or 0)
                           + (metrics.get("quote_count", 0) or 0),
                           "replies": metrics.get("reply_count", 0)}})
    except (RecordError, TypeError) as exc:
        raise _Rejected(str(exc)) from exc


def _problems(body: Any) -> str:
    errors = body.get("errors") if isinstance(body, dict) else None
    parts = []
    for err in errors if isinstance(errors, list) else []:
        if isinstance(err, dict):
            what = err.get("title") or err.get("type") or "error"
            detail = err.get("detail") or err.get("message") or "; ".join(
                str(d) for d in err.get("details") or [])
            value = f" in rule {err['value']!r}" if "value" in err else ""
            parts.append(f"{what}{value}: {detail}".strip(": "))
    if not parts and isinstance(body, dict) and body.get("detail"):
        parts.append(str(body["detail"]))
    return "; ".join(parts)[:800]


class XConnector:
    """Filtered-stream connector; see the module docstring."""

    source = "x"

    def __init__(self, settings: XSettings, *, rules: Mapping[str, str] | None = None) -> None:
        self.settings = settings
        self.name = settings.name
        self._rules = dict(rules) if rules else None
        self._refused: dict[str, str] = {}  # rule value -> X's reason; never re-sent
        self._policy = _Policy(settings)
        self._search_policy = _Policy(settings)

    def wanted_rules(self, terms: list[str]) -> dict[str, str]:
        """tag -> value: the constructor's rules, else the settings', else the watch terms."""
        return self._rules or dict(self.settings.rules) or _terms_rules(terms)

    async def run(self, ctx: ConnectorContext) -> None:
        s = self.settings
        headers = {"Authorization": f"Bearer {s.bearer_token.get_secret_value()}",
                   "User-Agent": "escucha"}
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=s.request_timeout_s)
        async with aiohttp.ClientSession(headers=headers, timeout=timeout) as session:
            active: list[str] | None = None
            while True:
                try:
                    if active is None:
                        active = await self._sync_rules(session, ctx)
                    await self._stream(session, ctx, active)
                except SourceError as exc:
                    await ctx.failed(exc)
                except (aiohttp.ClientError, OSError) as exc:  # refused, reset, DNS
                    await ctx.failed(self._policy.network_error(f"network error: {exc}"))

    # -- HTTP helpers ---------------------------------------------------------------------
    async def _json(self, session: aiohttp.ClientSession, method: str, path: str,
                    policy: _Policy, *, allow_400: bool = False, **kw: Any
                    ) -> tuple[int, Any]:
        """One REST call: ``(status, body)`` for 2xx (and 400 if allowed); else SourceError."""
        url = self.settings.api_url + path
        timeout = aiohttp.ClientTimeout(total=self.settings.request_timeout_s)
        try:
            async with session.request(method, url, timeout=timeout, **kw) as resp:
                raw = await resp.read()
                try:
                    body = json.loads(raw) if raw else {}
                except ValueError:
                    body = None
                if 200 <= resp.status < 300 or (allow_400 and resp.status == 400):
                    if not isinstance(body, dict):
                        raise policy.http_error(resp.status, resp.headers,
                                                f"{method} {path}: answer is not JSON")
                    return resp.status, body
                raise policy.http_error(resp.status, resp.headers, self._status_message(
                    f"{method} {path}", resp.status, body))
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise policy.network_error(f"{method} {path}: {type(exc).__name__}: {exc}") \
                from exc

    @staticmethod
    def _status_message(what: str, status: int, body: Any) -> str:
        hint = {401: " (check bearer_token)", 403: " (the App lacks access to this endpoint)",
                429: " (rate limited)"}.get(status, "")
        return f"{what}: HTTP {status}{hint} {_problems(body)}".strip()

    def _note_error(self, ctx: ConnectorContext, message: str) -> None:
        """A configuration problem worth showing in health without backing off."""
        log.error("connector %s: %s", self.name, message)
        ctx.health.last_error = message[:500]
        ctx.health.last_error_at = time.time()
        ctx.heartbeat()

    # -- rules ----------------------------------------------------------------------------
    async def _sync_rules(self, session: aiohttp.ClientSession, ctx: ConnectorContext
                          ) -> list[str]:
        """Make X's rule set equal to the wanted one; the values now active."""
        path = "/2/tweets/search/stream/rules"
        wanted = {(v, t) for t, v in self.wanted_rules(ctx.terms).items()
                  if v not in self._refused}
        if not wanted:
            log.warning("connector %s: no stream rules (no rules configured, no watch terms):"
                        " the stream will deliver nothing", self.name)
        existing: list[dict[str, Any]] = []
        params: dict[str, str] = {}
        while True:  # only very large rule sets (Enterprise) come in pages
            _, body = await self._json(session, "GET", path, self._policy, params=params)
            existing += [r for r in body.get("data") or [] if isinstance(r, dict)]
            token = (body.get("meta") or {}).get("next_token")
            if not token:
                break
            params["pagination_token"] = str(token)
        stale = [str(r["id"]) for r in existing if (r.get("value"), r.get("tag")) not in wanted]
        kept = {(r.get("value"), r.get("tag")) for r in existing} & wanted
        if stale:  # first, so a value moving to another tag is not refused as a duplicate
            status, body = await self._json(session, "POST", path, self._policy,
                                            allow_400=True, json={"delete": {"ids": stale}})
            if status == 400:
                raise self._policy.http_error(400, {}, f"deleting rules failed: "
                                              f"{_problems(body)}")
        missing = sorted(wanted - kept)
        while missing:
            status, body = await self._json(
                session, "POST", path, self._policy, allow_400=True,
                json={"add": [{"value": v, "tag": t} for v, t in missing]})
            refused = {
                str(err["value"]): _problems({"errors": [err]})
                for err in body.get("errors") or []
                if isinstance(err, dict) and "value" in err
                and "duplicate" not in f"{err.get('type')}{err.get('title')}".lower()}
            if refused:
                self._refused.update(refused)
                self._note_error(ctx, "X refused stream rule(s); fix them in the watch "
                                 "config: " + "; ".join(refused.values()))
            if status != 400:
                break
            if not refused:
                raise self._policy.http_error(400, {}, f"adding rules failed: "
                                              f"{_problems(body)}")
            # X adds all or nothing: send the others again without the refused ones.
            missing = [(v, t) for v, t in missing if v not in refused]
        log.info("connector %s: rules in sync (%d kept, %d deleted, %d added)", self.name,
                 len(kept), len(stale), len(wanted) - len(kept))
        return sorted(v for v, _ in wanted if v not in self._refused)

    # -- the stream -----------------------------------------------------------------------
    async def _stream(self, session: aiohttp.ClientSession, ctx: ConnectorContext,
                      active: list[str]) -> None:
        params = {"tweet.fields": _TWEET_FIELDS, "expansions": "author_id",
                  "user.fields": _USER_FIELDS}
        url = self.settings.api_url + "/2/tweets/search/stream"
        try:
            async with session.get(url, params=params) as resp:
                if resp.status != 200:
                    body = await resp.content.read(64 * 1024)
                    try:
                        problem: Any = json.loads(body)
                    except ValueError:
                        problem = None
                    raise self._policy.http_error(resp.status, resp.headers, self._status_message(
                        "stream", resp.status, problem))
                ctx.ok()
                self._policy.reset()
                if ctx.cursor is None:  # first connect ever: the point backfill starts from
                    await ctx.emit([], cursor={"last_id": None,
                                               "last_created_at": _iso(datetime.now(UTC))})
                elif self.settings.backfill and active:
                    await self._backfill(session, ctx, active)
                await self._read(resp, ctx)
        except (aiohttp.ClientPayloadError, aiohttp.ServerDisconnectedError) as exc:
            raise self._policy.network_error(f"stream dropped: {exc}") from exc

    async def _read(self, resp: aiohttp.ClientResponse, ctx: ConnectorContext) -> None:
        buf = bytearray()
        skipping = False
        while True:
            try:
                async with asyncio.timeout(self.settings.stall_timeout_s):
                    chunk = await resp.content.readany()
            except TimeoutError:
                raise self._policy.network_error(
                    f"stream stalled: no data for {self.settings.stall_timeout_s:g}s") from None
            if not chunk:
                if buf.strip():
                    log.warning("connector %s: dropped a partial line (%d bytes) at the end "
                                "of the stream", self.name, len(buf))
                raise self._policy.network_error("stream closed by X")
            ctx.heartbeat()
            buf += chunk
            if b"\n" not in chunk:
                if len(buf) > _MAX_LINE:
                    if not skipping:
                        await ctx.reject(f"stream line longer than {_MAX_LINE} bytes",
                                         bytes(buf[:4096]))
                    buf.clear()
                    skipping = True
                continue
            *lines, rest = buf.split(b"\n")
            buf = bytearray(rest)
            if skipping:  # the tail of an over-long line
                lines, skipping = lines[1:], False
            await self._lines(ctx, lines)

    async def _lines(self, ctx: ConnectorContext, lines: list[bytearray]) -> None:
        mentions: list[Mention] = []
        disconnect = None
        for line in (bytes(raw).strip() for raw in lines):
            if not line:
                continue  # keep-alive
            try:
                msg = json.loads(line)
            except ValueError as exc:
                await ctx.reject(f"stream line is not valid JSON: {exc}", line)
                continue
            if isinstance(msg, dict) and "data" not in msg and msg.get("errors"):
                disconnect = _problems(msg) or "errors message"
                break
            try:
                if not isinstance(msg, dict) or "data" not in msg:
                    raise _Rejected("stream message has neither 'data' nor 'errors'")
                mentions.append(_to_mention(msg["data"], msg.get("includes")))
            except _Rejected as exc:
                await ctx.reject(f"tweet not usable: {exc}", line)
        if mentions:
            await ctx.emit(mentions, cursor=self._advanced(ctx.cursor, mentions))
        if disconnect is not None:
            raise self._policy.network_error(f"X ended the stream: {disconnect}")

    @staticmethod
    def _advanced(cursor: Any, mentions: list[Mention]) -> dict[str, Any]:
        cur = dict(cursor) if isinstance(cursor, dict) else {}
        for m in mentions:
            if _newer(m.id, cur.get("last_id")):
                cur = {"last_id": m.id, "last_created_at": _iso(m.created_at)}
        return cur

    # -- backfill -------------------------------------------------------------------------
    async def _backfill(self, session: aiohttp.ClientSession, ctx: ConnectorContext,
                        active: list[str]) -> None:
        cursor = ctx.cursor if isinstance(ctx.cursor, dict) else {}
        since_id = cursor.get("last_id")
        try:
            since = datetime.fromisoformat(str(cursor.get("last_created_at")).replace("Z",
                                                                                      "+00:00"))
        except ValueError:
            since = None
        if since is None or datetime.now(UTC) - since > _SEARCH_WINDOW:
            log.warning("connector %s: last tweet is older than recent search's 7 days; "
                        "posts before that are lost", self.name)
            since_id, since = None, None
        got: list[Mention] = []
        for query in _pack(active, self.settings.search_query_max_chars):
            params = {"query": query, "max_results": str(self.settings.search_page_size),
                      "tweet.fields": _TWEET_FIELDS, "expansions": "author_id",
                      "user.fields": _USER_FIELDS}
            if since_id:
                params["since_id"] = since_id
            elif since is not None:
                params["start_time"] = _iso(since)
            pages = 0
            while True:
                status, body = await self._json(session, "GET", "/2/tweets/search/recent",
                                                self._search_policy, allow_400=True,
                                                params=params)
                if status == 400:
                    problem = _problems(body)
                    if "since_id" in params and "since_id" in problem:
                        # Older than the search window after all: take what the window has.
                        log.warning("connector %s: %s; backfilling the last 7 days instead",
                                    self.name, problem)
                        del params["since_id"]
                        continue
                    self._note_error(ctx, f"backfill skipped, recent search refused {query!r}: "
                                     f"{problem}")
                    return
                page_mentions = []
                for tweet in body.get("data") or []:
                    try:
                        page_mentions.append(_to_mention(tweet, body.get("includes")))
                    except _Rejected as exc:
                        await ctx.reject(f"tweet not usable: {exc}", json.dumps(tweet))
                # No cursor yet: until every page is in, a crash must re-run this backfill.
                await ctx.emit(page_mentions)
                got += page_mentions
                pages += 1
                token = (body.get("meta") or {}).get("next_token")
                if not token:
                    break
                if pages >= self.settings.backfill_max_pages:
                    log.warning("connector %s: backfill stopped after %d pages; older posts "
                                "of the gap are skipped", self.name, pages)
                    break
                params["next_token"] = token
        self._search_policy.reset()
        log.info("connector %s: backfill found %d posts", self.name, len(got))
        if got:
            await ctx.emit([], cursor=self._advanced(cursor, got))
