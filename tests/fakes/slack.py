"""A recording fake of the Slack Web API: a real aiohttp server on 127.0.0.1, port 0.

It speaks Slack's wire format, so ``AsyncWebClient(token=..., base_url=fake.url)`` from
``slack_sdk`` runs against it unchanged: form-encoded or JSON bodies, ``Authorization: Bearer``
tokens, ``{"ok": false, "error": ...}`` answers with HTTP 200, HTTP 429 with ``Retry-After``,
and HTML error pages from the edge for 5xx. State (posted messages) lives in memory for the
lifetime of one instance.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import copy
import hashlib
import hmac
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from aiohttp import web

from tests.fakes import _slack_wire as wire
from tests.fakes._server import LocalServer, serve

__all__ = ["FakeSlack", "SlackCall", "SlackUpload", "sign_slack_request"]

_CHANNEL_ID = re.compile(r"[CGD][A-Z0-9]{2,}")
# A member (U…) or, on Enterprise Grid, a global user (W…): chat.postMessage to one writes in
# the bot's direct message (IM) with that user, a D… channel.
_USER_ID = re.compile(r"[UW][A-Z0-9]{2,}")
_EDGE_PAGE = "<html><head><title>{status} {reason}</title></head><body>{reason}</body></html>"
_Handler = Callable[[dict[str, Any]], dict[str, Any]]


@dataclass
class SlackCall:
    """One request the fake received, recorded after it was answered."""

    method: str
    params: dict[str, Any]
    token: str | None
    at: float
    status: int = 200
    response: dict[str, Any] | None = None  # JSON body answered; None for an HTML edge page

    @property
    def ok(self) -> bool:
        return self.status == 200 and bool(self.response and self.response.get("ok"))

    @property
    def error(self) -> str | None:
        """Slack's error code, ``http_<status>`` for a non-JSON answer, None when ok."""
        if self.ok:
            return None
        if self.response is None:
            return f"http_{self.status}"
        return str(self.response.get("error"))


@dataclass
class SlackUpload:
    """One file of the external upload flow: announced, uploaded, then shared (or not)."""

    file_id: str
    filename: str
    length: int  # as announced to files.getUploadURLExternal
    alt_txt: str | None = None
    content: bytes | None = None  # what was POSTed to the upload URL
    title: str | None = None
    channel: str | None = None  # the channel id it was shared in
    initial_comment: str | None = None
    ts: str | None = None  # of the message that shares it

    @property
    def shared(self) -> bool:
        return self.ts is not None


@dataclass
class _Failure:
    status: int
    error: str | None
    retry_after: int | None
    remaining: int


