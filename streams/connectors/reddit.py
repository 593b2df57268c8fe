"""Reddit: new posts and comments of subreddits, and sitewide searches, over the OAuth API.

Authentication is Reddit's application-only OAuth2: ``POST {auth_url}/api/v1/access_token``
with HTTP Basic ``client_id:client_secret`` and ``grant_type=client_credentials`` (or
``grant_type=password`` with ``username``/``password`` for a script app acting as its user)
returns ``{"access_token", "token_type": "bearer", "expires_in", "scope"}``. The token is
renewed shortly before ``expires_in`` runs out, and at once when the API answers 401.

Every poll reads these Listings from ``api_url`` (``https://oauth.reddit.com``), newest first,
``limit=100&raw_json=1`` (``raw_json`` stops Reddit HTML-escaping ``&<>`` in the text):

- ``/r/{a+b+c}/new`` (posts, ``t3``) and ``/r/{a+b+c}/comments`` (comments, ``t1``);
- ``/search?q=...&sort=new`` for ``queries`` (or, with no subreddits, the watch terms).

Cursor (one entry per listing, JSON): the newest ``created_utc`` seen and its fullname, plus
the fullnames seen within ``overlap_s`` of it. A poll walks older pages with ``after`` until
it meets an item older than ``newest_utc - overlap_s`` (or ``max_pages``), so a restart after
downtime fills the gap; the overlap re-reads items that show up late (search indexing, posts
approved out of the spam queue). Walking down with ``after`` rather than up with ``before``
is deliberate: ``before=<fullname>`` answers an empty page forever once that item is deleted.
A first run takes one page (the newest 100), not the whole history.

Rate limits: ``X-Ratelimit-Remaining`` below 1 holds the next request until
``X-Ratelimit-Reset`` seconds have passed; a 429 still becomes a retried
:class:`SourceError` with the wait the headers ask for.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp
from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator

from streams.connectors.base import (
    ConnectorContext,
    SourceError,
    SourceSettings,
    retry_after_seconds,
)
from streams.core.records import Author, Engagement, Mention, stable_id

__all__ = ["RedditConnector", "RedditSettings"]

log = logging.getLogger(__name__)

_SUBREDDIT = re.compile(r"[A-Za-z0-9][A-Za-z0-9_]{1,20}")
_PAGE = 100  # Reddit's largest page
_QUERY_CHARS = 512  # Reddit truncates longer search queries
_SEEN_CAP = 500
_MAX_HOLD_S = 900.0  # a garbage reset header must not park the connector for hours
_WEB = "https://www.reddit.com"


class RedditSettings(SourceSettings):
    """One Reddit connector: which subreddits and searches, and the OAuth app to use."""

    client_id: str = Field(min_length=1, description="OAuth app id (reddit.com/prefs/apps).")
    client_secret: SecretStr = Field(description="OAuth app secret.")
    username: str | None = Field(default=None, description="Reddit account of a script app; "
                                 "with password, tokens use grant_type=password.")
    password: SecretStr | None = Field(default=None, description="That account's password.")
    user_agent: str = Field(
        min_length=8, max_length=256,
        description="Descriptive User-Agent, required by Reddit's API rules, e.g. "
        "'server:com.acme.escucha:v1.0 (by /u/acme_ops)'; generic ones are throttled.")
    subreddits: list[str] = Field(default_factory=list,
                                  description="Subreddit names (without r/) to read in full.")
    queries: list[str] = Field(
        default_factory=list,
        description="Sitewide Reddit searches (newest first), joined with OR; empty: the watch "
        "terms, but only when no subreddits are listed.")
    include_comments: bool = Field(default=True,
                                   description="Also read the subreddits' new comments.")
    poll_interval_s: float = Field(default=60.0, gt=0, le=3600,
                                   description="Pause between polls of all listings.")
    max_pages: int = Field(default=10, ge=1, le=100,
                           description="Pages (of 100) walked back per poll to fill a gap.")
    overlap_s: float = Field(default=120.0, ge=0, le=86400,
                             description="Re-read items this much older than the newest seen, "
                             "for items Reddit lists late; repeats are skipped.")
    request_timeout_s: float = Field(default=30.0, gt=0, le=300,
                                     description="Timeout of one HTTP request.")
    api_url: str = Field(default="https://oauth.reddit.com", description="OAuth API base URL.")
    auth_url: str = Field(default=_WEB, description="Base URL of the token endpoint.")

    @field_validator("subreddits")
    @classmethod
    def _names(cls, value: list[str]) -> list[str]:
        out = []
        for raw in value:
            name = raw.strip().removeprefix("/").removeprefix("r/")
            if not _SUBREDDIT.fullmatch(name):
                raise ValueError(f"{raw!r} is not a subreddit name: give e.g. 'python', not a URL")
            out.append(name)
        return out

    @field_validator("api_url", "auth_url")
    @classmethod
    def _base(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError("give an http(s) base URL, e.g. 'https://oauth.reddit.com'")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _pair(self) -> RedditSettings:
        if (self.username is None) != (self.password is None):
            raise ValueError("give both username and password (script app), or neither")
        return self


@dataclass(frozen=True)
class _Listing:
    key: str  # names the listing's entry in the cursor
    path: str
    params: Mapping[str, str]


def _search_queries(queries: Sequence[str], terms: Sequence[str]) -> list[str]:
    """OR-joined queries of at most 512 characters (one query per extra chunk)."""
    if queries:
        parts = [f"({q})" if len(queries) > 1 else q for q in queries]
    else:  # watch terms are plain words or phrases: quote phrases so they stay phrases
        parts = [f'"{t}"' if " " in t.strip() else t.strip() for t in terms if t.strip()]
    chunks: list[str] = []
    for part in parts:
        if chunks and len(chunks[-1]) + 4 + len(part) <= _QUERY_CHARS:
            chunks[-1] += " OR " + part
        else:
            chunks.append(part[:_QUERY_CHARS])
    return chunks


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _to_mention(child: Any) -> tuple[float, Mention] | str:
    """A Listing child as (created_utc, Mention), or the reason it cannot be one."""
    if not isinstance(child, dict) or not isinstance(child.get("data"), dict):
        return "listing child is not an object with a 'data' object"
    kind, data = child.get("kind"), child["data"]
    if kind not in ("t3", "t1"):
        return f"listing child of unexpected kind {kind!r} (want t3 post or t1 comment)"
    name = data.get("name")
    if not isinstance(name, str) or not name.startswith(f"{kind}_") or len(name) < 4:
        return f"{kind} without a valid 'name' (fullname like {kind}_abc123): {name!r}"
    utc = _number(data.get("created_utc"))
    if utc is None:
        return f"{name}: missing or non-numeric 'created_utc': {data.get('created_utc')!r}"
    try:
        created = datetime.fromtimestamp(utc, UTC)
    except (OverflowError, OSError, ValueError):
        return f"{name}: 'created_utc' out of range: {utc!r}"
    if kind == "t3":
        title, body = data.get("title"), data.get("selftext") or ""
        if not isinstance(title, str) or not isinstance(body, str):
            return f"{name}: post without a string 'title'/'selftext'"
        text = f"{title}\n\n{body}" if body else title
        replies = _number(data.get("num_comments")) or 0.0
    else:
        text = data.get("body")
        if not isinstance(text, str):
            return f"{name}: comment without a string 'body'"
        replies = 0.0
    author = data.get("author")
    author = author if isinstance(author, str) and author else "[deleted]"
    permalink = data.get("permalink")
    url = _WEB + permalink if isinstance(permalink, str) and permalink.startswith("/") else None
    score = _number(data.get("score")) or 0.0
    try:
        mention = Mention(
            source="reddit", id=name, url=url, text=text, created_at=created,
            # Listings carry no follower counts; scores can be negative, likes cannot.
            author=Author(handle=f"u/{author}", name=author),
            engagement=Engagement(likes=max(0, int(score)), replies=max(0, int(replies))),
        )
    except ValidationError as exc:
        return f"{name}: {exc.errors(include_url=False)[0]['msg']}"
    except (OverflowError, ValueError):  # int() of an infinite or NaN count
        return f"{name}: 'score'/'num_comments' not a finite number"
    return utc, mention


class _Client:
    """Tokens, rate-limit pacing and error mapping for one run() (one ClientSession)."""

    def __init__(self, session: aiohttp.ClientSession, settings: RedditSettings,
                 ctx: ConnectorContext) -> None:
        self._session, self._settings, self._ctx = session, settings, ctx
        self._token: str | None = None
        self._renew_at = 0.0
        self._hold_until = 0.0  # monotonic time before which the rate window is spent

    async def listing(self, path: str, params: Mapping[str, str]) -> Any:
        url = self._settings.api_url + path
        for attempt in range(2):
            token = await self._bearer()
            status, headers, body = await self._send(
                "GET", url, params=dict(params), headers={"Authorization": f"bearer {token}"})
            self._note_window(headers)
            if status == 401 and attempt == 0:
                self._token = None  # expired or revoked before we expected: one fresh token
                continue
            _check(status, headers, f"GET {path}")
            try:
                return json.loads(body)
            except ValueError as exc:  # an HTML error page with 200: Reddit is struggling
                raise SourceError(f"GET {path}: answer is not JSON", kind="server") from exc
        raise AssertionError("unreachable")

    async def _bearer(self) -> str:
        if self._token is not None and time.monotonic() < self._renew_at:
            return self._token
        s = self._settings
        form = {"grant_type": "client_credentials"}
        if s.username is not None and s.password is not None:
            form = {"grant_type": "password", "username": s.username,
                    "password": s.password.get_secret_value()}
        status, headers, body = await self._send(
            "POST", f"{s.auth_url}/api/v1/access_token", data=form,
            auth=aiohttp.BasicAuth(s.client_id, s.client_secret.get_secret_value()))
        if status == 401:
            raise SourceError("Reddit refused the app credentials (HTTP 401): check client_id "
                              "and client_secret")
        _check(status, headers, "token request")
        try:
            payload = json.loads(body)
        except ValueError as exc:
            raise SourceError("token answer is not JSON", kind="server") from exc
        if not isinstance(payload, dict):
            raise SourceError("token answer is not a JSON object", kind="server")
        if "error" in payload:  # Reddit answers 200 {"error": "invalid_grant"} on bad logins
            raise SourceError(f"token request refused: {str(payload['error'])[:100]}: check "
                              "username/password and that the app is a script app")
        token, ttl = payload.get("access_token"), _number(payload.get("expires_in"))
        if not isinstance(token, str) or not token or ttl is None or ttl <= 0:
            raise SourceError("token answer lacks access_token/expires_in", kind="server")
        self._token = token
        # Renew a little early so no request goes out with a token about to lapse.
        self._renew_at = time.monotonic() + ttl - min(60.0, ttl * 0.1)
        return token

    async def _send(self, method: str, url: str, **kwargs: Any
                    ) -> tuple[int, Mapping[str, str], bytes]:
        await self._wait_window()
        try:
            async with self._session.request(method, url, allow_redirects=False,
                                             **kwargs) as resp:
                return resp.status, resp.headers, await resp.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise SourceError(f"{method} {url.split('?')[0]}: {type(exc).__name__}: {exc}",
                              kind="transport") from exc

    def _note_window(self, headers: Mapping[str, str]) -> None:
        remaining = _number_header(headers, "X-Ratelimit-Remaining")
        reset = _number_header(headers, "X-Ratelimit-Reset")
        if remaining is not None and reset is not None and remaining < 1:
            hold = min(max(reset, 0.0), _MAX_HOLD_S)
            log.info("reddit connector %s: rate window spent (used %s); holding %.1fs",
                     self._ctx.name, headers.get("X-Ratelimit-Used"), hold)
            self._hold_until = max(self._hold_until, time.monotonic() + hold)

    async def _wait_window(self) -> None:
        # Proactive: waiting out a spent window beats collecting a 429 for it.
        while (left := self._hold_until - time.monotonic()) > 0:
            self._ctx.heartbeat()
            await asyncio.sleep(min(left, 5.0))


def _number_header(headers: Mapping[str, str], name: str) -> float | None:
    try:
        return float(headers[name])
    except (KeyError, ValueError):
        return None


def _check(status: int, headers: Mapping[str, str], what: str) -> None:
    if status < 400:
        return
    if status == 429:
        raise SourceError(f"{what}: HTTP 429 rate limited", kind="rate_limited",
                          retry_after=retry_after_seconds(headers))
    if status >= 500:
        raise SourceError(f"{what}: HTTP {status}", kind="server",
                          retry_after=retry_after_seconds(headers))
    hint = {401: "check the OAuth app credentials", 403: "private or quarantined subreddit?",
            404: "check the subreddit names"}.get(status, "check the settings")
    raise SourceError(f"{what}: HTTP {status}: {hint}")


def _stored(raw: Any) -> tuple[float, str, list[tuple[str, float]]] | None:
    """A listing's cursor entry as (newest_utc, newest, seen), None if absent or unusable."""
    if not isinstance(raw, dict) or (utc := _number(raw.get("newest_utc"))) is None:
        return None
    seen = []
    for pair in raw.get("seen") or []:
        if isinstance(pair, list) and len(pair) == 2 and (u := _number(pair[1])) is not None:
            seen.append((str(pair[0]), u))
    return utc, str(raw.get("newest") or ""), seen


