"""The email of a notification: subject, threading headers, plain text and HTML.

Everything that comes from an incident (summary, sample text, author, watch name, who acked)
was written by strangers or copied from them, so it is cleaned, bounded and, in the HTML part,
escaped; the only links are ``safe_url`` ones; header values are one line each.

Threading: the first message about an incident to a target starts a thread; every later one
(acknowledged, escalated, resolved, updated, a reminder) is a reply to it: ``In-Reply-To`` is
the first message's ``Message-ID`` (``update_of``, set by the deliver stage from the receipt),
``References`` the incident's root and that id, the subject ``Re:`` the first one's, and the
first line of the body says what changed (acknowledged by whom and how, escalated, resolved
or auto-resolved), which is what a client's preview of the thread shows.
"""

from __future__ import annotations

import hashlib
import re
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime

from notifiers.followup import status_line
from notifiers.playbook import playbook_lines
from notifiers.stories import story_line, summary_for
from notifiers.text import clean, console_safe, html_escape, safe_url
from streams.core.records import Incident, Notification
from streams.i18n import EN, Lang

__all__ = ["Letterhead", "build_message", "message_id", "reply_to", "thread_root"]

_WIDTH = 76            # wrap width of the text part (and of escaped HTML text lines)
_MAX_SAMPLES = 5
_SAMPLE_CHARS = 500
_SUMMARY_CHARS = 2000
_DIGEST_LINES = 50
_SUBJECT_CHARS = 200
#: A Message-ID escucha could have written (``message_id``), and nothing that could end a
#: header line or hide a second id: the only shape ``In-Reply-To`` is ever given.
_MESSAGE_ID = re.compile(r"<[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,200}@[A-Za-z0-9.-]{1,253}>")


@dataclass(frozen=True, kw_only=True)
class Letterhead:
    """What the notifier knows beyond the notification: sender, watch name, action links."""

    from_addr: str
    domain: str
    watch_name: str
    actions: Sequence[tuple[str, str]] = ()  # (label, safe URL)
    lang: Lang = EN  # escucha's own words and times; mention text stays as written


def message_id(notification_id: str, *, domain: str) -> str:
    """The Message-ID of a notification: the same for every attempt, unique per notification."""
    digest = hashlib.sha256(notification_id.encode("utf-8", "replace")).hexdigest()[:32]
    return f"<escucha.{digest}@{domain}>"


def thread_root(incident_id: str, domain: str) -> str:
    """The id every message about one incident references first, so clients group them even
    when the first message's own id is not known (a fallback, an older ledger)."""
    digest = hashlib.sha256(incident_id.encode("utf-8", "replace")).hexdigest()[:32]
    return f"<escucha.incident.{digest}@{domain}>"


def reply_to(notification: Notification) -> str | None:
    """The Message-ID this notification answers, or None when it starts a thread.

    A digest rolls up several incidents and never replies to one. ``update_of`` is only used
    when it is a well-formed Message-ID: it names what was sent, it is never an address.
    """
    parent = notification.update_of
    if notification.kind == "digest" or not parent or not _MESSAGE_ID.fullmatch(parent):
        return None
    return parent


def _one_line(text: str, *, limit: int) -> str:
    """For headers: no CR/LF can survive, so no second header can be injected."""
    return console_safe(text, limit=limit)


def _subject(notification: Notification, watch_name: str, lang: Lang = EN) -> str:
    """The same subject for every message about an incident (a reply adds ``Re:``): clients
    that also match subjects (Gmail) split a thread whose subject changed. What changed is the
    body's first line instead. Only a digest, which spans incidents, says what it is."""
    inc = notification.incident
    text = f"[{lang.label(inc.severity).upper()}] {watch_name}: " \
        f"{inc.detector.replace('_', ' ')}"
    if reply_to(notification) is not None:
        text = "Re: " + text  # not translated: mail clients thread on the literal "Re:"
    elif notification.kind == "digest":
        count = len(notification.digest)
        text += " — " + lang.tr.ngettext("digest of {count} notice", "digest of {count} notices",
                                         count).format(count=count)
    return _one_line(text, limit=_SUBJECT_CHARS)


