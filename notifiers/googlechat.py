"""Google Chat through a space's incoming webhook: a ``cardsV2`` card with link buttons.

Wire format, one POST per notification to the webhook URL (which carries ``key`` and
``token``), with ``messageReplyOption=REPLY_MESSAGE_FALLBACK_TO_NEW_THREAD`` and
``requestId=messageId=client-<hash of the notification id>`` added::

    {"fallbackText": "...", "thread": {"threadKey": "escucha-<incident id>"},
     "cardsV2": [{"cardId": "...", "card": {"header": {"title", "subtitle"},
                  "sections": [{"widgets": [{"textParagraph": {"text"}} |
                                            {"decoratedText": {...}} |
                                            {"buttonList": {"buttons": [
                                                {"text", "onClick": {"openLink": {"url"}}}]}}]}]}}]}

Every notification about one incident goes to one thread (its ``threadKey``), so the
acknowledgement and the resolution appear under the alert. Chat answers with the created
message; its ``name`` (``spaces/…/messages/…``) is the receipt's id.

A webhook cannot read a space back, so a restarted worker cannot ask whether a notification
left "pending" was posted. The ids make the resend harmless instead: Chat answers a repeated
``requestId`` with the message it created, and a taken ``messageId`` with 409
``ALREADY_EXISTS``, which counts as delivered. (Both are parameters of ``spaces.messages.
create``, which a webhook calls; that a webhook honours them is documented, not tested
against Google here: ``message_ids: false`` turns them off.)

Card text is Chat's HTML subset: untrusted text is escaped with
:func:`notifiers.text.chat_escape` (``&``, ``<``, ``>``), so it can hold no tag, no link and no
``<users/all>`` mention; nothing goes into the message's ``text`` field, whose Markdown could.
The buttons open escucha's signed links (*Acknowledge*, *Resolve*: a confirmation page) and the
console. Chat accepts about one message per second per space and answers 429 beyond it.

The webhook URL is the credential: a ``SecretStr``; errors and logs say ``googlechat <name>``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import aiohttp
from pydantic import ConfigDict, Field, SecretStr, field_validator

from notifiers.base import ChannelSpec, Receipt, not_configured
from notifiers.card import CardContent, card_content
from notifiers.http import LazySession, check_secret_url, configured, error_detail, post, refused
from notifiers.stories import watch_label
from notifiers.text import chat_escape, console_safe
from streams.core.links import LinkSigner
from streams.core.records import Notification
from streams.i18n import EN, Lang
from streams.i18n.fields import ChannelLocale

__all__ = ["GoogleChatNotifier", "GoogleChatSettings", "build_message", "message_id",
           "thread_url"]

log = logging.getLogger(__name__)

_REPLY_OPTION = "REPLY_MESSAGE_FALLBACK_TO_NEW_THREAD"
_CARD_ID = re.compile(r"[^A-Za-z0-9_.-]")
_SPACE = re.compile(r"/spaces/([A-Za-z0-9_-]+)/messages/?$")
_COLOR = {"critical": "#d93025", "warning": "#e37400", "info": "#1a73e8"}
_HINTS = {
    400: "Google Chat refused the message",
    401: "the webhook's key or token was refused: copy the webhook URL again",
    403: "the webhook's key or token was refused, or the app was removed from the space",
    404: "no webhook at that URL (deleted, or the space is gone): update "
         "notifiers.googlechat.webhooks",
    429: "Chat allows about one message per second per space",
}


class GoogleChatSettings(ChannelLocale):
    """The Google Chat channel: named space webhooks that notifications target by name."""

    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    webhooks: dict[str, SecretStr] = Field(
        default_factory=dict,
        description="Name (what routing rules and notifications name as the target) → the "
        "space's incoming webhook URL (https://chat.googleapis.com/v1/spaces/…/messages?"
        "key=…&token=…). Secret: key and token are in the URL.",
    )
    timeout_s: float = Field(default=10, gt=0, le=300,
                             description="Seconds for one request, connect to answer.")
    message_ids: bool = Field(
        default=True,
        description="Send each message with a requestId and a messageId derived from the "
        "notification id, so that a resend (a retry after a timeout, a worker restarted "
        "between posting and recording) is not posted twice. Set false only if Chat refuses "
        "them for your webhook.",
    )

    @field_validator("webhooks")
    @classmethod
    def _https(cls, value: dict[str, SecretStr]) -> dict[str, SecretStr]:
        return {name: check_secret_url(url) for name, url in value.items()}


def message_id(notification: Notification) -> str:
    """The ``messageId`` (and ``requestId``) of a notification's message: ``client-`` and 48
    hex digits of its id's SHA-256, so the same on every retry and after a restart, and within
    Chat's rule (63 characters at most, lowercase letters, digits and hyphens)."""
    return "client-" + hashlib.sha256(notification.id.encode()).hexdigest()[:48]


