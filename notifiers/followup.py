"""What a follow-up says: which change a notification reports, and who made it, how and when.

Every channel that was sent an incident hears what became of it: acknowledged (by whom, from
where), escalated to the next level, resolved by someone or auto-resolved after a quiet spell.
The engine records the how on the incident's timeline (``acknowledged via slack``, ``resolved
via auto``); this module reads it back into one line, so the 07:00 reader of a 03:00 alert
knows whether it is still theirs.

The line is plain text: ``by`` is whatever a person typed into a link form or an API call, so
it is cleaned to one bounded line here and escaped by each channel for its own markup.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from notifiers.stories import summary_for
from notifiers.text import console_safe
from streams.core.records import Incident, Notification, TimelineEntry
from streams.i18n import EN, Lang
from streams.i18n.timeline import KINDS, SOURCES

__all__ = ["Change", "change_of", "digest_line", "status_line"]

Change = Literal["triggered", "updated", "escalated", "reopened", "acknowledged", "resolved",
                 "reminder", "digest"]

#: Timeline kinds that say what the engine last did to an incident.
_MARKERS = frozenset({"signal", "escalate", "reopen", "ack", "resolve", "step"})
_LINE_CHARS = 300


def _last(inc: Incident, kinds: frozenset[str] | set[str]) -> TimelineEntry | None:
    return next((e for e in reversed(inc.timeline) if e.kind in kinds), None)


def change_of(notification: Notification) -> Change:
    """The change a notification reports.

    An ``update`` right after an escalation is what the engine sends the people an earlier
    level already reached (they are told, not paged again); any other update reports that
    the incident grew or got worse.
    """
    kind = notification.kind
    if kind == "acknowledge":
        return "acknowledged"
    if kind == "resolve":
        return "resolved"
    if kind in ("reminder", "digest"):
        return "reminder" if kind == "reminder" else "digest"
    if kind == "trigger":
        return "triggered"
    last = _last(notification.incident, _MARKERS)
    if kind == "escalate":
        return "reopened" if last is not None and last.kind == "reopen" else "escalated"
    return "escalated" if last is not None and last.kind == "escalate" else "updated"


def _via(entry: TimelineEntry | None, lang: Lang) -> str:
    """' via Slack' from a timeline entry 'acknowledged via slack' (its phrase's source, or
    its text's last words for an entry written before phrases); '' when unknown."""
    if entry is None:
        return ""
    source = entry.phrase.params.get("source") if entry.phrase is not None else None
    if not isinstance(source, str):
        source = entry.text.rpartition(" via ")[2].strip() if " via " in entry.text else ""
    if not source:
        return ""
    return " " + lang._("via {source}").format(source=lang._(SOURCES[source])
                                                if source in SOURCES else source)


def _at(when: datetime | None, lang: Lang) -> str:
    if when is None:
        return ""
    # Unconfigured (English, UTC) keeps the ISO stamp that mail filters and runbooks already
    # match on; a configured locale or zone gets Babel's date in that zone.
    stamp = f"{when:%Y-%m-%d %H:%M} UTC" if lang.unset else lang.at(when)
    return " " + lang._("at {time}").format(time=stamp)


def _auto_minutes(inc: Incident, resolved: TimelineEntry) -> int | None:
    """Minutes between the last signal and an automatic resolution, from the timeline (both
    are stamped with the engine's wall clock); None when the signal has scrolled away."""
    for entry in reversed(inc.timeline):
        if entry.kind == "signal" and entry.at <= resolved.at:
            return round((resolved.at - entry.at).total_seconds() / 60)
    return None


def _resolved(inc: Incident, lang: Lang) -> str:
    _ = lang._
    entry = _last(inc, {"resolve"})
    if entry is not None and entry.text.endswith(" via auto"):
        minutes = _auto_minutes(inc, entry)
        line = (_("Auto-resolved after {minutes} min without signals").format(minutes=minutes)
                if minutes is not None else _("Auto-resolved: no new signals"))
        return line + _at(inc.resolved_at, lang)
    who = inc.resolved_by or _("someone")
    return (_("Resolved by {who}").format(who=who) + _via(entry, lang)
            + _at(inc.resolved_at, lang))


def status_line(notification: Notification, lang: Lang = EN) -> str:
    """One line on what changed, e.g. 'Acknowledged by ana via Slack at May 1, 2024, 03:12
    UTC', in ``lang``; empty for a first alert. Cleaned and bounded, not escaped."""
    _ = lang._
    inc, change = notification.incident, change_of(notification)
    if change == "resolved" or (change != "triggered" and inc.state == "resolved"):
        line = _resolved(inc, lang)
    elif change == "acknowledged":
        line = (_("Acknowledged by {who}").format(who=inc.acked_by or _("someone"))
                + _via(_last(inc, {"ack"}), lang) + _at(inc.acked_at, lang))
    elif change == "escalated":
        line = _("Escalated to level {level}: nobody has acknowledged it yet").format(
            level=notification.level)
    elif change == "reopened":
        line = _("Reopened: it recurred soon after it was resolved")
    elif change == "reminder":
        line = _("Reminder: nobody has acknowledged it yet")
    elif change == "digest":
        count = len(notification.digest)
        line = lang.tr.ngettext("Digest of {count} notice", "Digest of {count} notices",
                                count).format(count=count)
    elif change == "updated":
        line = _("Updated: now {severity}").format(severity=lang.label(inc.severity))
        if inc.state == "acknowledged":
            line += " " + _("(acknowledged by {who})").format(who=inc.acked_by)
    else:
        return ""
    return console_safe(line, limit=_LINE_CHARS)


def digest_line(note: Notification, lang: Lang = EN) -> str:
    """One held alert as a line of its target's digest, in ``lang``: 'critical: acme —
    trigger (level 1) <summary>'. Not cleaned: each channel cleans and escapes digest lines."""
    inc = note.incident
    kind = lang._(KINDS[note.kind]) if note.kind in KINDS else note.kind
    return lang._("{severity}: {watch} — {kind} (level {level}) {summary}").format(
        severity=lang.label(inc.severity), watch=inc.watch_id, kind=kind, level=note.level,
        summary=summary_for(inc, lang)[:160])
