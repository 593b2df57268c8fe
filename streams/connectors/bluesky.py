"""Bluesky: the Jetstream firehose (default) or polled ``app.bsky.feed.searchPosts``.

**mode "jetstream"** opens a WebSocket to ``{jetstream_url}/subscribe?wantedCollections=
app.bsky.feed.post`` (https://github.com/bluesky-social/jetstream, uncompressed JSON). Each
text frame is one event ``{"did", "time_us", "kind": "commit"|"identity"|"account", ...}``;
only ``commit`` events with ``operation: "create"`` on ``app.bsky.feed.post`` become mentions
(updates and deletes are skipped: a mention is what was said when it was said). The firehose
carries every public post of the network, so posts are kept only when their folded text
(case- and accent-insensitive, :func:`streams.core.query.fold`) contains one of ``keywords`` or,
if none are set, one of the watch terms (``ctx.terms``); one Aho-Corasick pass per post
does that whatever the number of terms. The cursor is ``{"time_us": N}``, the Jetstream time
of the last processed event (matched or not): stored with every emitted mention, and every
``cursor_save_interval_s`` while nothing matches. A (re)connect asks for ``cursor = time_us -
rewind_s``: Jetstream's README advises rewinding a few seconds for gapless playback, and the
posts replayed twice are dropped by the context's (source, id) dedup.

Jetstream sends no handle, name or follower count, only the author's DID: ``Author.handle``
is the DID (``did:plc:...``), which stays valid when the handle changes; the post URL
``https://bsky.app/profile/<did>/post/<rkey>`` resolves with a DID too.

**mode "search"** polls ``GET {appview_url}/xrpc/app.bsky.feed.searchPosts?q=<term>&sort=
latest&since=<time>&limit=&cursor=`` once per term every ``poll_interval_s``, following
``cursor`` through the pages. The cursor is ``{"search": {term: newest sortAt seen}}``
(sortAt: the earlier of createdAt and indexedAt, what ``since`` filters on); the next poll
asks from that minus ``overlap_s``, since posts reach the index late. Bluesky's public
AppView refuses unauthenticated search at times (403): with ``identifier`` and
``app_password`` the connector logs in to ``pds_url`` (``com.atproto.server.createSession``,
refreshed on ``ExpiredToken``) and searches through the PDS, which proxies to the AppView.

429 answers wait at least ``Retry-After`` or atproto's ``ratelimit-reset`` (epoch seconds).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import ahocorasick
import aiohttp
from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator

from streams.connectors.base import (
    ConnectorContext,
    SourceError,
    SourceSettings,
    retry_after_seconds,
)
from streams.core.query import fold
from streams.core.records import Author, Engagement, Mention

__all__ = ["BlueskyConnector", "BlueskySettings"]

log = logging.getLogger(__name__)

_POST = "app.bsky.feed.post"
_DID = re.compile(r"did:[a-z]+:[A-Za-z0-9._:%-]{1,2000}")
_RKEY = re.compile(r"[A-Za-z0-9._:~-]{1,512}")
_URI = re.compile(r"at://(did:[a-z]+:[A-Za-z0-9._:%-]+)/app\.bsky\.feed\.post/([A-Za-z0-9._:~-]+)")
_LANG = re.compile(r"[A-Za-z]{2,3}")
_EXPIRED = ("ExpiredToken", "InvalidToken")


class BlueskySettings(SourceSettings):
    """One Bluesky connector: the firehose, or search polling."""

    mode: Literal["jetstream", "search"] = Field(
        default="jetstream", description="'jetstream': the live firehose, filtered here; "
        "'search': poll app.bsky.feed.searchPosts per keyword.")
    keywords: tuple[str, ...] = Field(
        default=(), description="Words or phrases to keep (firehose) or search for; empty: "
        "every watch's terms.")
    match_all: bool = Field(
        default=False, description="Firehose only: keep every post when no keyword or watch "
        "term is set (a flood: demos and load tests).")
    jetstream_url: str = Field(
        default="wss://jetstream2.us-east.bsky.network",
        description="Jetstream instance, without /subscribe.")
    rewind_s: float = Field(default=5.0, ge=0, le=3600,
                            description="Seconds to rewind the cursor on every reconnect.")
    cursor_save_interval_s: float = Field(
        default=5.0, gt=0, le=3600,
        description="Store the firehose position at most this often while nothing matches.")
    idle_timeout_s: float = Field(
        default=60.0, gt=0, le=3600,
        description="Reconnect when the firehose sends nothing for this long.")
    appview_url: str = Field(default="https://public.api.bsky.app",
                             description="AppView for unauthenticated search.")
    pds_url: str = Field(default="https://bsky.social",
                         description="PDS to log in to and search through, with credentials.")
    identifier: str | None = Field(default=None,
                                   description="Handle or email for search login (optional).")
    app_password: SecretStr | None = Field(
        default=None, description="App password (Settings > App passwords) for search login.")
    poll_interval_s: float = Field(default=60.0, gt=0, le=86400,
                                   description="Search mode: wait between polls.")
    page_limit: int = Field(default=100, ge=1, le=100, description="Search results per page.")
    max_pages: int = Field(default=10, ge=1, le=1000,
                           description="Search pages per term and poll, at most.")
    lookback_s: float = Field(default=3600.0, ge=0, le=7 * 86400,
                              description="Search mode, first run: how far back to start.")
    overlap_s: float = Field(default=60.0, ge=0, le=86400,
                             description="Search mode: re-ask this far before the newest post "
                             "seen, for posts the index received late.")
    request_timeout_s: float = Field(default=30.0, gt=0, le=600,
                                     description="Timeout of one HTTP request or handshake.")
    user_agent: str = Field(default="escucha (social listening)",
                            description="User-Agent sent to Bluesky.")

    @field_validator("jetstream_url", "appview_url", "pds_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not re.match(r"(?:wss?|https?)://[^\s/]+", value):
            raise ValueError("use an absolute URL, e.g. https://public.api.bsky.app")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _login_pair(self) -> BlueskySettings:
        if (self.identifier is None) != (self.app_password is None):
            raise ValueError("set both identifier and app_password, or neither")
        return self


class _Matcher:
    """Does a text contain one of the terms? Folded as watch queries fold; one pass."""

    def __init__(self, terms: list[str], *, match_all: bool) -> None:
        words = {fold(t).strip() for t in terms} - {""}
        self.everything = match_all and not words
        self.empty = not words and not self.everything
        self._auto = ahocorasick.Automaton()
        for word in words:
            self._auto.add_word(word, word)
        if words:
            self._auto.make_automaton()

    def __call__(self, text: str) -> bool:
        if self.everything:
            return True
        if self.empty:
            return False
        return any(True for _ in self._auto.iter(fold(text)))


def _retry_after(headers: Mapping[str, str]) -> float | None:
    """Retry-After, else atproto's ``ratelimit-reset`` (epoch seconds)."""
    wait = retry_after_seconds(headers)
    if wait is not None:
        return wait
    reset = {k.lower(): v for k, v in headers.items()}.get("ratelimit-reset")
    try:
        return max(0.0, float(reset) - time.time()) if reset is not None else None
    except ValueError:
        return None