def sign_slack_request(
    body: bytes, *, signing_secret: str, timestamp: int | None = None
) -> dict[str, str]:
    """Headers Slack adds to an interactivity/events request: the v0 HMAC-SHA256 signature."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    base = b"v0:" + ts.encode() + b":" + body
    digest = hmac.new(signing_secret.encode(), base, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest}"}


class FakeSlack(LocalServer):
    """Slack Web API on a loopback port: ``auth.test``, ``chat.postMessage``, ``chat.update``,
    ``conversations.history``, ``conversations.list``, ``conversations.open`` (1:1 direct
    messages: posting to a user id writes in that user's D… channel), and the external file
    upload flow
    (``files.getUploadURLExternal``, a POST of the bytes to the upload URL it answers,
    ``files.completeUploadExternal``). Every API request is appended to ``calls``, refused
    ones included; files shared by a completed upload are appended to ``uploads``."""

    def __init__(
        self,
        *,
        token: str = "xoxb-test-token",
        signing_secret: str = "test-signing-secret",
        known_channels: set[str] | None = None,
        known_users: set[str] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.token = token
        self.signing_secret = signing_secret
        self.known_channels = known_channels  # None accepts every channel
        self.known_users = known_users  # None: every user id exists
        self._ims: dict[str, str] = {}  # user id -> their open IM (D…) with the bot
        self.calls: list[SlackCall] = []
        self.uploads: list[SlackUpload] = []
        self._files: dict[str, SlackUpload] = {}
        self._base: str | None = None
        self._clock = clock
        self._messages: dict[tuple[str, str], dict[str, Any]] = {}
        # Channel id -> name, for conversations.list: known_channels plus every name posted to.
        self._names: dict[str, str] = {
            self.channel_id(k): k.removeprefix("#")
            for k in known_channels or () if not _CHANNEL_ID.fullmatch(k)
        }
        self._failures: dict[str, list[_Failure]] = {}
        self._down = False
        self._last_ts_us = 0
        self._runner: web.AppRunner | None = None
        self._url: str | None = None
        self._methods: dict[str, _Handler] = {
            "auth.test": self._auth_test,
            "chat.postMessage": self._post_message,
            "chat.update": self._update,
            "conversations.history": self._history,
            "conversations.list": self._list,
            "conversations.open": self._open,
            "files.getUploadURLExternal": self._get_upload_url,
            "files.completeUploadExternal": self._complete_upload,
        }

    # -- lifecycle -------------------------------------------------------------------------
    async def start(self) -> None:
        if self._runner is not None:
            raise RuntimeError("FakeSlack is already started")
        app = web.Application(client_max_size=4 * 1024 * 1024)
        app.router.add_route("*", "/api/{method}", self._handle)
        app.router.add_post("/upload/v1/{file_id}", self._upload)
        self._runner, base = await serve(app)
        self._base = base
        self._url = base + "/api/"

    @property
    def url(self) -> str:
        """Base URL ending in ``/api/``, for ``AsyncWebClient(base_url=...)``."""
        if self._url is None:
            raise RuntimeError("FakeSlack has no URL yet: await start() or use 'async with'")
        return self._url

    # -- scripting and inspection ---------------------------------------------------------
    def fail_next(
        self,
        method: str,
        *,
        status: int = 200,
        error: str | None = None,
        retry_after: int | None = None,
        times: int = 1,
    ) -> None:
        """Answer the next ``times`` calls of ``method`` (``"*"``: any method) with a failure.

        429 without ``error`` answers ``ratelimited``; 5xx without ``error`` answers an HTML edge
        page; ``Retry-After`` is sent only when ``retry_after`` is given."""
        if times < 1 or not 100 <= status <= 599:
            raise ValueError("fail_next needs times >= 1 and an HTTP status in 100..599")
        self._failures.setdefault(method, []).append(_Failure(status, error, retry_after, times))

    def go_down(self) -> None:
        """Every request gets HTTP 503 until come_up()."""
        self._down = True

    def come_up(self) -> None:
        self._down = False

    @property
    def posted(self) -> list[SlackCall]:
        """The chat.postMessage calls that were answered ok:true."""
        return [c for c in self.calls if c.method == "chat.postMessage" and c.ok]

    def messages(self, channel: str | None = None) -> list[dict[str, Any]]:
        """Posted messages in post order, as they stand now (after chat.update)."""
        wanted = None if channel is None else self.channel_id(channel)
        keys = ("ts", "channel", "text", "blocks", "metadata", "thread_ts")
        return [
            {k: copy.deepcopy(m[k]) for k in keys}
            for m in self._messages.values()
            if wanted is None or m["channel"] == wanted
        ]

    @staticmethod
    def channel_id(channel: str) -> str:
        """The stable fake id for a channel name (``#alerts`` or ``alerts``), or of the direct
        message with a user id (``U…``); channel ids pass through."""
        if _CHANNEL_ID.fullmatch(channel):
            return channel
        if _USER_ID.fullmatch(channel):
            return "D" + hashlib.sha256(f"im:{channel}".encode()).hexdigest()[:10].upper()
        name = channel.removeprefix("#")
        return "C" + hashlib.sha256(name.encode()).hexdigest()[:10].upper()

    def sign(self, body: bytes, *, timestamp: int | None = None) -> dict[str, str]:
        return sign_slack_request(body, signing_secret=self.signing_secret, timestamp=timestamp)

    # The deadline is part of this helper's contract, hence the timeout parameter.
    async def wait_for(
        self,
        predicate: Callable[[list[SlackCall]], bool],
        *,
        timeout: float,  # noqa: ASYNC109
    ) -> None:
        """Poll until ``predicate(calls)`` holds; TimeoutError lists what was recorded."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not predicate(list(self.calls)):
            if loop.time() >= deadline:
                raise TimeoutError(
                    f"FakeSlack: condition not met within {timeout}s; "
                    f"{len(self.calls)} call(s) recorded:\n{self._describe_calls()}"
                )
            await asyncio.sleep(0.01)

    def _describe_calls(self) -> str:
        if not self.calls:
            return "  (none)"
        lines = []
        for i, call in enumerate(self.calls, 1):
            outcome = "ok" if call.ok else f"{call.status} {call.error}"
            shown = {k: call.params[k] for k in ("channel", "ts", "text") if k in call.params}
            lines.append(
                f"  {i}. {call.method} {json.dumps(shown, default=str)[:200]} -> {outcome}"
            )
        return "\n".join(lines)

    # -- HTTP -------------------------------------------------------------------------------
    async def _handle(self, request: web.Request) -> web.StreamResponse:
        at = time.monotonic()
        params, parse_error = await wire.read_params(request)
        token = wire.bearer_token(request)
        form_token = params.pop("token", None)  # Slack also takes the token as a POST parameter
        if token is None and isinstance(form_token, str):
            token = form_token
        call = SlackCall(request.match_info["method"], params, token, at)
        response = self._answer(call, parse_error)
        self.calls.append(call)
        return response

    def _answer(self, call: SlackCall, parse_error: wire.WireError | None) -> web.Response:
        if self._down:
            return _edge_page(call, 503, None)
        failure = self._take_failure(call.method)
        if failure is not None:
            if failure.status >= 500 and failure.error is None:
                return _edge_page(call, failure.status, failure.retry_after)
            error = failure.error or ("ratelimited" if failure.status == 429 else "internal_error")
            headers = (
                {} if failure.retry_after is None else {"Retry-After": str(failure.retry_after)}
            )
            return _json(call, failure.status, {"ok": False, "error": error}, headers)
        try:
            if parse_error is not None:
                raise parse_error
            handler = self._methods.get(call.method)
            if handler is None:
                raise wire.WireError("unknown_method", req_method=call.method)
            if not call.token:
                raise wire.WireError("not_authed")
            if not hmac.compare_digest(call.token.encode(), self.token.encode()):
                raise wire.WireError("invalid_auth")
            body = {"ok": True, **handler(call.params)}
        except wire.WireError as exc:
            body = {"ok": False, "error": exc.error, **exc.extra}
        return _json(call, 200, body, {})

    def _take_failure(self, method: str) -> _Failure | None:
        for key in (method, "*"):
            queue = self._failures.get(key)
            if queue:
                failure = queue[0]
                failure.remaining -= 1
                if failure.remaining == 0:
                    queue.pop(0)
                return failure
        return None

    # -- methods ----------------------------------------------------------------------------
    def _auth_test(self, params: dict[str, Any]) -> dict[str, Any]:
        return {
            "url": "https://escucha-test.slack.com/",
            "team": "Escucha Test",
            "user": "escucha",
            "team_id": wire.TEAM_ID,
            "user_id": wire.USER_ID,
            "bot_id": wire.BOT_ID,
            "is_enterprise_install": False,
        }

    def _post_message(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._resolve_channel(params.get("channel"), names_allowed=True)
        text, blocks = params.get("text"), params.get("blocks")
        if not text and not blocks and not params.get("attachments"):
            raise wire.WireError("no_text")
        wire.check_text(text)
        wire.check_blocks(blocks)
        metadata = wire.check_metadata(params.get("metadata"))
        thread_ts = params.get("thread_ts") or None
        ts = self._next_ts()
        message: dict[str, Any] = {
            "channel": channel,
            "ts": ts,
            "text": str(text or ""),
            "blocks": blocks or [],
            "metadata": metadata or None,
            "thread_ts": None if thread_ts is None else str(thread_ts),
            "reply_broadcast": wire.truthy(params.get("reply_broadcast")),
            "edited": None,
        }
        self._messages[(channel, ts)] = message
        raw = str(params.get("channel"))
        if _USER_ID.fullmatch(raw):
            self._ims[raw] = channel  # posting to a user opens the IM, as Slack does
        elif not _CHANNEL_ID.fullmatch(raw):
            self._names[channel] = raw.removeprefix("#")
        return {"channel": channel, "ts": ts, "message": wire.message_json(message, metadata=True)}

    def _update(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._resolve_channel(params.get("channel"), names_allowed=False)
        ts = params.get("ts")
        if not ts:
            raise wire.WireError(
                "invalid_arguments",
                response_metadata={"messages": ["[ERROR] missing required field: ts"]},
            )
        message = self._messages.get((channel, str(ts)))
        if message is None:
            raise wire.WireError("message_not_found")
        if "text" not in params and "blocks" not in params and "attachments" not in params:
            raise wire.WireError("no_text")
        wire.check_text(params.get("text"))
        wire.check_blocks(params.get("blocks"))
        metadata = wire.check_metadata(params.get("metadata"))
        if "text" in params:
            message["text"] = str(params["text"] or "")
            # Slack drops previous blocks when text arrives without blocks.
            message["blocks"] = params.get("blocks") or []
        elif "blocks" in params:
            message["blocks"] = params["blocks"] or []
        if "metadata" in params:  # an empty object removes it, absence keeps it
            message["metadata"] = metadata
        if "blocks" not in params:  # Slack shows "edited" only for text updates
            message["edited"] = {"user": wire.USER_ID, "ts": self._next_ts()}
        shown = wire.message_json(message, metadata=True)
        return {"channel": channel, "ts": message["ts"], "text": message["text"], "message": shown}

    def _history(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._resolve_channel(params.get("channel"), names_allowed=False)
        oldest = wire.ts_micros(params.get("oldest"), "invalid_ts_oldest", default=0)
        latest = wire.ts_micros(params.get("latest"), "invalid_ts_latest", default=1 << 62)
        inclusive = wire.truthy(params.get("inclusive"))
        try:
            limit = min(max(int(params.get("limit") or 100), 1), 999)
        except (TypeError, ValueError):
            raise wire.WireError("invalid_limit") from None
        cursor_us = wire.decode_cursor(params.get("cursor"))
        in_channel = [m for m in self._messages.values() if m["channel"] == channel]
        visible = []
        for m in in_channel:
            us = wire.ts_micros(m["ts"], "", default=0)
            is_reply = m["thread_ts"] not in (None, m["ts"]) and not m["reply_broadcast"]
            in_window = oldest <= us <= latest if inclusive else oldest < us < latest
            if not is_reply and in_window and (cursor_us is None or us <= cursor_us):
                visible.append((us, m))
        visible.sort(key=lambda pair: pair[0], reverse=True)
        include_metadata = wire.truthy(params.get("include_all_metadata"))
        page = [
            wire.message_json(m, metadata=include_metadata, siblings=in_channel)
            for _, m in visible[:limit]
        ]
        has_more = len(visible) > limit
        next_cursor = wire.encode_cursor(visible[limit][0]) if has_more else ""
        return {
            "messages": page,
            "has_more": has_more,
            "pin_count": 0,
            "response_metadata": {"next_cursor": next_cursor},
        }

    def _list(self, params: dict[str, Any]) -> dict[str, Any]:
        # Slack's order is its own; by id here, so cursors are stable. Every listed
        # channel is public, unarchived and has the bot as a member.
        try:
            limit = min(max(int(params.get("limit") or 100), 1), 1000)
        except (TypeError, ValueError):
            raise wire.WireError("invalid_limit") from None
        after = _decode_channel_cursor(params.get("cursor"))
        ids = sorted(i for i in self._names if after is None or i > after)
        page = ids[:limit]
        next_cursor = _encode_channel_cursor(page[-1]) if len(ids) > limit else ""
        return {
            "channels": [
                {"id": i, "name": self._names[i], "is_channel": True, "is_group": False,
                 "is_im": False, "is_private": False, "is_archived": False, "is_member": True,
                 "context_team_id": wire.TEAM_ID}
                for i in page
            ],
            "response_metadata": {"next_cursor": next_cursor},
        }

    def _open(self, params: dict[str, Any]) -> dict[str, Any]:
        # Slack answers the IM's id only (return_im would add the whole object), and says
        # no_op/already_open when the IM was open already.
        users = [u.strip() for u in str(params.get("users") or "").split(",") if u.strip()]
        if not users:
            if params.get("channel") in self._ims.values():
                return {"no_op": True, "already_open": True,
                        "channel": {"id": params["channel"]}}
            raise wire.WireError("channel_not_found" if params.get("channel")
                                 else "users_list_not_supplied")
        if len(users) > 1:
            raise wire.WireError("invalid_arguments", response_metadata={
                "messages": ["[ERROR] FakeSlack opens 1:1 direct messages only"]})
        user = users[0]
        if not _USER_ID.fullmatch(user) or (self.known_users is not None
                                            and user not in self.known_users):
            raise wire.WireError("user_not_found")
        if user in self._ims:
            return {"no_op": True, "already_open": True, "channel": {"id": self._ims[user]}}
        self._ims[user] = self.channel_id(user)
        return {"channel": {"id": self._ims[user]}}

    def _get_upload_url(self, params: dict[str, Any]) -> dict[str, Any]:
        filename = params.get("filename")
        try:
            length = int(params.get("length"))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            length = -1
        if not filename or length < 1:
            missing = "filename" if not filename else "length"
            raise wire.WireError("invalid_arguments", response_metadata={
                "messages": [f"[ERROR] missing or invalid required field: {missing}"]})
        file_id = "F" + hashlib.sha256(f"{filename}:{len(self._files)}".encode()
                                       ).hexdigest()[:10].upper()
        alt = params.get("alt_txt")
        self._files[file_id] = SlackUpload(file_id=file_id, filename=str(filename),
                                           length=length, alt_txt=None if alt is None
                                           else str(alt))
        return {"upload_url": f"{self._base}/upload/v1/{file_id}", "file_id": file_id}

    async def _upload(self, request: web.Request) -> web.Response:
        # The upload URL is pre-signed: Slack wants no token here. Raw bytes or a multipart
        # form with the file in any field are both accepted, as Slack's upload host does.
        pending = self._files.get(request.match_info["file_id"])
        if pending is None:
            return web.Response(status=404, text="Not Found")
        if request.content_type.startswith("multipart/"):
            form = await request.post()
            field = next((v for v in form.values() if isinstance(v, web.FileField)), None)
            data = field.file.read() if field is not None else b""
        else:
            data = await request.read()
        pending.content = data
        return web.Response(status=200, text=f"OK - {len(data)}")

    def _complete_upload(self, params: dict[str, Any]) -> dict[str, Any]:
        files = params.get("files")
        if isinstance(files, str):  # form-encoded callers send a JSON string
            try:
                files = json.loads(files)
            except ValueError:
                raise wire.WireError("invalid_arguments") from None
        if not isinstance(files, list) or not files or not all(
                isinstance(f, dict) and f.get("id") for f in files):
            raise wire.WireError("invalid_arguments", response_metadata={
                "messages": ["[ERROR] missing required field: files"]})
        found = [self._files.get(str(f["id"])) for f in files]
        # A file never announced, never uploaded or already shared cannot be completed.
        if any(u is None or u.content is None or u.shared for u in found):
            raise wire.WireError("file_not_found")
        channel = None
        if params.get("channel_id"):
            channel = self._resolve_channel(params.get("channel_id"), names_allowed=False)
        comment = str(params.get("initial_comment") or "")
        wire.check_text(comment)
        ts = self._next_ts()
        shared = []
        for spec, upload in zip(files, found, strict=True):
            assert upload is not None
            upload.title = str(spec.get("title") or upload.filename)
            upload.channel, upload.initial_comment, upload.ts = channel, comment, ts
            self.uploads.append(upload)
            shared.append({"id": upload.file_id, "name": upload.filename,
                           "title": upload.title, "size": len(upload.content or b""),
                           "channels": [channel] if channel else []})
        if channel is not None:
            self._messages[(channel, ts)] = {
                "channel": channel, "ts": ts, "text": comment, "blocks": [], "metadata": None,
                "thread_ts": None, "reply_broadcast": False, "edited": None,
                "files": [f["id"] for f in shared]}
        return {"files": shared}

    # -- helpers ----------------------------------------------------------------------------
    def _resolve_channel(self, raw: Any, *, names_allowed: bool) -> str:
        # chat.update and conversations.* take ids only: a name there is channel_not_found.
        if not isinstance(raw, str) or not raw:
            raise wire.WireError("channel_not_found")
        if _USER_ID.fullmatch(raw):
            # Only chat.postMessage takes a user id; everything else wants the IM's D… id.
            if not names_allowed or (self.known_users is not None
                                     and raw not in self.known_users):
                raise wire.WireError("channel_not_found")
            return self.channel_id(raw)
        if raw in self._ims.values():
            return raw
        is_id = bool(_CHANNEL_ID.fullmatch(raw))
        if not is_id and not names_allowed:
            raise wire.WireError("channel_not_found")
        channel = self.channel_id(raw)
        if self.known_channels is not None:
            known = {k.removeprefix("#") for k in self.known_channels}
            known |= {self.channel_id(k) for k in self.known_channels}
            if channel not in known and raw.removeprefix("#") not in known:
                raise wire.WireError("channel_not_found")
        return channel

    def _next_ts(self) -> str:
        # Slack ts are wall-clock based and unique per channel; keep them strictly increasing.
        self._last_ts_us = max(int(self._clock() * 1_000_000), self._last_ts_us + 1)
        return f"{self._last_ts_us // 1_000_000}.{self._last_ts_us % 1_000_000:06d}"


def _encode_channel_cursor(channel_id: str) -> str:
    return base64.b64encode(f"next_channel:{channel_id}".encode()).decode()


def _decode_channel_cursor(cursor: Any) -> str | None:
    if not cursor:
        return None
    try:
        prefix, _, value = base64.b64decode(str(cursor), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        raise wire.WireError("invalid_cursor") from None
    if prefix != "next_channel" or not value:
        raise wire.WireError("invalid_cursor")
    return value


def _json(
    call: SlackCall, status: int, body: dict[str, Any], headers: dict[str, str]
) -> web.Response:
    call.status, call.response = status, body
    return web.json_response(body, status=status, headers=headers)


def _edge_page(call: SlackCall, status: int, retry_after: int | None) -> web.Response:
    call.status, call.response = status, None
    reason = next((s.phrase for s in HTTPStatus if s.value == status), "Error")
    headers = {} if retry_after is None else {"Retry-After": str(retry_after)}
    page = _EDGE_PAGE.format(status=status, reason=reason)
    return web.Response(status=status, text=page, content_type="text/html", headers=headers)
