"""A recording fake of a Google Chat space's incoming webhook: real aiohttp on 127.0.0.1:0.

``POST /v1/spaces/<space>/messages?key=<key>&token=<token>`` like the real one: a wrong key or
token is a 401 in Google's ``{"error": {"code", "message", "status"}}`` form, a malformed
message a 400 ``INVALID_ARGUMENT`` (unknown fields, a ``cardsV2`` entry without ``cardId`` or
``card``, a header without ``title``, a section without widgets, a widget that is not exactly
one known kind, a ``buttonList`` button without ``text`` or an ``onClick.openLink.url`` that is
not http(s), more than 100 widgets). An accepted message is answered with the created Message
(``name``, ``thread.name``, ``space``); with ``messageReplyOption=
REPLY_MESSAGE_FALLBACK_TO_NEW_THREAD`` messages with the same ``thread.threadKey`` share a
thread. Idempotency as ``spaces.messages.create`` documents it: a ``requestId`` seen before
returns the message it created (nothing new is posted); a ``messageId`` must be ``client-``
and up to 56 lowercase letters, digits or hyphens (else 400), names the message
(``clientAssignedMessageId``) and, once taken in the space, is refused with 409
``ALREADY_EXISTS``. :func:`html_hits` says which live markup a card text would render.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from tests.fakes._server import Failures, LocalServer, serve

__all__ = ["ChatPost", "FakeGoogleChat", "card_texts", "html_hits"]

_MESSAGE_FIELDS = {"text", "cardsV2", "thread", "fallbackText", "accessoryWidgets",
                   "privateMessageViewer", "clientAssignedMessageId"}
_WIDGETS = {"textParagraph", "decoratedText", "buttonList", "divider", "image", "columns",
            "grid", "selectionInput", "textInput", "dateTimePicker", "chipList"}
_MAX_WIDGETS = 100
_STATES = {409: "ALREADY_EXISTS", 429: "RESOURCE_EXHAUSTED", 503: "UNAVAILABLE"}
_CLIENT_ID = re.compile(r"client-[a-z0-9-]{1,56}")
_HTML = {
    "tag": re.compile(r"<(?!/?(b|i|u|s|br|font)\b)[a-zA-Z/!]"),  # anything but our own markup
    "mention": re.compile(r"<users/"),
    "link": re.compile(r"<a\s", re.IGNORECASE),
    "broadcast": re.compile(r"@(all|everyone|here|channel)\b", re.IGNORECASE),
}


def html_hits(text: str) -> list[str]:
    """What live markup (tags other than b/i/u/s/br/font, mentions, links, pings) ``text``
    holds, as Chat's card HTML would render it."""
    return [name for name, pattern in _HTML.items() if pattern.search(text)]


def card_texts(card: dict[str, Any]) -> list[str]:
    """Every formatted text of a ``cardsV2`` card (paragraphs, decorated texts)."""
    out = []
    for section in card["card"].get("sections", []):
        for widget in section["widgets"]:
            if "textParagraph" in widget:
                out.append(widget["textParagraph"]["text"])
            if "decoratedText" in widget:
                out.append(widget["decoratedText"]["text"])
    return out


class _Invalid(Exception):
    pass


def _check_url(url: Any, where: str) -> None:
    if not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https"):
        raise _Invalid(f"Invalid URL at '{where}'")


def _check_button(button: Any, where: str) -> None:
    if not isinstance(button, dict) or not isinstance(button.get("text"), str):
        raise _Invalid(f"button text required at '{where}'")
    click = button.get("onClick")
    if not isinstance(click, dict) or len(click) != 1:
        raise _Invalid(f"onClick needs exactly one of openLink, action at '{where}'")
    if "openLink" in click:
        _check_url(click["openLink"].get("url"), f"{where}.on_click.open_link.url")


