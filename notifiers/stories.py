"""What an incident says in its reader's language: the detector's summary, the largest story
as one plain line, and the watches it spans, shared by the channels that show them.

The summary and the story's text carry mention text (attacker-controlled): each channel
escapes them like any untrusted text, after they are rendered here.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from streams.core.records import Incident
from streams.i18n import EN, Lang
from streams.i18n.summaries import SummaryError, render_summary

__all__ = ["story_line", "summary_for", "watch_label"]

log = logging.getLogger(__name__)

_TEXT_CHARS = 200


def summary_for(inc: Incident, lang: Lang = EN) -> str:
    """The detector's summary in ``lang`` (its times in ``lang``'s zone) from the incident's
    ``summary_parts``; the stored English ``summary`` for an incident from before parts
    existed, or when its parts cannot be said (a newer detector's key): an alert in English
    beats no alert. Not cleaned or escaped: each channel does that to the result."""
    if not inc.summary_parts or lang.unset:
        return inc.summary  # English in UTC is the stored text exactly (tests hold them equal)
    try:
        return render_summary(inc.summary_parts, locale=lang.locale, timezone=lang.timezone)
    except SummaryError as exc:
        log.warning("incident %s: summary shown in English (%s)", inc.id, exc)
        return inc.summary


def story_line(inc: Incident, lang: Lang = EN) -> str | None:
    """"Largest story (campaign): x120 by 118 accounts in 9 min of 41 stories: '<text>'"
    from the incident's latest evidence that has one, in ``lang``, or None. The story's text
    stays as written."""
    _ = lang._
    for evidence in reversed(inc.evidence):
        big = evidence.largest_story
        if big is None:
            continue
        text = " ".join(big.text.split())
        if len(text) > _TEXT_CHARS:
            text = text[: _TEXT_CHARS - 1] + "\u2026"
        flag = " " + _("(campaign: one story dominates)") if evidence.campaign else ""
        of = " " + _("of {count} stories").format(count=evidence.stories) \
            if evidence.stories else ""
        return (_("Largest story") + flag + ": " + _(
            "\u00d7{count} by {authors} accounts in {minutes} min").format(
                count=big.count, authors=big.authors, minutes=big.span_min)
            + f"{of}: \u201c{text}\u201d")
    return None


def watch_label(inc: Incident, names: Mapping[str, str]) -> str:
    """The incident's watch by name, then those whose incidents joined it (one story, one
    incident: agents/escalate/merge.py), so an update says every watch it now covers."""
    return ", ".join(names.get(w, w) for w in [inc.watch_id, *inc.watches])
