"""One story, one incident: a copy-paste storm hitting two watches pages people once.

An incident whose signal was dominated by one story (the signal's ``campaign`` flag, set by
agents/detect/stories.py's ``CAMPAIGN_SHARE`` rule) keeps that story on ``Incident.story``.
When such an incident is about to page, and an older incident of *another* watch that is not
resolved carries the same story (:func:`agents.detect.stories.same_story`: the same id or
near-duplicate sample texts), it *joins* that one instead: its timeline says "merged into
…", it notifies nobody while the target is open, and the target's worker is sent a note
(the stage's ``JOINS``) that puts "joined by watch …" on the target's timeline and the
other watch on its ``watches``. When the target resolves the joined incident is released
and escalates on its own, as an inhibited one does when its source resolves (inhibit.py).
An incident that paged before any signal named its story joins at the first one that does
(``EscalationEngine._join_late``): a real storm's first signal comes from too few copies.

Only older targets, and never one that itself joined another: two incidents of one story
opened at the same moment on two workers cannot join each other, and joins do not chain.
Two opened before either reached the other's incidents view both page (the view lags by a
record's trip through the incidents topic). Pure: the caller passes the candidates (every
worker's incidents view).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from agents.detect.stories import CAMPAIGN_SHARE, same_story
from agents.escalate.levels import log
from streams.core.records import Incident, Signal, StorySummary, watch_of

__all__ = ["FORMING_MIN", "find_target", "forming", "join", "note_joined", "quote", "release",
           "story_of"]

_QUOTE_CHARS = 60
#: Copies of one text in a signal's evidence that make its incident wait for the story to
#: show (``forming``): half the campaign rule's minimum (CAMPAIGN_MIN, 10), so the wait
#: starts while a storm is still under it. A false hold costs that incident story_wait_s.
FORMING_MIN = 5


def story_of(signal: Signal) -> StorySummary | None:
    """The story behind a signal when one dominates its evidence; None otherwise."""
    return signal.largest_story if signal.campaign else None


def forming(signal: Signal) -> StorySummary | None:
    """A story that dominates the signal or may soon: the campaign rule without its minimum.
    What makes a new incident wait ``story_wait_s`` before paging (incidents.py): a storm's
    first signals come from its first copies, before the campaign rule's minimum (in
    tests/e2e/test_story_incident.py a risk-term surge at 7 copies, a negative spike at 8,
    the campaign at 13, seconds apart).

    The largest story needs at least ``FORMING_MIN`` copies and ``CAMPAIGN_SHARE`` of the
    mentions its evidence holds. Those are at least the other stories plus its own copies
    (``stories`` counts each single post as a story), so the share is an upper bound. Any
    busy window has a text repeated 10 times (an ad, a question people copy): without the
    share, the demo's and the fault tests' ordinary traffic held nearly every incident
    (10 copies among 122 stories is 8%; a storm's 8 among 5 stories is 67%)."""
    big = signal.largest_story
    if big is None or big.count < FORMING_MIN or signal.stories is None:
        return None
    held = max(signal.stories - 1, 0) + big.count
    return big if big.count >= CAMPAIGN_SHARE * held else None


def find_target(inc: Incident, candidates: Iterable[Incident]) -> Incident | None:
    """The oldest open incident of another watch with ``inc``'s story; None if none.

    Oldest first (then by id), so every worker and every re-delivery names the same one."""
    if inc.story is None or inc.merged_into is not None:
        return None
    mine = (inc.opened_at, inc.id)
    for other in sorted(candidates, key=lambda c: (c.opened_at, c.id)):
        if (other.opened_at, other.id) >= mine:
            break
        if (other.watch_id == inc.watch_id or other.state == "resolved"
                or other.story is None or other.merged_into is not None):
            continue
        if same_story(inc.story, other.story):
            return other
    return None


def quote(text: str) -> str:
    """A story's text in one line of at most 60 characters, for timelines."""
    text = " ".join(text.split())
    return text if len(text) <= _QUOTE_CHARS else text[:_QUOTE_CHARS - 1] + "\u2026"


def join(entry: dict[str, Any], target: Incident, now: datetime) -> None:
    """Mark an engine entry joined to ``target``; a new target goes on the timeline and into
    ``esc["tell_join"]``, which the engine's ``Decision`` hands to the stage to send."""
    esc, inc = entry["esc"], entry["incident"]
    story = inc["story"]
    if esc.get("merged") != target.id:
        esc["tell_join"] = [*esc.get("tell_join", []), (target.id, int(story["count"]))]
        log(inc, now, "merged", "merged_into",
            {"target": target.id, "text": quote(story["text"]), "count": int(story["count"])})
    esc["merged"] = target.id
    inc["merged_into"] = target.id


def release(entry: dict[str, Any], now: datetime) -> None:
    """The target resolved (or left the view): the joined incident goes on its own."""
    esc, inc = entry["esc"], entry["incident"]
    log(inc, now, "merged", "released", {"target": esc["merged"]})
    esc["merged"] = None
    inc["merged_into"] = None


def note_joined(entry: dict[str, Any], joiner_id: str, count: int, now: datetime) -> bool:
    """The target's side: "joined by watch X (N mentions of the same story)" on its timeline
    and X on its watches, once per joining incident (notes are re-delivered at least once).
    Whether anything changed."""
    inc = entry["incident"]
    joined = inc.setdefault("joined", [])
    if joiner_id in joined:
        return False
    joined.append(joiner_id)
    watch = watch_of(joiner_id)
    watches = inc.setdefault("watches", [])
    if watch != inc["watch_id"] and watch not in watches:
        watches.append(watch)
    log(inc, now, "merged", "joined_by", {"watch": watch, "count": count, "joiner": joiner_id})
    return True