def _children(payload: Any, path: str) -> tuple[list[Any], str | None]:
    if not (isinstance(payload, dict) and payload.get("kind") == "Listing"
            and isinstance(payload.get("data"), dict)
            and isinstance(payload["data"].get("children"), list)):
        raise SourceError(f"GET {path}: answer is not a Listing", kind="server")
    after = payload["data"].get("after")
    return payload["data"]["children"], after if isinstance(after, str) and after else None


class RedditConnector:
    """Polls the configured listings; see the module docstring."""

    source = "reddit"

    def __init__(self, settings: RedditSettings) -> None:
        # Typed as the base class to match the Connector protocol (mutable attributes are
        # invariant); the connector itself reads its own, precisely typed copy.
        self.settings: SourceSettings = settings
        self._settings = settings
        self.name = settings.name
        self._rejected: OrderedDict[str, None] = OrderedDict()

    def _listings(self, terms: Sequence[str]) -> list[_Listing]:
        s = self._settings
        out = []
        if s.subreddits:
            subs = "+".join(s.subreddits)
            out.append(_Listing(f"new:{subs}", f"/r/{subs}/new", {}))
            if s.include_comments:
                out.append(_Listing(f"comments:{subs}", f"/r/{subs}/comments", {}))
        for q in _search_queries(s.queries, [] if s.subreddits else terms):
            out.append(_Listing(f"search:{q}", "/search", {"q": q, "sort": "new"}))
        return out

    async def run(self, ctx: ConnectorContext) -> None:
        stored = ctx.cursor.get("listings") if isinstance(ctx.cursor, dict) else None
        cursors: dict[str, Any] = dict(stored) if isinstance(stored, dict) else {}
        timeout = aiohttp.ClientTimeout(total=self._settings.request_timeout_s)
        headers = {"User-Agent": self._settings.user_agent}
        async with aiohttp.ClientSession(timeout=timeout, headers=headers) as session:
            client = _Client(session, self._settings, ctx)
            warned = False
            while True:
                listings = self._listings(ctx.terms)
                if not listings and not warned:
                    warned = True
                    log.warning("reddit connector %s: no subreddits, queries or watch terms; "
                                "nothing to read", self.name)
                # Listings no longer configured (changed terms) drop out of the cursor.
                cursors = {k: v for k, v in cursors.items()
                           if any(k == listing.key for listing in listings)}
                try:
                    for listing in listings:
                        cursors = await self._poll(client, listing, cursors, ctx)
                        ctx.ok()
                except SourceError as exc:
                    await ctx.failed(exc)
                    continue
                await self._idle(ctx)

    async def _poll(self, client: _Client, listing: _Listing, cursors: dict[str, Any],
                    ctx: ConnectorContext) -> dict[str, Any]:
        """Read one listing down to the stored position; emit; return the new cursors."""
        state = _stored(cursors.get(listing.key))
        overlap = self._settings.overlap_s
        floor = state[0] - overlap if state else None
        seen = {name for name, _ in state[2]} if state else set()
        newest = (state[0], state[1]) if state else None
        fresh: list[tuple[float, Mention]] = []
        pages = self._settings.max_pages if state else 1
        after: str | None = None
        for page in range(pages):
            params = {**listing.params, "limit": str(_PAGE), "raw_json": "1"}
            if after:
                params.update(after=after, count=str(page * _PAGE))
            children, after = _children(await client.listing(listing.path, params),
                                        listing.path)
            reached = False
            for child in children:
                item = _to_mention(child)
                if isinstance(item, str):
                    await self._reject(ctx, item, child, listing.key)
                    continue
                utc, mention = item
                if newest is None or utc > newest[0]:
                    newest = (utc, mention.id)
                if floor is not None and utc < floor:
                    reached = True  # older than the stored position: seen on an earlier poll
                elif mention.id not in seen:
                    seen.add(mention.id)
                    fresh.append((utc, mention))
            if reached or after is None or not children:
                break
        else:
            if state is not None:
                log.warning("reddit connector %s: %s: %d pages without reaching the stored "
                            "position; older items in the gap are missed", self.name,
                            listing.key, pages)
        if newest is None:
            return cursors
        fresh.sort(key=lambda pair: pair[0])
        window = newest[0] - overlap
        kept = [(n, u) for n, u in (state[2] if state else []) if u >= window]
        kept += [(m.id, u) for u, m in fresh if u >= window]
        updated = {**cursors, listing.key: {"newest": newest[1], "newest_utc": newest[0],
                                            "seen": [list(p) for p in kept[-_SEEN_CAP:]]}}
        # A new dict each time: the context may save the cursor it holds at any moment, and
        # it must never see positions whose mentions the broker has not acknowledged.
        await ctx.emit([m for _, m in fresh], cursor={"listings": updated})
        return updated

    async def _reject(self, ctx: ConnectorContext, reason: str, child: Any, key: str) -> None:
        raw = json.dumps(child, sort_keys=True, default=str)
        # The same bad child stays on page one for many polls: dead-letter it once.
        digest = stable_id(raw)
        if digest in self._rejected:
            return
        self._rejected[digest] = None
        while len(self._rejected) > 2000:
            self._rejected.popitem(last=False)
        await ctx.reject(reason, raw, origin=f"{self.name}:{key}")

    async def _idle(self, ctx: ConnectorContext) -> None:
        deadline = time.monotonic() + self._settings.poll_interval_s
        while (left := deadline - time.monotonic()) > 0:
            ctx.heartbeat()
            await asyncio.sleep(min(left, 5.0))