def thread_url(url: str, *, message_id: str | None = None) -> str:
    """The webhook URL asking Chat to reply in the thread named by the body's ``threadKey``
    (a URL that already says how to reply keeps its choice) and, given ``message_id``, to
    create the message idempotently: ``requestId`` returns the message an earlier request
    with that id created, and ``messageId`` names it, so that a repeat of it is refused with
    409 ``ALREADY_EXISTS``. Any ids already in the URL are replaced: a fixed one would make
    every later message look like a repeat."""
    parts = urlsplit(url)
    ids = {"requestId", "messageId"}
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
             if message_id is None or k not in ids]
    if not any(k == "messageReplyOption" for k, _ in query):
        query.append(("messageReplyOption", _REPLY_OPTION))
    if message_id is not None:
        query += [("requestId", message_id), ("messageId", message_id)]
    return urlunsplit(parts._replace(query=urlencode(query)))


def _alias(url: str, message_id: str) -> str | None:
    """``spaces/<space>/messages/<messageId>``: a message's name by its client-assigned id."""
    found = _SPACE.search(urlsplit(url).path)
    return f"spaces/{found.group(1)}/messages/{message_id}" if found else None


def _text(text: str) -> dict[str, Any]:
    return {"textParagraph": {"text": text}}


def build_card(content: CardContent, *, card_id: str) -> dict[str, Any]:
    """One ``cardsV2`` entry for a card's content."""
    color = "#188038" if content.state == "resolved" else _COLOR.get(content.severity, "")
    head = chat_escape(content.status or content.state)
    widgets: list[dict[str, Any]] = [
        _text(f'<font color="{color}"><b>{head}</b></font>' if color else f"<b>{head}</b>"),
        _text(chat_escape(content.summary)),
        {"decoratedText": {"text": chat_escape(content.details), "wrapText": True}},
    ]
    widgets += [_text("• " + chat_escape(line)) for line in content.digest]
    sections: list[dict[str, Any]] = [{"widgets": widgets}]
    if content.playbook:
        sections.append({"header": content.lang._("Playbook"),
                         "widgets": [_text(chat_escape(line)) for line in content.playbook]})
    if content.samples:
        sections.append({"header": content.lang._("Sample mentions"), "widgets": [
            {"decoratedText": {
                "text": f"<b>@{chat_escape(s.author)}</b>: {chat_escape(s.text)}",
                "wrapText": True,
                # Only a plain http(s) URL (safe_url) may become the sample's link.
                **({"button": {"text": content.lang._("Open"),
                               "onClick": {"openLink": {"url": s.url}}}}
                   if s.url else {}),
            }} for s in content.samples]})
    if content.buttons:
        sections.append({"widgets": [{"buttonList": {"buttons": [
            {"text": b.label, "onClick": {"openLink": {"url": b.url}}}
            for b in content.buttons]}}]})
    return {"cardId": card_id, "card": {
        # Header fields are plain text: only the watch name and detector, cleaned, go there.
        "header": {"title": content.title, "subtitle": content.details},
        "sections": sections}}


