"""A recording fake of an ntfy server's publish API: a real aiohttp server on 127.0.0.1:0.

It speaks ntfy's wire format (https://docs.ntfy.sh/publish/): JSON POST/PUT to the root URL,
or a plain body POST/PUT to ``/<topic>`` with ``X-Title``/``X-Priority``/``X-Tags``/
``X-Click``/``X-Actions`` headers (and their aliases); ``Authorization: Bearer <token>`` when
built with a token; ntfy's ``{"code", "http", "error"}`` errors; the published message as JSON.
``press`` performs an action button's HTTP request the way the ntfy app does on a tap.

Sequences (ntfy 2.16+, "Updating notifications"): a message published with a sequence id
(``sequence_id`` in JSON, ``X-Sequence-ID``/``Sequence-ID``/``SID``, or ``/<topic>/<sid>``)
replaces the notification of the same sequence on the phone; one without is its own sequence,
named by its message id, which a later message may use as its sequence id. ``messages`` keeps
every publish, as ntfy's cache does; ``shown(topic)`` is what a subscribed phone displays.
``FakeNtfy(sequences=False)`` is a server older than 2.16: it ignores sequence ids.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web

from tests.fakes._server import LocalServer, serve

__all__ = ["FakeNtfy", "NtfyRequest", "press"]

_TOPIC = re.compile(r"[-_A-Za-z0-9]{1,64}")
# Stricter than ntfy may be: ids like its own message ids and topic names, the only shape
# escucha sends, so anything else reaching this fake is a bug worth a 400.
_SEQUENCE = re.compile(r"[-_A-Za-z0-9]{1,64}")
_PRIORITIES = {"min": 1, "low": 2, "default": 3, "high": 4, "max": 5, "urgent": 5}
_ACTIONS = ("view", "http", "broadcast", "copy")
_MESSAGE_LIMIT = 4096  # bytes; a real server would make a longer body an attachment
_EXPIRY_S = 12 * 3600
_ALIASES = {
    "title": ("X-Title", "Title", "ti", "t"),
    "priority": ("X-Priority", "Priority", "prio", "p"),
    "tags": ("X-Tags", "Tags", "Tag", "ta"),
    "click": ("X-Click", "Click"),
    "actions": ("X-Actions", "Actions", "Action"),
    "sequence_id": ("X-Sequence-ID", "Sequence-ID", "SID"),
}
_ERRORS = {  # status -> (ntfy error code, text), as ntfy words them
    400: (40000, "invalid request"),
    401: (40101, "unauthorized"),
    403: (40301, "forbidden"),
    413: (41301, "invalid request: message too large"),
    429: (42901, "limit reached: too many requests"),
    500: (50001, "internal server error"),
    502: (50201, "bad gateway"),
    503: (50301, "service unavailable"),
}


@dataclass
class NtfyRequest:
    """One request the fake received, refused ones included."""

    method: str
    path: str
    token: str | None  # the bearer token sent, if any
    status: int
    message: dict[str, Any] | None  # the published message, when accepted


@dataclass
class _Failure:
    status: int
    retry_after: int | None
    remaining: int


class _BadRequest(Exception):
    def __init__(self, error: str, status: int = 400) -> None:
        super().__init__(error)
        self.error = error
        self.status = status


def _error_body(status: int, error: str | None = None) -> dict[str, Any]:
    code, text = _ERRORS.get(status, (status * 100, "error"))
    return {"code": code, "http": status, "error": error or text,
            "link": "https://ntfy.sh/docs/publish/"}


def _split(text: str, sep: str) -> list[str]:
    """Split on ``sep`` outside single or double quotes (ntfy's simple action format)."""
    parts, current, quote = [], [], ""
    for ch in text:
        if quote:
            if ch == quote:
                quote = ""
            current.append(ch)
        elif ch in "'\"":
            quote = ch
            current.append(ch)
        elif ch == sep:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return [p.strip() for p in parts if p.strip()]


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value


def parse_actions_header(value: str) -> list[dict[str, Any]]:
    """``X-Actions`` in ntfy's simple format (``http, Label, url, method=POST; view, ...``)
    or as a JSON array."""
    if value.lstrip().startswith("["):
        data = json.loads(value)
        if not isinstance(data, list):
            raise _BadRequest("invalid request: actions invalid")
        return data
    actions = []
    for chunk in _split(value, ";"):
        action: dict[str, Any] = {}
        for part in _split(chunk, ","):
            key, sep, val = part.partition("=")
            if sep and re.fullmatch(r"[a-z]+(?:\.[A-Za-z0-9_-]+)?", key.strip()):
                key, val = key.strip(), _unquote(val.strip())
                if key.startswith(("headers.", "extras.")):
                    group, _, name = key.partition(".")
                    action.setdefault(group, {})[name] = val
                elif key == "clear":
                    action["clear"] = val.lower() in ("true", "yes", "1")
                else:
                    action[key] = val
            else:  # positional: action, label, then url
                slot = next((k for k in ("action", "label", "url") if k not in action), None)
                if slot is None:
                    raise _BadRequest("invalid request: actions invalid")
                action[slot] = _unquote(part)
        actions.append(action)
    return actions


def _check_actions(actions: Any) -> list[dict[str, Any]]:
    if not isinstance(actions, list) or len(actions) > 3:
        raise _BadRequest("invalid request: actions invalid, only 3 actions allowed")
    out = []
    for raw in actions:
        if not isinstance(raw, dict) or raw.get("action") not in _ACTIONS:
            raise _BadRequest("invalid request: action type invalid")
        action = dict(raw)
        if not isinstance(action.get("label"), str) or not action["label"]:
            raise _BadRequest("invalid request: action label missing")
        if action["action"] in ("view", "http") and not action.get("url"):
            raise _BadRequest("invalid request: action url missing")
        if action["action"] == "http":
            action.setdefault("method", "POST")
        action["id"] = secrets.token_hex(5)
        out.append(action)
    return out


def _priority(value: Any) -> int:
    if value in (None, ""):
        return 0
    if isinstance(value, str):
        value = _PRIORITIES.get(value.strip().lower(), value.strip())
    try:
        prio = int(value)
    except (TypeError, ValueError):
        raise _BadRequest("invalid request: priority invalid") from None
    if not 1 <= prio <= 5:
        raise _BadRequest("invalid request: priority invalid")
    return prio


class FakeNtfy(LocalServer):
    """ntfy's publish endpoints on a loopback port; accepted messages land in ``messages``."""

    def __init__(self, *, token: str | None = None, sequences: bool = True) -> None:
        self.token = token
        self.sequences = sequences
        self.messages: list[dict[str, Any]] = []
        self.requests: list[NtfyRequest] = []
        self._failures: list[_Failure] = []
        self._runner: web.AppRunner | None = None
        self._url: str | None = None

    # -- lifecycle -------------------------------------------------------------------------
    async def start(self) -> None:
        if self._runner is not None:
            raise RuntimeError("FakeNtfy is already started")
        app = web.Application(client_max_size=1024 * 1024)
        app.router.add_route("POST", "/", self._publish_json)
        app.router.add_route("PUT", "/", self._publish_json)
        app.router.add_route("POST", "/{topic}", self._publish_plain)
        app.router.add_route("PUT", "/{topic}", self._publish_plain)
        app.router.add_route("POST", "/{topic}/{sequence_id}", self._publish_plain)
        app.router.add_route("PUT", "/{topic}/{sequence_id}", self._publish_plain)
        self._runner, base = await serve(app)
        self._url = base

    @property
    def url(self) -> str:
        """The server's root URL (no trailing slash), for ``NtfySettings(base_url=...)``."""
        if self._url is None:
            raise RuntimeError("FakeNtfy has no URL yet: await start() or use 'async with'")
        return self._url

    # -- scripting and inspection ---------------------------------------------------------
    def fail_next(self, status: int, *, retry_after: int | None = None, times: int = 1) -> None:
        """Answer the next ``times`` publishes with ``status`` and ntfy's error JSON (before
        authentication, as ntfy's rate limiter does); ``Retry-After`` only when given."""
        if times < 1 or not 400 <= status <= 599:
            raise ValueError("fail_next needs times >= 1 and an HTTP error status")
        self._failures.append(_Failure(status, retry_after, times))

    async def press(self, message: dict[str, Any], label: str) -> int:
        return await press(message, label)

    def shown(self, topic: str) -> list[dict[str, Any]]:
        """The notifications a phone subscribed to ``topic`` shows: the latest message of each
        sequence, in the order the sequences began."""
        latest: dict[str, dict[str, Any]] = {}
        for message in self.messages:
            if message["topic"] == topic:
                latest[message.get("sequence_id") or message["id"]] = message
        return list(latest.values())

    # -- HTTP -------------------------------------------------------------------------------
    async def _publish_json(self, request: web.Request) -> web.Response:
        async def parse() -> dict[str, Any]:
            try:
                data = json.loads(await request.read())
            except ValueError:
                raise _BadRequest("invalid request: request body must be message JSON") from None
            if not isinstance(data, dict):
                raise _BadRequest("invalid request: request body must be message JSON")
            return data

        return await self._handle(request, parse)

    async def _publish_plain(self, request: web.Request) -> web.Response:
        async def parse() -> dict[str, Any]:
            def header(name: str) -> str | None:
                for alias in _ALIASES[name]:
                    value = request.headers.get(alias) or request.query.get(alias.lower())
                    if value:
                        return value
                return None

            body = await request.read()
            try:
                text = body.decode("utf-8")
            except UnicodeDecodeError:
                raise _BadRequest("invalid request: message must be UTF-8") from None
            data: dict[str, Any] = {"topic": request.match_info["topic"], "message": text}
            if (sid := request.match_info.get("sequence_id") or header("sequence_id")):
                data["sequence_id"] = sid
            if (title := header("title")) is not None:
                data["title"] = title
            if (prio := header("priority")) is not None:
                data["priority"] = prio
            if (tags := header("tags")) is not None:
                data["tags"] = [t.strip() for t in tags.split(",") if t.strip()]
            if (click := header("click")) is not None:
                data["click"] = click
            if (actions := header("actions")) is not None:
                try:
                    data["actions"] = parse_actions_header(actions)
                except ValueError:
                    raise _BadRequest("invalid request: actions invalid") from None
            return data

        return await self._handle(request, parse)

    async def _handle(
        self, request: web.Request, parse: Callable[[], Awaitable[dict[str, Any]]]
    ) -> web.Response:
        token = _bearer(request)
        call = NtfyRequest(request.method, request.path, token, 200, None)
        self.requests.append(call)
        failure = self._take_failure()
        if failure is not None:
            headers = {} if failure.retry_after is None else {
                "Retry-After": str(failure.retry_after)}
            return self._error(call, failure.status, headers=headers)
        if self.token is not None and (token is None or not secrets.compare_digest(
                token.encode(), self.token.encode())):
            return self._error(call, 401)
        try:
            message = self._accept(await parse())
        except _BadRequest as exc:
            return self._error(call, exc.status, exc.error)
        call.message = message
        self.messages.append(message)
        return web.json_response(message)

    def _error(self, call: NtfyRequest, status: int, error: str | None = None,
               headers: dict[str, str] | None = None) -> web.Response:
        call.status = status
        return web.json_response(_error_body(status, error), status=status, headers=headers)

    def _take_failure(self) -> _Failure | None:
        if not self._failures:
            return None
        failure = self._failures[0]
        failure.remaining -= 1
        if failure.remaining == 0:
            self._failures.pop(0)
        return failure

    def _accept(self, data: dict[str, Any]) -> dict[str, Any]:
        topic = data.get("topic")
        if not isinstance(topic, str) or not _TOPIC.fullmatch(topic):
            raise _BadRequest("invalid request: topic invalid")
        text = data.get("message")
        if text is not None and not isinstance(text, str):
            raise _BadRequest("invalid request: message must be a string")
        if text and len(text.encode("utf-8")) > _MESSAGE_LIMIT:
            raise _BadRequest("invalid request: message too large", status=413)
        tags = data.get("tags") or []
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise _BadRequest("invalid request: tags invalid")
        now = int(time.time())
        message: dict[str, Any] = {
            "id": secrets.token_urlsafe(9)[:12], "time": now, "expires": now + _EXPIRY_S,
            "event": "message", "topic": topic, "message": text or "triggered",
        }
        # ntfy leaves unset fields out of the message (omitempty).
        if data.get("title"):
            message["title"] = str(data["title"])
        if prio := _priority(data.get("priority")):
            message["priority"] = prio
        if tags:
            message["tags"] = tags
        if data.get("click"):
            message["click"] = str(data["click"])
        if data.get("actions"):
            message["actions"] = _check_actions(data["actions"])
        sequence = data.get("sequence_id") if self.sequences else None
        if sequence is not None:
            if not isinstance(sequence, str) or not _SEQUENCE.fullmatch(sequence):
                raise _BadRequest("invalid request: sequence ID invalid")
            message["sequence_id"] = sequence
        return message


def _bearer(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    return (value.strip() or None) if scheme.lower() == "bearer" else None


async def press(message: dict[str, Any], label: str) -> int:
    """Tap the action button ``label`` of a published message, as the ntfy app would:
    an ``http`` action sends its request (POST unless it says otherwise), a ``view`` action
    opens (GETs) its URL. Returns the HTTP status of the answer."""
    action = next((a for a in message.get("actions", []) if a.get("label") == label), None)
    if action is None:
        labels = [a.get("label") for a in message.get("actions", [])]
        raise LookupError(f"no action labelled {label!r}; the message has {labels}")
    if action["action"] == "http":
        method = str(action.get("method") or "POST").upper()
        headers = {str(k): str(v) for k, v in (action.get("headers") or {}).items()}
        body = str(action.get("body") or "").encode()
    elif action["action"] == "view":
        method, headers, body = "GET", {}, b""
    else:
        raise ValueError(f"a {action['action']!r} action makes no HTTP request")
    async with aiohttp.ClientSession() as session, session.request(
        method, action["url"], headers=headers, data=body, allow_redirects=False
    ) as resp:
        await resp.read()
        return resp.status
