"""The largest story of an incident as one plain line, and the watches it spans, shared by
the channels that show them.

The story's text is a mention's text (attacker-controlled): each channel escapes the line like
any untrusted text before use.
"""

from __future__ import annotations

from collections.abc import Mapping

from streams.core.records import Incident

__all__ = ["story_line", "watch_label"]

_TEXT_CHARS = 200


def story_line(inc: Incident) -> str | None:
    """"Largest story (campaign): x120 by 118 accounts in 9 min of 41 stories: '<text>'"
    from the incident's latest evidence that has one, or None."""
    for evidence in reversed(inc.evidence):
        big = evidence.largest_story
        if big is None:
            continue
        text = " ".join(big.text.split())
        if len(text) > _TEXT_CHARS:
            text = text[: _TEXT_CHARS - 1] + "\u2026"
        flag = " (campaign: one story dominates)" if evidence.campaign else ""
        of = f" of {evidence.stories} stories" if evidence.stories else ""
        return (f"Largest story{flag}: \u00d7{big.count} by {big.authors} accounts in "
                f"{big.span_min} min{of}: \u201c{text}\u201d")
    return None


def watch_label(inc: Incident, names: Mapping[str, str]) -> str:
    """The incident's watch by name, then those whose incidents joined it (one story, one
    incident: agents/escalate/merge.py), so an update says every watch it now covers."""
    return ", ".join(names.get(w, w) for w in [inc.watch_id, *inc.watches])
