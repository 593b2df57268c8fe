"""What a chat card says about a notification, before any markup: shared by Teams and Google
Chat so both tell the same story, each escaping it for its own format.

Every string here is cleaned and bounded but *not* escaped: summaries, sample authors and
texts are what strangers wrote, and each renderer must escape them (or put them where its
format has no markup) itself. Buttons carry only plain http(s) URLs (``safe_url``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from urllib.parse import quote

from notifiers.followup import change_of
from notifiers.playbook import playbook_lines
from notifiers.stories import summary_for
from notifiers.text import clean, console_safe, safe_url
from streams.core.links import LinkSigner
from streams.core.records import Incident, Notification
from streams.i18n import EN, N_, Lang

__all__ = ["Button", "CardContent", "Sample", "card_content"]

log = logging.getLogger(__name__)

_TITLE_CHARS = 200
_SUMMARY_CHARS = 1000
_LINE_CHARS = 200
_SAMPLE_CHARS = 300
_MAX_SAMPLES = 5
_MAX_DIGEST = 10
_MAX_PLAYBOOK = 5


@dataclass(frozen=True, kw_only=True)
class Sample:
    author: str
    text: str
    url: str | None  # a plain http(s) URL, or None


@dataclass(frozen=True, kw_only=True)
class Button:
    label: str
    url: str
    primary: bool = False


@dataclass(frozen=True, kw_only=True)
class CardContent:
    title: str           # "[CRITICAL] Acme: negative spike"
    status: str          # "escalated, level 2" / "acknowledged by ana" / "" for a fresh alert
    details: str         # "Watch: Acme · state: open · level 1"
    summary: str
    severity: str
    state: str
    digest: list[str]
    playbook: list[str]
    samples: list[Sample]
    buttons: list[Button]
    lang: Lang = EN      # the card's language, for the renderer's own headings


def _status(notification: Notification, lang: Lang) -> str:
    _ = lang._
    inc = notification.incident
    if inc.state == "resolved":
        return _("resolved by {who}").format(who=inc.resolved_by) if inc.resolved_by \
            else _("resolved")
    if inc.state == "acknowledged":
        return _("acknowledged by {who}").format(who=inc.acked_by) if inc.acked_by \
            else _("acknowledged")
    escalated = _("escalated, level {level}")
    if notification.kind == "escalate":
        return escalated.format(level=notification.level)
    if notification.kind == "reminder":
        return _("not acknowledged yet")
    if notification.kind == "digest":
        count = len(notification.digest)
        return lang.tr.ngettext("{count} more notification rolled up",
                                "{count} more notifications rolled up", count).format(count=count)
    if notification.kind == "update":
        # An update right after an escalation tells an earlier level it escalated.
        return (escalated.format(level=inc.level) if change_of(notification) == "escalated"
                else _("updated"))
    return ""


#: Button labels, marked here and translated where the card is built.
_ACK, _RESOLVE, _OPEN = N_("Acknowledge"), N_("Resolve"), N_("Open incident")


def _buttons(inc: Incident, links: LinkSigner | None, channel: str, lang: Lang) -> list[Button]:
    if links is None:
        return []
    wanted: list[tuple[str, str]] = []
    if inc.state == "open":
        wanted.append((_ACK, "ack"))
    if inc.state != "resolved":
        wanted.append((_RESOLVE, "resolve"))
    out: list[Button] = []
    for label, action in wanted:
        # The link opens escucha's confirmation page; the action itself needs the POST
        # made from that page, so link previews and scanners change nothing.
        url = safe_url(links.url(inc.id, action))
        if url is None:
            log.warning("%s: %s link for %s is not a plain http(s) URL; check api.public_url",
                        channel, action, inc.id)
            continue
        out.append(Button(label=lang._(label), url=url, primary=action == "ack"))
    base = links.base_url.rstrip("/")
    page = safe_url(f"{base}/console/incidents/{quote(inc.id, safe='')}")
    if page:
        out.append(Button(label=lang._(_OPEN), url=page))
    return out


def card_content(notification: Notification, *, watch_name: str, links: LinkSigner | None,
                 channel: str, lang: Lang = EN) -> CardContent:
    """The card for ``notification`` in ``lang``; ``links`` is a ``LinkSigner`` or None (no
    buttons). Mention text and names stay as written."""
    inc = notification.incident
    _ = lang._
    title = console_safe(f"[{lang.label(inc.severity).upper()}] {watch_name}: "
                         f"{inc.detector.replace('_', ' ')}", limit=_TITLE_CHARS)
    digest = ([console_safe(d, limit=_LINE_CHARS) for d in notification.digest[:_MAX_DIGEST]]
              if notification.kind == "digest" else [])
    playbook: list[str] = []
    if inc.playbook is not None:
        book = playbook_lines(inc.playbook, inc.language, templates=0)
        playbook = [console_safe(line, limit=_LINE_CHARS) for line in book[:_MAX_PLAYBOOK]]
    samples = [Sample(author=console_safe(s.author, limit=64),
                      text=clean(s.text, limit=_SAMPLE_CHARS), url=safe_url(s.url))
               for s in inc.samples[:_MAX_SAMPLES]]
    return CardContent(
        title=title, status=console_safe(_status(notification, lang), limit=_LINE_CHARS),
        details=console_safe(_("Watch: {watch} · state: {state} · level {level}").format(
            watch=watch_name, state=lang.label(inc.state), level=notification.level),
            limit=_LINE_CHARS),
        summary=clean(summary_for(inc, lang), limit=_SUMMARY_CHARS), severity=inc.severity,
        state=inc.state, digest=digest, playbook=playbook, samples=samples,
        buttons=_buttons(inc, links, channel, lang), lang=lang)