def _wrap(text: str, *, limit: int, indent: str = "") -> list[str]:
    """Clean, bound and wrap; long 'words' are broken too, so no line outgrows the width."""
    lines = textwrap.wrap(clean(text, limit=limit), width=_WIDTH, initial_indent=indent,
                          subsequent_indent=indent, break_on_hyphens=False)
    return lines or [indent.rstrip()]


def _html_lines(lines: Sequence[str]) -> str:
    # Escaping after wrapping keeps entities whole; the newlines render as spaces.
    return "\n".join(html_escape(line.strip(), limit=_WIDTH * 2) for line in lines)


def _link(url: str, label: str) -> str:
    return (f'<a href="{html_escape(url, limit=4096)}" rel="noopener noreferrer" '
            f'target="_blank">{html_escape(label)}</a>')


def _when(when: datetime, lang: Lang) -> str:
    # Unconfigured keeps the ISO stamp filters match on; a locale or zone gets Babel's date.
    return f"{when:%Y-%m-%d %H:%M} UTC" if lang.unset else lang.at(when)


def _state_line(inc: Incident, lang: Lang) -> str:
    _ = lang._
    if inc.state == "acknowledged" and inc.acked_by:
        line = _("acknowledged by {who}").format(who=inc.acked_by)
        return line + (" " + _("at {time}").format(time=_when(inc.acked_at, lang))
                       if inc.acked_at else "")
    if inc.state == "resolved" and inc.resolved_by:
        line = _("resolved by {who}").format(who=inc.resolved_by)
        return line + (" " + _("at {time}").format(time=_when(inc.resolved_at, lang))
                       if inc.resolved_at else "")
    return lang.label(inc.state)


def _samples(inc: Incident, text: list[str], html: list[str], lang: Lang) -> None:
    _ = lang._
    heading = _("What people say")
    text += ["", heading + ":"]
    html.append(f"<h3>{html_escape(heading)}</h3>\n<ul>")
    for sample in inc.samples[:_MAX_SAMPLES]:
        who = _one_line(sample.author, limit=64)
        said = _wrap(sample.text, limit=_SAMPLE_CHARS, indent="    ")
        url = safe_url(sample.url)
        priority = _("priority {priority}").format(priority=sample.priority)
        text.append(f"- @{who} ({priority}):")
        text += said
        item = (f"<li><b>@{html_escape(who)}</b> ({html_escape(priority)}):<br>\n"
                f"{_html_lines(said)}")
        if url:
            text.append(f"    {url}")
            item += "<br>\n" + _link(url, lang.tr.pgettext("link", "open"))
        html.append(item + "</li>")
    html.append("</ul>")


