"""Microsoft Teams through a Workflows webhook (or a legacy incoming webhook): an Adaptive Card.

Wire format, one POST per notification to the workflow's URL::

    {"type": "message",
     "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive",
                      "content": {"type": "AdaptiveCard", "version": "1.4", "body": [...],
                                  "actions": [{"type": "Action.OpenUrl", ...}]}}]}

The workflow ("Post to a channel when a webhook request is received") answers 202 Accepted
and posts the card; it returns no message id, so a card cannot be updated or read back, and
acknowledgements and resolutions arrive as new cards.

The buttons are ``Action.OpenUrl`` to escucha's signed links: *Acknowledge* and *Resolve* open
the confirmation page, whose button performs the action, and *Open incident* opens the
console. Untrusted text (summary, sample authors and texts) goes into ``TextRun`` elements of
a ``RichTextBlock``, which render no Markdown at all; a ``TextBlock`` (Markdown subset) only
ever holds text escaped with :func:`notifiers.text.teams_escape`. A card cannot mention
anyone without ``msteams.entities``, which escucha never sends.

The workflow URL carries its signature (``sig=…``): it is the credential. It is a
``SecretStr``, and errors and logs say ``teams <name>``, never the URL.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import aiohttp
from pydantic import ConfigDict, Field, SecretStr, field_validator

from notifiers.base import ChannelSpec, Receipt, not_configured
from notifiers.card import CardContent, card_content
from notifiers.errors import DeliveryError
from notifiers.http import LazySession, check_secret_url, configured, error_detail, post, refused
from notifiers.stories import watch_label
from notifiers.text import no_broadcast, teams_escape
from streams.core.links import LinkSigner
from streams.core.records import Notification
from streams.i18n import EN, Lang
from streams.i18n.fields import ChannelLocale

__all__ = ["CARD_VERSION", "CONTENT_TYPE", "TeamsNotifier", "TeamsSettings", "build_message"]

log = logging.getLogger(__name__)

CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"
#: 1.4: what Teams renders on desktop, web and mobile alike (RichTextBlock needs 1.2).
CARD_VERSION = "1.4"
_COLOR = {"critical": "Attention", "warning": "Warning", "info": "Default"}
_HINTS = {
    400: "the workflow refused the card: its trigger must be 'When a Teams webhook request "
         "is received' and its action post the attachments as a card",
    401: "the URL's signature was refused: copy the workflow's URL again",
    403: "the URL's signature was refused: copy the workflow's URL again",
    404: "no workflow at that URL (deleted or turned off): update notifiers.teams.webhooks",
    413: "the card is too large for Teams (about 28 KB)",
}


class TeamsSettings(ChannelLocale):
    """The Teams channel: named workflow webhooks that notifications target by name."""

    # pydantic prints a rejected field's raw input: here, a URL that is a credential.
    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    webhooks: dict[str, SecretStr] = Field(
        default_factory=dict,
        description="Name (what routing rules and notifications name as the target) → the "
        "URL of a Teams Workflows webhook ('When a Teams webhook request is received', or a "
        "legacy incoming webhook). Secret: the URL carries its signature.",
    )
    timeout_s: float = Field(default=10, gt=0, le=300,
                             description="Seconds for one request, connect to answer.")

    @field_validator("webhooks")
    @classmethod
    def _https(cls, value: dict[str, SecretStr]) -> dict[str, SecretStr]:
        return {name: check_secret_url(url) for name, url in value.items()}


def _run(text: str, **style: Any) -> dict[str, Any]:
    # A TextRun renders its text literally (no Markdown); the @-word joiner still applies so
    # a copy-paste of the card into a message cannot ping a team.
    return {"type": "TextRun", "text": no_broadcast(text), **style}


def _rich(*runs: dict[str, Any], **props: Any) -> dict[str, Any]:
    return {"type": "RichTextBlock", "inlines": list(runs), **props}


def build_card(content: CardContent) -> dict[str, Any]:
    """The Adaptive Card (the attachment's ``content``) for a card's content."""
    color = "Good" if content.state == "resolved" else _COLOR.get(content.severity, "Default")
    body: list[dict[str, Any]] = [
        {"type": "TextBlock", "text": teams_escape(content.title), "weight": "Bolder",
         "size": "Medium", "color": color, "wrap": True},
    ]
    if content.status:
        body.append({"type": "TextBlock", "text": teams_escape(content.status),
                     "weight": "Bolder", "wrap": True, "spacing": "None"})
    body.append({"type": "TextBlock", "text": teams_escape(content.details),
                 "isSubtle": True, "wrap": True, "spacing": "None"})
    body.append(_rich(_run(content.summary)))
    for line in content.digest:
        body.append(_rich(_run(f"• {line}"), spacing="None"))
    for i, line in enumerate(content.playbook):
        body.append(_rich(_run(line, weight="Bolder" if i == 0 else "Default"),
                          spacing="Medium" if i == 0 else "None"))
    for i, sample in enumerate(content.samples):
        body.append(_rich(_run(f"@{sample.author}: ", weight="Bolder"), _run(sample.text),
                          separator=i == 0, spacing="Small"))
    actions: list[dict[str, Any]] = []
    for button in content.buttons:
        action = {"type": "Action.OpenUrl", "title": button.label, "url": button.url}
        if button.primary:
            action["style"] = "positive"
        actions.append(action)
    first = next((s.url for s in content.samples if s.url), None)
    if first:
        actions.append({"type": "Action.OpenUrl", "url": first,
                        "title": content.lang._("View first mention")})
    card: dict[str, Any] = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard", "version": CARD_VERSION, "body": body,
        "msteams": {"width": "Full"},
    }
    if actions:
        card["actions"] = actions
    return card


def build_message(notification: Notification, *, watch_name: str,
                  links: LinkSigner | None, lang: Lang = EN) -> dict[str, Any]:
    """The whole JSON body POSTed to the workflow for ``notification``."""
    content = card_content(notification, watch_name=watch_name, links=links, channel="teams",
                           lang=lang)
    return {"type": "message", "attachments": [
        {"contentType": CONTENT_TYPE, "content": build_card(content)}]}


class TeamsNotifier:
    """POSTs an Adaptive Card for each notification to the workflow it targets."""

    channel = "teams"

    def __init__(
        self,
        *,
        settings: TeamsSettings,
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
                                channel="teams", kind="webhook")
        secret = url.get_secret_value()
        answer = await post(self._http.get(), secret, json_body=self.render(notification),
                            label=label, timeout_s=self._settings.timeout_s)
        if answer.ok:
            # A legacy connector answers 200 with its failure in the body when throttled.
            if b"HTTP error 429" in answer.body:
                raise DeliveryError(f"{label}: throttled by Teams (429 in a 200 answer)",
                                    retryable=True)
            log.debug("%s: %s %s posted", label, notification.kind, notification.id)
            return Receipt(detail=f"{label}: HTTP {answer.status}")
        raise refused(label, answer, hints=_HINTS, what=notification.id,
                      detail=error_detail(answer.body, ("code", "message"), secret))

    async def find_sent(self, notification: Notification) -> Receipt | None:
        # A workflow webhook can neither be read back nor given an idempotency key.
        return None

    async def close(self) -> None:
        await self._http.close()


CHANNEL = ChannelSpec(
    name="teams", settings=TeamsSettings, default_on=False, updatable=True,
    target_type=str, target_help="Webhook name (notifiers.teams.webhooks).",
    build=lambda s, ctx: TeamsNotifier(settings=s, links=ctx.links,
                                       watch_names=ctx.watch_names),
    problem=not_configured("teams", known="webhooks", what="Teams webhook"),
)