def _error(status: int, headers: Mapping[str, str], what: str, detail: str = "") -> SourceError:
    if status == 429:
        return SourceError(f"{what}: rate limited (429){detail}", kind="rate_limited",
                           retry_after=_retry_after(headers))
    if status >= 500:
        return SourceError(f"{what}: server error {status}{detail}", kind="server",
                           retry_after=retry_after_seconds(headers))
    return SourceError(f"{what}: HTTP {status}{detail}", kind="transport")


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _language(langs: Any) -> str | None:
    # Posts declare BCP-47 tags ("en", "pt-BR"); mentions carry the ISO 639 primary subtag.
    if isinstance(langs, list) and langs and isinstance(langs[0], str):
        primary = langs[0].split("-", 1)[0]
        if _LANG.fullmatch(primary):
            return primary.lower()
    return None


def _post_mention(did: str, rkey: str, record: Mapping[str, Any], *, author: Author,
                  fallback: datetime, engagement: Engagement | None = None) -> Mention:
    return Mention(
        source="bluesky", id=f"at://{did}/{_POST}/{rkey}",
        url=f"https://bsky.app/profile/{did}/post/{rkey}", author=author,
        text=record["text"], language=_language(record.get("langs")),
        created_at=_time(record.get("createdAt")) or fallback,
        engagement=engagement or Engagement())


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _view_mention(post: Any) -> tuple[Mention, datetime]:
    """A searchPosts PostView as a mention, with its sortAt; ValueError says what is wrong."""
    if not isinstance(post, dict):
        raise ValueError("post is not an object")
    match = _URI.fullmatch(str(post.get("uri", "")))
    if match is None:
        raise ValueError("post uri is not an at:// URI of an app.bsky.feed.post")
    record, author = post.get("record"), post.get("author")
    if not isinstance(record, dict) or not isinstance(record.get("text"), str):
        raise ValueError("post record has no text")
    if not isinstance(author, dict) or not isinstance(author.get("did"), str):
        raise ValueError("post author has no did")
    indexed = _time(post.get("indexedAt"))
    created = _time(record.get("createdAt")) or indexed
    if created is None:
        raise ValueError("post has neither record.createdAt nor indexedAt")
    handle = author.get("handle")
    verification = author.get("verification")
    who = Author(
        handle=handle if isinstance(handle, str) and handle != "handle.invalid"
        else author["did"],
        name=author.get("displayName") or None,
        verified=isinstance(verification, dict)
        and verification.get("verifiedStatus") == "valid")
    likes = Engagement(likes=_count(post.get("likeCount")),
                       shares=_count(post.get("repostCount")) + _count(post.get("quoteCount")),
                       replies=_count(post.get("replyCount")))
    mention = _post_mention(match[1], match[2], record, author=who, fallback=created,
                            engagement=likes)
    return mention, min(created, indexed or created)