def _check_cards(cards: Any) -> int:
    if not isinstance(cards, list):
        raise _Invalid("cardsV2 must be a list")
    count = 0
    for i, entry in enumerate(cards):
        where = f"message.cards_v2[{i}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("cardId"), str) \
                or not isinstance(entry.get("card"), dict):
            raise _Invalid(f"cardId and card are required at '{where}'")
        card = entry["card"]
        header = card.get("header")
        if header is not None and not isinstance(header.get("title"), str):
            raise _Invalid(f"header.title is required at '{where}.card.header'")
        sections = card.get("sections")
        if not isinstance(sections, list) or not sections:
            raise _Invalid(f"sections are required at '{where}.card'")
        for j, section in enumerate(sections):
            widgets = section.get("widgets") if isinstance(section, dict) else None
            if not isinstance(widgets, list) or not widgets:
                raise _Invalid(f"widgets are required at '{where}.card.sections[{j}]'")
            for k, widget in enumerate(widgets):
                w = f"{where}.card.sections[{j}].widgets[{k}]"
                kinds = set(widget) & _WIDGETS if isinstance(widget, dict) else set()
                if len(kinds) != 1 or set(widget) - _WIDGETS - {"horizontalAlignment"}:
                    raise _Invalid(f"a widget must be exactly one known kind at '{w}'")
                count += 1
                if "textParagraph" in widget and not isinstance(
                        widget["textParagraph"].get("text"), str):
                    raise _Invalid(f"text is required at '{w}.text_paragraph'")
                if "decoratedText" in widget:
                    decorated = widget["decoratedText"]
                    if not isinstance(decorated.get("text"), str):
                        raise _Invalid(f"text is required at '{w}.decorated_text'")
                    if "button" in decorated:
                        _check_button(decorated["button"], f"{w}.decorated_text.button")
                if "buttonList" in widget:
                    buttons = widget["buttonList"].get("buttons")
                    if not isinstance(buttons, list) or not buttons:
                        raise _Invalid(f"buttons are required at '{w}.button_list'")
                    for n, button in enumerate(buttons):
                        _check_button(button, f"{w}.button_list.buttons[{n}]")
    if count > _MAX_WIDGETS:
        raise _Invalid(f"a card holds at most {_MAX_WIDGETS} widgets")
    return count