def _body(notification: Notification, head: Letterhead, subject: str) -> tuple[str, str]:
    inc, lang = notification.incident, head.lang
    _ = lang._
    text: list[str] = [subject, ""]
    html: list[str] = [
        "<!DOCTYPE html>",
        '<html><head><meta charset="utf-8">',
        f"<title>{html_escape(subject)}</title></head>",
        '<body style="font-family:sans-serif;line-height:1.4">',
    ]
    change = status_line(notification, lang)
    if change:
        # First, so a client's preview of a reply in the thread shows what changed.
        text[:0] = [change, ""]
        html.append(f"<p><b>{html_escape(change)}</b></p>")
    html += [f"<h2>{html_escape(subject)}</h2>", "<table>"]
    facts = [(_("Severity"), lang.label(inc.severity).upper()), (_("Watch"), head.watch_name),
             (_("Detector"), inc.detector), (_("State"), _state_line(inc, lang)),
             (_("Level"), str(notification.level)),
             (_("Opened"), _when(inc.opened_at, lang))]
    for name, value in facts:
        shown = _one_line(value, limit=200)
        text.append(f"{name}: {shown}")
        html.append(f'<tr><th align="left">{html_escape(name)}</th>'
                    f'<td>{html_escape(shown)}</td></tr>')
    html.append("</table>")

    summary = _wrap(summary_for(inc, lang), limit=_SUMMARY_CHARS)
    text += ["", *summary]
    html.append(f"<p>{_html_lines(summary)}</p>")
    story = story_line(inc, lang)
    if story is not None:
        lines = _wrap(story, limit=_SUMMARY_CHARS)
        text += ["", *lines]
        html.append(f"<p>{_html_lines(lines)}</p>")

    if notification.kind == "digest" and notification.digest:
        since = _("Since the last message")
        text += ["", since + ":"]
        html.append(f"<h3>{html_escape(since)}</h3>\n<ul>")
        for line in notification.digest[:_DIGEST_LINES]:
            wrapped = _wrap(line, limit=300, indent="  ")
            text += ["-" + wrapped[0][1:], *wrapped[1:]]
            html.append(f"<li>{_html_lines(wrapped)}</li>")
        html.append("</ul>")

    if inc.samples:
        _samples(inc, text, html, lang)

    if inc.playbook is not None:
        book = playbook_lines(inc.playbook, inc.language)
        text += ["", *(w for line in book for w in _wrap(line, limit=600))]
        html.append("<h3>" + html_escape(_one_line(book[0], limit=200)) + "</h3>\n<ul>")
        html += [f"<li>{_html_lines(_wrap(line, limit=600))}</li>" for line in book[1:]]
        html.append("</ul>")

    if head.actions:
        text += ["", _("Act on it (each link asks you to confirm first):")]
        text += [f"  {label}: {url}" for label, url in head.actions]
        html.append("<p>" + " &middot; ".join(_link(u, label) for label, u in head.actions)
                    + "</p>")

    footer = _one_line(_("incident {id} · notification {notification}").format(
        id=inc.id, notification=notification.id), limit=400)
    text += ["", "-- ", footer]
    html += [f'<p style="color:#666;font-size:small">{html_escape(footer)}</p>',
             "</body></html>"]
    return "\n".join(text) + "\n", "\n".join(html) + "\n"


def build_message(notification: Notification, head: Letterhead,
                  recipients: Sequence[str] = ()) -> EmailMessage:
    """The message for a notification, the same bytes for every attempt."""
    inc = notification.incident
    subject = _subject(notification, head.watch_name, head.lang)
    plain, html = _body(notification, head, subject)

    msg = EmailMessage()
    msg["Subject"] = subject
    msg["From"] = head.from_addr
    if recipients:
        msg["To"] = ", ".join(recipients)
    created = notification.created_at
    # The notification's own time, not now: every retry produces the same message.
    msg["Date"] = format_datetime(created if created.tzinfo else created.replace(tzinfo=UTC))
    msg["Message-ID"] = message_id(notification.id, domain=head.domain)
    root = thread_root(inc.id, head.domain)
    parent = reply_to(notification)
    if parent is not None:
        # RFC 5322 3.6.4: the parent's References (the root) followed by the parent's id.
        msg["In-Reply-To"] = parent
        msg["References"] = root if parent == root else f"{root} {parent}"
    else:
        msg["References"] = root
    msg["X-Escucha-Incident"] = _one_line(inc.id, limit=200)
    msg["X-Escucha-Severity"] = inc.severity
    # RFC 3834: no vacation auto-replies to an alert address.
    msg["Auto-Submitted"] = "auto-generated"
    if inc.severity == "critical":
        msg["Importance"] = "high"
        msg["X-Priority"] = "1"
    msg.set_content(plain)
    msg.add_alternative(html, subtype="html")
    return msg
