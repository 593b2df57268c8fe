"""The largest story of an incident as one plain line, and the watches it spans, shared by
the channels that show them.

The story's text is a mention's text (attacker-controlled): each channel escapes the line like
any untrusted text before use.
"""

from __future__ import annotations

from collections.abc import Mapping

from streams.core.records import Incident
from streams.i18n import EN, Lang

__all__ = ["story_line", "watch_label"]

_TEXT_CHARS = 200


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
