"""A recording fake of a Teams Workflows webhook: a real aiohttp server on 127.0.0.1, port 0.

Like the real trigger URL (``…/workflows/<id>/triggers/manual/paths/invoke?api-version=…&
sig=<signature>``) it carries its credential in the query; a wrong or missing ``sig`` gets the
Logic Apps ``{"error": {"code", "message"}}`` 401, unknown paths get an HTML page echoing the
full URL (so a leak through an error would show), and an accepted card gets ``202`` with an
empty body. The payload is checked against the shape Teams accepts: ``type: message``,
Adaptive Card attachments, a card ``type``/``version``, known body elements and
``Action.OpenUrl`` actions with an http(s) ``url``; anything else is a 400, as the workflow's
"Post card" step would refuse it. :func:`markdown_in` says what a ``TextBlock`` would render
as Markdown, so tests can prove mention text stays inert.
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

__all__ = ["FakeTeams", "TeamsPost", "markdown_in", "text_of"]

CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"
_VERSIONS = {"1.0", "1.1", "1.2", "1.3", "1.4", "1.5"}
_ELEMENTS = {"TextBlock", "RichTextBlock", "FactSet", "ColumnSet", "Container", "Image",
             "ImageSet", "ActionSet"}
_ACTIONS = {"Action.OpenUrl", "Action.Submit", "Action.ShowCard", "Action.ToggleVisibility",
            "Action.Execute"}
_TEXTRUN_KEYS = {"type", "text", "weight", "size", "color", "isSubtle", "italic",
                 "strikethrough", "highlight", "underline", "fontType", "selectAction"}
# Markdown (and date functions) a TextBlock would render, when not backslash-escaped.
_UNESCAPED = r"(?<!\\)"
_MARKDOWN = {
    "bold": re.compile(_UNESCAPED + r"\*\*"),
    "italic": re.compile(r"(?:^|\s)" + _UNESCAPED + r"_\S"),
    "link": re.compile(_UNESCAPED + r"\[[^\]]*" + _UNESCAPED + r"\]" + _UNESCAPED + r"\("),
    "list": re.compile(r"(?m)^\s*" + _UNESCAPED + r"[-*+]\s"),
    "at": re.compile(_UNESCAPED + r"<at>"),
    "date": re.compile(_UNESCAPED + r"\{" + _UNESCAPED + r"\{"),
    "broadcast": re.compile(r"@(everyone|channel|here)\b", re.IGNORECASE),
}


def markdown_in(text: str) -> list[str]:
    """Which Markdown constructs (or pings) ``text`` would produce in a TextBlock."""
    return [name for name, pattern in _MARKDOWN.items() if pattern.search(text)]


def text_of(card: dict[str, Any]) -> list[tuple[str, str]]:
    """(element type, text) for every TextBlock and TextRun of a card, in order."""
    out: list[tuple[str, str]] = []
    for element in card.get("body", []):
        if element.get("type") == "TextBlock":
            out.append(("TextBlock", element["text"]))
        elif element.get("type") == "RichTextBlock":
            out += [("TextRun", run["text"] if isinstance(run, dict) else run)
                    for run in element["inlines"]]
    return out


class _Invalid(Exception):
    pass


def _check_card(card: Any) -> None:
    if not isinstance(card, dict) or card.get("type") != "AdaptiveCard":
        raise _Invalid("attachment content must be an object with type 'AdaptiveCard'")
    if card.get("version") not in _VERSIONS:
        raise _Invalid(f"unsupported Adaptive Card version {card.get('version')!r}")
    body = card.get("body", [])
    if not isinstance(body, list) or not body:
        raise _Invalid("card body must be a non-empty array")
    for element in body:
        kind = element.get("type") if isinstance(element, dict) else None
        if kind not in _ELEMENTS:
            raise _Invalid(f"unknown element type {kind!r}")
        if kind == "TextBlock" and not isinstance(element.get("text"), str):
            raise _Invalid("TextBlock.text is required")
        if kind == "RichTextBlock":
            if card["version"] < "1.2":
                raise _Invalid("RichTextBlock needs version 1.2")
            inlines = element.get("inlines")
            if not isinstance(inlines, list) or not inlines:
                raise _Invalid("RichTextBlock.inlines is required")
            for run in inlines:
                if isinstance(run, str):
                    continue
                if not isinstance(run, dict) or run.get("type") != "TextRun" \
                        or not isinstance(run.get("text"), str):
                    raise _Invalid("RichTextBlock.inlines holds TextRuns with text")
                if set(run) - _TEXTRUN_KEYS:
                    raise _Invalid(f"unknown TextRun properties {sorted(set(run) - _TEXTRUN_KEYS)}")
    for action in card.get("actions", []):
        kind = action.get("type") if isinstance(action, dict) else None
        if kind not in _ACTIONS:
            raise _Invalid(f"unknown action type {kind!r}")
        if kind == "Action.OpenUrl":
            url = action.get("url")
            if not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https"):
                raise _Invalid("Action.OpenUrl needs an http(s) url")
            if not isinstance(action.get("title"), str) or not action["title"]:
                raise _Invalid("an action needs a title")


def _check_message(data: Any) -> list[dict[str, Any]]:
    if not isinstance(data, dict) or data.get("type") != "message":
        raise _Invalid("body must be an object with type 'message'")
    attachments = data.get("attachments")
    if not isinstance(attachments, list) or not attachments:
        raise _Invalid("attachments must be a non-empty array")
    cards = []
    for attachment in attachments:
        if not isinstance(attachment, dict) or attachment.get("contentType") != CONTENT_TYPE:
            raise _Invalid(f"attachment contentType must be {CONTENT_TYPE}")
        _check_card(attachment.get("content"))
        cards.append(attachment["content"])
    return cards


@dataclass
class TeamsPost:
    """One request the fake answered, refused ones included."""

    path: str
    status: int
    body: bytes
    cards: list[dict[str, Any]] = field(default_factory=list)  # when accepted
    refusal: str | None = None
    at: float = field(default_factory=time.monotonic)

    @property
    def json(self) -> Any:
        return json.loads(self.body)


class FakeTeams(LocalServer):
    """A workflow webhook; ``url`` is the full trigger URL, signature included."""

    def __init__(self, *, sig: str | None = None, workflow: str = "0f3c9a1e7b2d4c5a") -> None:
        self.sig = sig or secrets.token_urlsafe(32)
        self.workflow = workflow
        self.posts: list[TeamsPost] = []
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
        return f"/workflows/{self.workflow}/triggers/manual/paths/invoke"

    @property
    def url(self) -> str:
        if self._base is None:
            raise RuntimeError("no URL yet: await start() or use 'async with'")
        return (f"{self._base}{self.path}?api-version=2016-06-01&sp=%2Ftriggers%2Fmanual"
                f"%2Frun&sv=1.0&sig={self.sig}")

    def fail_next(self, status: int, *, retry_after: int | None = None, times: int = 1,
                  code: str | None = None) -> None:
        """Answer the next ``times`` requests with ``status`` (and the error ``code``)."""
        self._failures.add(status, retry_after=retry_after, times=times, kind=code)

    def go_down(self) -> None:
        self._down = True

    @property
    def cards(self) -> list[dict[str, Any]]:
        """Every card accepted, in order."""
        return [card for post in self.posts for card in post.cards]

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        post = TeamsPost(path=request.path, status=0, body=body)
        self.posts.append(post)

        def answer(status: int, error: tuple[str, str] | None = None,
                   headers: dict[str, str] | None = None) -> web.Response:
            post.status = status
            if error is None:
                return web.Response(status=status, headers=headers)
            post.refusal = error[1]
            return web.json_response({"error": {"code": error[0], "message": error[1]}},
                                     status=status, headers=headers)

        if request.method != "POST" or request.path != self.path:
            post.status = 404
            # Echo the whole URL, query (and signature) included, as some gateways do.
            return web.Response(status=404, content_type="text/html",
                                text=f"<html>Not found: {request.url}</html>")
        if self._down:
            return answer(503, ("ServiceUnavailable", f"try again ({request.query_string})"))
        failure = self._failures.take()
        if failure is not None:
            status, headers, kind = failure
            return answer(status, (kind or ("Throttled" if status == 429 else "Failed"),
                                   f"failure for sig={request.query.get('sig')}"), headers)
        if not secrets.compare_digest(request.query.get("sig", "").encode(), self.sig.encode()):
            return answer(401, ("DirectApiAuthorizationRequired",
                                "The request must be authenticated: the signature is invalid."))
        try:
            post.cards = _check_message(json.loads(body))
        except (ValueError, _Invalid) as exc:
            return answer(400, ("TriggerInputSchemaMismatch", str(exc)))
        return answer(202)