class BlueskyConnector:
    """Bluesky posts that mention the keywords; see the module docstring."""

    source = "bluesky"

    def __init__(self, settings: BlueskySettings) -> None:
        self.settings = settings
        self.name = settings.name
        self._last_us: int | None = None  # newest event processed in this process
        self._access: str | None = None
        self._refresh: str | None = None

    async def run(self, ctx: ConnectorContext) -> None:
        s = self.settings
        timeout = aiohttp.ClientTimeout(total=None, connect=s.request_timeout_s,
                                        sock_connect=s.request_timeout_s,
                                        sock_read=s.request_timeout_s)
        async with aiohttp.ClientSession(timeout=timeout,
                                         headers={"User-Agent": s.user_agent}) as session:
            if s.mode == "search":
                await self._search_forever(ctx, session)
            else:
                await self._firehose_forever(ctx, session)

    # -- firehose ----------------------------------------------------------------------------
    def _cursor(self, ctx: ConnectorContext, **update: Any) -> dict[str, Any]:
        base = ctx.cursor if isinstance(ctx.cursor, dict) else {}
        return {**base, **update}

    async def _firehose_forever(self, ctx: ConnectorContext,
                                session: aiohttp.ClientSession) -> None:
        matcher = _Matcher(list(self.settings.keywords) or ctx.terms,
                           match_all=self.settings.match_all)
        if matcher.empty:
            log.error("bluesky connector %s has no keywords and no watch terms: nothing to "
                      "keep from the firehose (set keywords, or match_all)", self.name)
        stored = ctx.cursor.get("time_us") if isinstance(ctx.cursor, dict) else None
        if isinstance(stored, int) and self._last_us is None:
            self._last_us = stored
        # No final save on the way out: the periodic one plus the rewind already replay
        # everything after it, and a save during a cancelled emit could store a position
        # past a mention the broker never confirmed.
        while True:
            try:
                await self._firehose(ctx, session, matcher)
            except SourceError as exc:
                await ctx.failed(exc)

    async def _firehose(self, ctx: ConnectorContext, session: aiohttp.ClientSession,
                        matcher: _Matcher) -> None:
        s = self.settings
        params: dict[str, str] = {"wantedCollections": _POST}
        if self._last_us is not None:
            params["cursor"] = str(max(0, self._last_us - int(s.rewind_s * 1_000_000)))
        try:
            ws = await session.ws_connect(
                f"{s.jetstream_url}/subscribe", params=params, heartbeat=30.0,
                timeout=aiohttp.ClientWSTimeout(ws_close=5.0), max_msg_size=8 * 1024 * 1024)
        except aiohttp.WSServerHandshakeError as exc:
            raise _error(exc.status, exc.headers or {}, "jetstream handshake") from exc
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise SourceError(f"jetstream connect: {type(exc).__name__}: {exc}") from exc
        saved = time.monotonic()
        healthy = False
        async with ws:
            while True:
                try:
                    msg = await ws.receive(timeout=s.idle_timeout_s)
                except TimeoutError as exc:
                    raise SourceError(f"jetstream silent for {s.idle_timeout_s:.0f}s") from exc
                if msg.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                    if not healthy:
                        # Healthy once events flow, not at the upgrade: a server that accepts
                        # and drops at once must keep growing the backoff.
                        ctx.ok()
                        healthy = True
                    if await self._on_frame(ctx, msg.data, matcher):
                        saved = time.monotonic()
                    elif time.monotonic() - saved >= s.cursor_save_interval_s \
                            and self._last_us is not None:
                        await ctx.emit([], cursor=self._cursor(ctx, time_us=self._last_us))
                        saved = time.monotonic()
                    ctx.heartbeat()
                    continue
                detail = f" ({ws.exception()})" if msg.type == aiohttp.WSMsgType.ERROR else ""
                raise SourceError(f"jetstream stream closed: {msg.type.name} "
                                  f"code={ws.close_code}{detail}")

    async def _on_frame(self, ctx: ConnectorContext, data: str | bytes,
                        matcher: _Matcher) -> bool:
        """Handle one event; True if a mention was emitted (and the cursor stored with it)."""
        try:
            event = json.loads(data)
        except ValueError as exc:  # also undecodable bytes
            await ctx.reject(f"jetstream frame is not JSON: {exc}", data)
            return False
        time_us = event.get("time_us") if isinstance(event, dict) else None
        if not isinstance(time_us, int) or isinstance(time_us, bool) or time_us <= 0:
            await ctx.reject("jetstream event without an integer time_us", data)
            return False
        try:
            mention = self._event_mention(event, time_us, matcher)
        except ValueError as exc:
            await ctx.reject(f"jetstream post: {exc}", data)
            mention = None
        position = max(self._last_us or 0, time_us)
        if mention is not None:
            await ctx.emit([mention], cursor=self._cursor(ctx, time_us=position))
        # Only once the broker has the mention: a failed emit must be replayed.
        self._last_us = position
        return mention is not None

    @staticmethod
    def _event_mention(event: dict[str, Any], time_us: int,
                       matcher: _Matcher) -> Mention | None:
        if event.get("kind") != "commit":  # identity and account events: nothing said
            return None
        commit = event.get("commit")
        if not isinstance(commit, dict):
            raise ValueError("commit event without a commit object")
        if commit.get("collection") != _POST or commit.get("operation") != "create":
            return None
        did, rkey, record = event.get("did"), commit.get("rkey"), commit.get("record")
        if not isinstance(did, str) or not _DID.fullmatch(did):
            raise ValueError(f"did {did!r} is not a DID")
        if not isinstance(rkey, str) or not _RKEY.fullmatch(rkey):
            raise ValueError(f"rkey {rkey!r} is not a record key")
        if not isinstance(record, dict) or not isinstance(record.get("text"), str):
            raise ValueError("post record has no text")
        if not matcher(record["text"]):
            return None
        try:
            return _post_mention(did, rkey, record, author=Author(handle=did),
                                 fallback=datetime.fromtimestamp(time_us / 1e6, UTC))
        except ValidationError as exc:
            raise ValueError(str(exc).replace("\n", " ")) from exc

    # -- search ------------------------------------------------------------------------------
    async def _search_forever(self, ctx: ConnectorContext,
                              session: aiohttp.ClientSession) -> None:
        s = self.settings
        terms = list(dict.fromkeys(t.strip() for t in (s.keywords or tuple(ctx.terms))
                                   if t.strip()))
        if not terms:
            log.error("bluesky connector %s has no keywords and no watch terms to search for",
                      self.name)
        while True:
            for term in terms:
                while True:
                    try:
                        await self._search(ctx, session, term)
                    except SourceError as exc:
                        await ctx.failed(exc)
                        continue
                    ctx.ok()
                    break
            await self._pause(ctx, s.poll_interval_s)

    @staticmethod
    async def _pause(ctx: ConnectorContext, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            ctx.heartbeat()
            await asyncio.sleep(min(left, 5.0))

    async def _search(self, ctx: ConnectorContext, session: aiohttp.ClientSession,
                      term: str) -> None:
        s = self.settings
        states = ctx.cursor.get("search") if isinstance(ctx.cursor, dict) else None
        states = dict(states) if isinstance(states, dict) else {}
        newest = _time(states.get(term))
        since = (newest - timedelta(seconds=s.overlap_s)) if newest else \
            datetime.now(UTC) - timedelta(seconds=s.lookback_s)
        # Phrases are quoted so the search engine looks for them, not for each word apart.
        query = f'"{term}"' if re.search(r"\s", term) and '"' not in term else term
        params = {"q": query, "sort": "latest", "since": _iso(since),
                  "limit": str(s.page_limit)}
        for page in range(s.max_pages):
            body = await self._xrpc(ctx, session, "app.bsky.feed.searchPosts", params)
            posts = body.get("posts")
            if not isinstance(posts, list):
                raise SourceError("searchPosts answer has no posts list", kind="malformed")
            mentions = []
            for post in posts:
                try:
                    mention, sort_at = _view_mention(post)
                except (ValueError, ValidationError) as exc:
                    reason = str(exc).replace("\n", " ")
                    await ctx.reject(f"searchPosts post: {reason}", json.dumps(post))
                    continue
                mentions.append(mention)
                newest = max(newest, sort_at) if newest else sort_at
            await ctx.emit(mentions)
            cursor = body.get("cursor")
            if not posts or not isinstance(cursor, str) or not cursor:
                break
            if page == s.max_pages - 1:
                log.warning("bluesky %s: more than %d pages for %r since %s; raise max_pages "
                            "or poll more often", self.name, s.max_pages, term, params["since"])
            params["cursor"] = cursor
        if newest is not None:
            states[term] = _iso(newest)
            await ctx.emit([], cursor=self._cursor(ctx, search=states))

    async def _xrpc(self, ctx: ConnectorContext, session: aiohttp.ClientSession, method: str,
                    params: Mapping[str, str]) -> dict[str, Any]:
        s = self.settings
        base = s.pds_url if s.identifier else s.appview_url
        for attempt in range(2):
            headers = {}
            if s.identifier:
                headers["Authorization"] = f"Bearer {await self._login(session)}"
            status, resp_headers, body = await self._request(
                session, "GET", f"{base}/xrpc/{method}", params=params, headers=headers)
            if status == 200 and isinstance(body, dict):
                await self._respect_quota(ctx, resp_headers)
                return body
            if status == 200:
                raise SourceError(f"{method} answered something that is not a JSON object",
                                  kind="malformed")
            error = body.get("error") if isinstance(body, dict) else None
            if s.identifier and attempt == 0 and status in (400, 401) and error in _EXPIRED:
                await self._renew(session)
                continue
            raise self._xrpc_error(method, status, resp_headers, body)
        raise SourceError(f"{method}: still unauthorised after renewing the session")

    def _xrpc_error(self, method: str, status: int, headers: Mapping[str, str],
                    body: Any, advice: str = "") -> SourceError:
        detail = ""
        if isinstance(body, dict) and body.get("error"):
            # XRPC errors are {"error": name, "message": text}; both are safe to log.
            detail = f" {str(body['error'])[:100]}: {str(body.get('message', ''))[:300]}"
        if status in (401, 403) and not advice and not self.settings.identifier:
            advice = "the public AppView may refuse search: set identifier and app_password"
        return _error(status, headers, method, detail + (f" ({advice})" if advice else ""))

    async def _respect_quota(self, ctx: ConnectorContext, headers: Mapping[str, str]) -> None:
        # Spending the last request of a window earns a 429 next; wait for the reset instead.
        lower = {k.lower(): v for k, v in headers.items()}
        if lower.get("ratelimit-remaining", "1").strip() == "0":
            wait = _retry_after({"ratelimit-reset": lower.get("ratelimit-reset", "")})
            if wait:
                await self._pause(ctx, min(wait, self.settings.max_backoff_s))

    async def _request(self, session: aiohttp.ClientSession, method: str, url: str, *,
                       params: Mapping[str, str] | None = None,
                       headers: Mapping[str, str] | None = None,
                       json_body: Any = None) -> tuple[int, Mapping[str, str], Any]:
        try:
            async with session.request(method, url, params=params, headers=headers,
                                       json=json_body) as resp:
                raw = await resp.read()
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = None
                return resp.status, resp.headers, body
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise SourceError(f"{url.rsplit('/', 1)[-1]}: {type(exc).__name__}: {exc}") \
                from exc

    async def _login(self, session: aiohttp.ClientSession) -> str:
        if self._access is None:
            s = self.settings
            assert s.app_password is not None  # the validator pairs it with identifier
            status, headers, body = await self._request(
                session, "POST", f"{s.pds_url}/xrpc/com.atproto.server.createSession",
                json_body={"identifier": s.identifier,
                           "password": s.app_password.get_secret_value()})
            self._take_tokens(status, headers, body, "createSession")
        assert self._access is not None
        return self._access

    async def _renew(self, session: aiohttp.ClientSession) -> None:
        refresh, self._access, self._refresh = self._refresh, None, None
        if refresh is None:
            return
        status, headers, body = await self._request(
            session, "POST", f"{self.settings.pds_url}/xrpc/com.atproto.server.refreshSession",
            headers={"Authorization": f"Bearer {refresh}"})
        if status == 200:
            self._take_tokens(status, headers, body, "refreshSession")
        # Otherwise the refresh token is dead too: the next request logs in again.

    def _take_tokens(self, status: int, headers: Mapping[str, str], body: Any,
                     what: str) -> None:
        if status == 200 and isinstance(body, dict) and isinstance(body.get("accessJwt"), str):
            self._access = body["accessJwt"]
            refresh = body.get("refreshJwt")
            self._refresh = refresh if isinstance(refresh, str) else None
            return
        advice = "check identifier and app_password" if status in (400, 401) else ""
        raise self._xrpc_error(f"com.atproto.server.{what}", status if status != 200 else 502,
                               headers, body, advice)