@dataclass
class ChatPost:
    path: str
    query: dict[str, str]
    status: int
    body: bytes
    message: dict[str, Any] | None = None  # the message answered, when accepted
    created: bool = False  # False for a repeated requestId: the earlier message came back
    refusal: str | None = None
    at: float = field(default_factory=time.monotonic)

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class FakeGoogleChat(LocalServer):
    key: str = field(default_factory=lambda: "AIzaSy" + secrets.token_urlsafe(24))
    token: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    space: str = "AAAAx1y2z3"
    posts: list[ChatPost] = field(default_factory=list)
    threads: dict[str, str] = field(default_factory=dict)  # threadKey -> thread name
    by_request: dict[str, dict[str, Any]] = field(default_factory=dict)  # requestId -> message
    by_client_id: dict[str, dict[str, Any]] = field(default_factory=dict)  # messageId -> msg

    def __post_init__(self) -> None:
        self._failures = Failures()
        self._down = False
        self._runner: web.AppRunner | None = None
        self._base: str | None = None

    async def start(self) -> None:
        app = web.Application(client_max_size=1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner, self._base = await serve(app)

    @property
    def path(self) -> str:
        return f"/v1/spaces/{self.space}/messages"

    @property
    def url(self) -> str:
        if self._base is None:
            raise RuntimeError("no URL yet: await start() or use 'async with'")
        return f"{self._base}{self.path}?key={self.key}&token={self.token}"

    def fail_next(self, status: int, *, retry_after: int | None = None, times: int = 1,
                  state: str | None = None) -> None:
        """Answer the next ``times`` requests with ``status`` (and Google's ``state``, by
        default the one that status usually carries)."""
        self._failures.add(status, retry_after=retry_after, times=times, kind=state)

    def go_down(self) -> None:
        self._down = True

    @property
    def messages(self) -> list[dict[str, Any]]:
        """Every message created, in order (a repeated requestId creates none)."""
        return [p.message for p in self.posts if p.message is not None and p.created]

    def _error(self, post: ChatPost, status: int, state: str, message: str,
               headers: dict[str, str] | None = None) -> web.Response:
        post.status, post.refusal = status, message
        return web.json_response({"error": {"code": status, "message": message,
                                            "status": state}}, status=status, headers=headers)

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        post = ChatPost(path=request.path, query=dict(request.query), status=0, body=body)
        self.posts.append(post)
        if request.method != "POST" or request.path != self.path:
            post.status = 404
            return web.Response(status=404, content_type="text/html",
                                text=f"<html>The requested URL {request.url} was not found</html>")
        if self._down:
            return self._error(post, 503, "UNAVAILABLE", "The service is currently unavailable.")
        failure = self._failures.take()
        if failure is not None:
            status, headers, kind = failure
            state = kind or _STATES.get(status, "INTERNAL")
            # Echo the token, as a careless proxy would: the notifier must scrub it.
            return self._error(post, status, state,
                               f"failed for token={request.query.get('token')}", headers)
        if not (secrets.compare_digest(request.query.get("key", "").encode(), self.key.encode())
                and secrets.compare_digest(request.query.get("token", "").encode(),
                                           self.token.encode())):
            return self._error(post, 401, "UNAUTHENTICATED",
                               "Request had invalid authentication credentials.")
        try:
            data = json.loads(body)
            if not isinstance(data, dict):
                raise _Invalid("Invalid JSON payload received.")
            unknown = set(data) - _MESSAGE_FIELDS
            if unknown:
                raise _Invalid(f'Invalid JSON payload received. Unknown name "{min(unknown)}"')
            if not data.get("text") and not data.get("cardsV2"):
                raise _Invalid("Message cannot be empty: text or cardsV2 is required.")
            _check_cards(data.get("cardsV2", []))
        except (ValueError, _Invalid) as exc:
            return self._error(post, 400, "INVALID_ARGUMENT", str(exc))
        client_id = request.query.get("messageId")
        if client_id is not None and not _CLIENT_ID.fullmatch(client_id):
            return self._error(post, 400, "INVALID_ARGUMENT",
                               "Invalid custom message ID: it must start with 'client-' and "
                               "contain up to 63 lowercase letters, digits and hyphens.")
        request_id = request.query.get("requestId")
        if request_id and request_id in self.by_request:
            post.status, post.message = 200, self.by_request[request_id]
            return web.json_response(post.message)
        if client_id is not None and client_id in self.by_client_id:
            return self._error(post, 409, "ALREADY_EXISTS",
                               f"Message with custom ID {client_id} already exists.")
        key = (data.get("thread") or {}).get("threadKey")
        reply = request.query.get("messageReplyOption")
        if key and reply in ("REPLY_MESSAGE_FALLBACK_TO_NEW_THREAD", "REPLY_MESSAGE_OR_FAIL"):
            thread = self.threads.setdefault(key, f"spaces/{self.space}/threads/"
                                             f"{secrets.token_hex(6)}")
        else:  # without a reply option Chat starts a new thread and ignores the key
            thread = f"spaces/{self.space}/threads/{secrets.token_hex(6)}"
        message_id = secrets.token_hex(8)
        message = {**data, "name": f"spaces/{self.space}/messages/{message_id}",
                   "sender": {"name": "users/114022495153014004089", "type": "BOT"},
                   "space": {"name": f"spaces/{self.space}"}, "thread": {"name": thread}}
        if client_id is not None:
            message["clientAssignedMessageId"] = client_id
            self.by_client_id[client_id] = message
        if request_id:
            self.by_request[request_id] = message
        post.status, post.message, post.created = 200, message, True
        return web.json_response(message)