def build_message(notification: Notification, *, watch_name: str,
                  links: LinkSigner | None, lang: Lang = EN) -> dict[str, Any]:
    """The JSON body POSTed to the webhook for ``notification``."""
    inc = notification.incident
    content = card_content(notification, watch_name=watch_name, links=links,
                           channel="googlechat", lang=lang)
    fallback = content.title + (f" — {content.status}" if content.status else "")
    return {
        # Shown in phone notifications; plain text, and without '<' no mention can form.
        "fallbackText": fallback.replace("<", "\u2039").replace(">", "\u203a"),
        "thread": {"threadKey": f"escucha-{inc.id}"},
        "cardsV2": [build_card(content, card_id=_CARD_ID.sub("-", f"escucha-{inc.id}")[:64])],
    }


class GoogleChatNotifier:
    """POSTs a card for each notification to the space webhook it targets, threaded per
    incident."""

    channel = "googlechat"

    def __init__(
        self,
        *,
        settings: GoogleChatSettings,
        links: LinkSigner | None = None,
        watch_names: Mapping[str, str] | None = None,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        self._settings = settings
        self._links = links
        self._watch_names = dict(watch_names or {})
        self._http = LazySession(session)

    def render(self, notification: Notification) -> dict[str, Any]:
        """The JSON that ``send`` would POST (also for previews and tests)."""
        inc = notification.incident
        return build_message(notification, links=self._links,
                             watch_name=watch_label(inc, self._watch_names),
                             lang=self._settings.lang_for(notification.target))

    async def send(self, notification: Notification) -> Receipt:
        url, label = configured(self._settings.webhooks, notification.target,
                                channel="googlechat", kind="webhook")
        secret = url.get_secret_value()
        mid = message_id(notification) if self._settings.message_ids else None
        answer = await post(self._http.get(), thread_url(secret, message_id=mid),
                            json_body=self.render(notification), label=label,
                            timeout_s=self._settings.timeout_s)
        if answer.ok:
            external_id: str | None = None
            try:
                data = json.loads(answer.body)
                if isinstance(data, dict) and isinstance(data.get("name"), str):
                    external_id = console_safe(data["name"], limit=200)
            except ValueError:
                pass  # 200 means posted; without a name the receipt just has no id
            log.debug("%s: %s %s posted as %s", label, notification.kind, notification.id,
                      external_id)
            return Receipt(external_id=external_id, detail=f"{label}: HTTP {answer.status}")
        if mid is not None and answer.status == 409 and \
                error_detail(answer.body, ("status",), secret) == "ALREADY_EXISTS":
            # Our messageId is taken in this space: an earlier send of this very
            # notification was posted (its answer lost to a crash or a timeout).
            log.info("%s: %s was posted before; not posted again", label, notification.id)
            return Receipt(external_id=_alias(secret, mid),
                           detail=f"{label}: already posted (HTTP 409)")
        raise refused(label, answer, hints=_HINTS, what=notification.id,
                      detail=error_detail(answer.body, ("status", "message"), secret))

    async def find_sent(self, notification: Notification) -> Receipt | None:
        # Reading a space needs a Chat app's credentials, which a webhook does not have; a
        # resend is made harmless by its requestId and messageId instead (see send).
        return None

    async def close(self) -> None:
        await self._http.close()


CHANNEL = ChannelSpec(
    name="googlechat", settings=GoogleChatSettings, default_on=False, updatable=True,
    target_type=str, target_help="Webhook name (notifiers.googlechat.webhooks).",
    build=lambda s, ctx: GoogleChatNotifier(settings=s, links=ctx.links,
                                            watch_names=ctx.watch_names),
    problem=not_configured("googlechat", known="webhooks", what="Google Chat webhook"),
)
