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

from notifiers.text import console_safe
from streams.core.records import Incident, Notification, TimelineEntry

__all__ = ["Change", "change_of", "status_line"]

Change = Literal["triggered", "updated", "escalated", "reopened", "acknowledged", "resolved",
                 "reminder", "digest"]

#: Timeline kinds that say what the engine last did to an incident.
_MARKERS = frozenset({"signal", "escalate", "reopen", "ack", "resolve", "step"})
#: How an acknowledgement arrived (``Ack.source``), in words.
_SOURCES = {"slack": "Slack", "api": "the API", "link": "a signed link", "console": "the console",
            "cli": "the command line", "pagerduty": "PagerDuty", "teams": "Teams",
            "googlechat": "Google Chat"}
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


def _via(entry: TimelineEntry | None) -> str:
    """' via Slack' from a timeline entry 'acknowledged via slack'; '' when unknown."""
    if entry is None or " via " not in entry.text:
        return ""
    source = entry.text.rpartition(" via ")[2].strip()
    return f" via {_SOURCES.get(source, source)}" if source else ""


def _at(when: datetime | None) -> str:
    return f" at {when:%Y-%m-%d %H:%M} UTC" if when is not None else ""


def _auto_minutes(inc: Incident, resolved: TimelineEntry) -> int | None:
    """Minutes between the last signal and an automatic resolution, from the timeline (both
    are stamped with the engine's wall clock); None when the signal has scrolled away."""
    for entry in reversed(inc.timeline):
        if entry.kind == "signal" and entry.at <= resolved.at:
            return round((resolved.at - entry.at).total_seconds() / 60)
    return None


def _resolved(inc: Incident) -> str:
    entry = _last(inc, {"resolve"})
    if entry is not None and entry.text.endswith(" via auto"):
        minutes = _auto_minutes(inc, entry)
        quiet = f" after {minutes} min without signals" if minutes is not None else \
            ": no new signals"
        return f"Auto-resolved{quiet}{_at(inc.resolved_at)}"
    return f"Resolved by {inc.resolved_by or 'someone'}{_via(entry)}{_at(inc.resolved_at)}"


def status_line(notification: Notification) -> str:
    """One line on what changed, e.g. 'Acknowledged by ana via Slack at 2024-05-01 03:12 UTC';
    empty for a first alert. Cleaned and bounded, not escaped."""
    inc, change = notification.incident, change_of(notification)
    if change == "resolved" or (change != "triggered" and inc.state == "resolved"):
        line = _resolved(inc)
    elif change == "acknowledged":
        line = (f"Acknowledged by {inc.acked_by or 'someone'}{_via(_last(inc, {'ack'}))}"
                f"{_at(inc.acked_at)}")
    elif change == "escalated":
        line = f"Escalated to level {notification.level}: nobody has acknowledged it yet"
    elif change == "reopened":
        line = "Reopened: it recurred soon after it was resolved"
    elif change == "reminder":
        line = "Reminder: nobody has acknowledged it yet"
    elif change == "digest":
        line = f"Digest of {len(notification.digest)} notices"
    elif change == "updated":
        owner = f" (acknowledged by {inc.acked_by})" if inc.state == "acknowledged" else ""
        line = f"Updated: now {inc.severity}{owner}"
    else:
        return ""
    return console_safe(line, limit=_LINE_CHARS)
