"""One story, one incident: a campaign on a second watch joins the first watch's open incident
instead of paging again, both timelines say so, and it is released when that one resolves.

Signals carry story evidence made the way the detect stage makes it: each watch's own
``StoryIndex`` (so the two watches' story ids differ, and only the texts can match) and the
per-minute tallies folded by ``summarise`` (so the campaign share rule decides the flag).
The engine runs through the stage with the incidents view in a dict (test_inhibit's world).
"""

from __future__ import annotations

import random

import pytest
from pydantic import ValidationError

from agents.detect.stories import CAMPAIGN_MIN, CAMPAIGN_SHARE, StoryIndex, summarise, tally
from agents.escalate.merge import FORMING_MIN, find_target
from agents.escalate.stage import Send
from streams.config.escalation import EscalationSettings
from streams.core import topics
from streams.core.records import Ack, Incident, RecordError, Signal, StorySummary, dumps
from tests.unit.agents.escalate.test_incidents import CRISIS_L1, EXEC_L1, T0, at, signal
from tests.unit.agents.escalate.test_inhibit import _id, _paged, _texts, _World

FIRST = ("RT @jo: Acme charger exploded in my kitchen last night, never buying Acme again "
         "http://t.co/1")
# Jaccard of 4-shingles with FIRST: 1.0 (handles, emoji, case, links go), 0.79 and 0.58.
SAME = "Acme charger EXPLODED in my kitchen last night!! never buying Acme again \U0001f525 @acme"
NEAR = ("Acme charger exploded in my kitchen last night, never buying Acme chargers again, "
        "total scam")
OTHER = "My Acme charger exploded last night in the kitchen, not buying Acme again"
_WORDS = ["delivery", "refund", "screen", "hinge", "store", "support", "warranty", "price",
          "shipping", "courier", "box", "manual", "update", "firmware", "app", "login",
          "password", "bluetooth", "speaker", "headphones", "cable", "adapter", "keyboard",
          "mouse", "laptop", "tablet", "camera", "lens", "tripod", "strap", "case"]


def _storm(watch: str, text: str, *, copies: int = 40, others: int = 20, minute: float = 0,
           severity: str = "warning") -> Signal:
    """A negative spike on ``watch`` with ``copies`` of ``text`` among ``others`` voices."""
    index, st = StoryIndex(), {}
    posts = [(f"{watch}:c{i}", text) for i in range(copies)]
    posts += [(f"{watch}:o{i}", " ".join(random.Random(i).sample(_WORDS, 8)))
              for i in range(others)]
    for n, (key, body) in enumerate(posts):
        sid = index.assign(body, key=key, at=float(n))
        tally(st, "0", sid, text=body, author=key, negative=True, seconds=float(n))
    told = summarise(st, [0], negative_only=True)
    return signal(minute, severity, watch=watch).model_copy(update={  # type: ignore[arg-type]
        "stories": told.stories, "largest_story": told.largest, "campaign": told.campaign})


def _world() -> _World:
    """Without the story hold: these tests are about which incident joins which, decided at
    once; the hold (``story_wait_s``) has its own tests at the end."""
    return _World([], story_wait_s=0)


def _open(world: _World, sig: Signal, seconds: float) -> tuple[str, list[tuple[str, str]]]:
    out = world.handle(topics.SIGNALS.name, dumps(sig), at(seconds))
    return _id(out), _paged(out)


def test_the_same_story_on_two_watches_pages_once_and_both_timelines_say_so() -> None:
    world = _world()
    acme = _storm("acme", FIRST)
    assert acme.campaign
    acme_id, paged = _open(world, acme, 0)
    assert paged == CRISIS_L1 + EXEC_L1
    # info: the console's policy; critical would bring exec's (routes follow severity).
    beta = _storm("beta", SAME, copies=30, severity="info")
    assert beta.largest_story and acme.largest_story
    assert beta.largest_story.id != acme.largest_story.id  # per-watch ids: the text decides
    beta_id, paged = _open(world, beta, 30)
    assert paged == []
    assert world.view[beta_id].merged_into == acme_id
    assert (f"merged into {acme_id}: same story \u2018{SAME[:59]}\u2026\u2019 \u00d730"
            in _texts(world, beta_id))
    assert [(n.key, n.value) for n in world.notes] == [
        (b"acme", f"joins {acme_id} {beta_id} 30".encode())]

    world.deliver_notes(at(90))  # after group_interval_s: the update goes at once
    target = world.view[acme_id]
    assert target.watches == ["beta"] and target.joined == [beta_id]
    assert (f"joined by watch beta (30 mentions of the same story; {beta_id})"
            in _texts(world, acme_id))
    # Whoever acme's page reached is told, once, that beta is in it too.
    updates = [t for t in _texts(world, acme_id) if t.startswith("update")]
    assert len(updates) == 1
    # A re-delivered note (at-least-once) adds nothing.
    assert world.handle(topics.ESCALATION.name, f"joins {acme_id} {beta_id} 30".encode(),
                        at(91)) == []
    assert [t for t in _texts(world, acme_id) if t.startswith("joined by")] == [
        f"joined by watch beta (30 mentions of the same story; {beta_id})"]

    # While acme is open (acknowledged included) beta pages nobody, not even turning critical.
    world.handle(topics.ACKS.name, dumps(Ack(incident_id=acme_id, action="ack", by="ana",
                                             source="slack", at=at(100))), at(100))
    worse = world.handle(topics.SIGNALS.name,
                         dumps(_storm("beta", SAME, minute=3, severity="critical")), at(200))
    assert _paged(worse) == []
    assert beta_id not in world.stage.due(at(3000), mono=3000.0)
    # A stray tick (a re-delivered one) changes nothing while the target is open.
    assert world.handle(topics.ESCALATION.name, beta_id.encode(), at(3000)) == []


def test_a_different_story_on_another_watch_pages_on_its_own() -> None:
    world = _world()
    acme_id, _ = _open(world, _storm("acme", FIRST), 0)
    beta_id, paged = _open(world, _storm("beta", OTHER), 30)
    assert paged == EXEC_L1 and world.view[beta_id].merged_into is None
    assert world.notes == [] and world.view[acme_id].watches == []


def test_a_near_copy_joins_like_an_exact_one() -> None:
    world = _world()
    acme_id, _ = _open(world, _storm("acme", FIRST), 0)
    beta_id, paged = _open(world, _storm("beta", NEAR), 30)
    assert paged == [] and world.view[beta_id].merged_into == acme_id


def test_below_the_campaign_share_the_second_watch_pages_on_its_own() -> None:
    world = _world()
    _open(world, _storm("acme", FIRST), 0)
    # 12 copies among 70 other voices: 15% of the negatives, under CAMPAIGN_SHARE (20%).
    beta = _storm("beta", SAME, copies=12, others=70)
    assert beta.largest_story is not None and beta.largest_story.count == 12
    assert not beta.campaign
    beta_id, paged = _open(world, beta, 30)
    assert paged == EXEC_L1 and world.view[beta_id].story is None


def test_when_the_target_resolves_the_joined_incident_is_released_and_escalates() -> None:
    world = _world()
    acme_id, _ = _open(world, _storm("acme", FIRST), 0)
    beta_id, _ = _open(world, _storm("beta", SAME), 30)
    assert world.stage.due(at(60), mono=60.0) == []
    world.handle(topics.ACKS.name, dumps(Ack(incident_id=acme_id, action="resolve", by="ana",
                                             source="slack", at=at(600))), at(600))
    assert world.stage.due(at(601), mono=601.0) == [beta_id]
    out = world.handle(topics.ESCALATION.name, beta_id.encode(), at(601))
    assert _paged(out) == EXEC_L1
    assert (f"released: {acme_id} is resolved; escalating on its own"
            in _texts(world, beta_id))
    assert world.view[beta_id].merged_into is None


def test_a_join_found_when_group_wait_ends_pages_nobody() -> None:
    world = _World([], group_wait_s=30)
    acme_id, _ = _open(world, _storm("acme", FIRST), 0)
    world.handle(topics.ESCALATION.name, acme_id.encode(), at(30))  # acme pages now
    beta_id, paged = _open(world, _storm("beta", SAME), 40)
    assert paged == []
    out = world.handle(topics.ESCALATION.name, beta_id.encode(), at(70))
    assert _paged(out) == [] and world.view[beta_id].merged_into == acme_id


def test_an_incident_paged_before_its_story_was_known_joins_when_a_signal_names_it() -> None:
    """The real path (tests/e2e/test_story_incident.py): a storm's first signal comes from
    its first few copies, under CAMPAIGN_MIN, so its incident pages with no story."""
    world = _world()
    acme_id, _ = _open(world, _storm("acme", FIRST), 0)
    early = _storm("beta", SAME, copies=6, others=4)
    assert not early.campaign
    beta_id, paged = _open(world, early, 30)
    assert paged == EXEC_L1 and world.view[beta_id].story is None
    out = world.handle(topics.SIGNALS.name, dumps(_storm("beta", SAME, minute=1)), at(60))
    assert _paged(out) == [] and world.view[beta_id].merged_into == acme_id
    assert any(t.startswith(f"merged into {acme_id}: same story") for t in _texts(world, beta_id))
    assert [(n.key, n.value) for n in world.notes] == [
        (b"acme", f"joins {acme_id} {beta_id} 40".encode())]
    # Its escalation stops: no level is due while acme is open, and a stray tick pages nobody.
    assert beta_id not in world.stage.due(at(3000), mono=3000.0)
    assert _paged(world.handle(topics.ESCALATION.name, beta_id.encode(), at(3000))) == []


def test_an_incident_others_joined_does_not_join_late() -> None:
    """Joins do not chain: beta joined acme, so acme stays where it is when an older
    incident (gamma's, paged before its story was known) turns out to carry the story."""
    world = _world()
    gamma_id, _ = _open(world, _storm("gamma", FIRST, copies=6, others=4), 0)
    acme_id, _ = _open(world, _storm("acme", FIRST, minute=1), 30)
    beta_id, _ = _open(world, _storm("beta", SAME, minute=2), 60)
    assert world.view[beta_id].merged_into == acme_id
    world.deliver_notes(at(61))
    world.handle(topics.SIGNALS.name, dumps(_storm("gamma", FIRST, minute=3)), at(200))
    assert world.view[gamma_id].story is not None
    world.handle(topics.SIGNALS.name, dumps(_storm("acme", FIRST, minute=4)), at(260))
    assert world.view[acme_id].merged_into is None


def test_an_acknowledged_incident_does_not_join_late() -> None:
    world = _world()
    _open(world, _storm("acme", FIRST), 0)
    beta_id, _ = _open(world, _storm("beta", SAME, copies=6, others=4), 30)
    world.handle(topics.ACKS.name, dumps(Ack(incident_id=beta_id, action="ack", by="ana",
                                             source="slack", at=at(40))), at(40))
    world.handle(topics.SIGNALS.name, dumps(_storm("beta", SAME, minute=1)), at(60))
    assert world.view[beta_id].merged_into is None and world.notes == []


def test_a_resolved_incident_is_no_target() -> None:
    world = _world()
    acme_id, _ = _open(world, _storm("acme", FIRST), 0)
    world.handle(topics.ACKS.name, dumps(Ack(incident_id=acme_id, action="resolve", by="ana",
                                             source="slack", at=at(10))), at(10))
    _, paged = _open(world, _storm("beta", SAME), 30)
    assert paged == EXEC_L1


def _inc(id: str, watch: str, minute: int, text: str = FIRST, *, story_id: str = "s1",
         merged_into: str | None = None) -> Incident:
    return Incident(id=id, fingerprint=watch, watch_id=watch, detector="negative_spike",
                    severity="warning", opened_at=at(60 * minute), updated_at=at(60 * minute),
                    summary="s", merged_into=merged_into,
                    story=StorySummary(id=story_id, text=text, count=20, authors=20,
                                       span_min=3))


@pytest.mark.parametrize(("me", "others", "expected"), [
    # the same id joins whatever the sample texts (a watch's first copy may differ)
    (_inc("b.1", "beta", 5, OTHER), [_inc("a.1", "acme", 0)], "a.1"),
    (_inc("b.1", "beta", 5, SAME, story_id="s2"), [_inc("a.1", "acme", 0)], "a.1"),
    (_inc("b.1", "beta", 5, OTHER, story_id="s2"), [_inc("a.1", "acme", 0)], None),
    # only older incidents of other watches, never one that joined another
    (_inc("b.1", "beta", 5), [_inc("a.1", "beta", 0)], None),
    (_inc("b.1", "beta", 0), [_inc("a.1", "acme", 5)], None),
    (_inc("b.1", "beta", 5), [_inc("a.1", "acme", 0, merged_into="c.1")], None),
    # the oldest is named, whatever order the view lists them in
    (_inc("b.1", "beta", 5), [_inc("c.2", "gamma", 2), _inc("a.1", "acme", 1)], "a.1"),
])
def test_target_rules(me: Incident, others: list[Incident], expected: str | None) -> None:
    found = find_target(me, [me, *others])
    assert (found.id if found else None) == expected


def test_a_malformed_join_note_is_a_record_error() -> None:
    with pytest.raises(RecordError, match="join note"):
        _world().handle(topics.ESCALATION.name, b"joins acme.1 beta.2", T0)


# -- the story hold: a storm opening on two watches at once pages once, by default -----------

def _arrive(world: _World, out: list[Send]) -> None:
    """An incident's snapshot reaching the incidents view, a record's trip after its change."""
    for send in out:
        if send.topic == topics.INCIDENTS:
            inc = Incident.model_validate_json(send.value)
            world.view[inc.id] = inc


def _storm_on_two_watches_at_once(world: _World) -> tuple[str, str, list[tuple[str, str]]]:
    """Both watches' incidents open in the same second; acme's snapshot is still on its way
    to the view when beta's signal is handled (the race group_wait 0 loses)."""
    first = world.stage.handle(topics.SIGNALS.name, dumps(_storm("acme", FIRST)), at(0))
    beta_id, paged = _open(world, _storm("beta", SAME), 0.5)
    _arrive(world, first)
    return _id(first), beta_id, paged + _paged(first)


def test_by_default_a_storm_on_two_watches_at_once_pages_once() -> None:
    world = _World([])  # the defaults: group_wait_s 0, story_wait_s 15
    assert world.stage.engine.cfg.group_wait_s == 0
    acme_id, beta_id, paged = _storm_on_two_watches_at_once(world)
    assert paged == []  # both held: one story dominates each
    held = [t for t in _texts(world, beta_id) if t.startswith("held 15 s before paging")]
    assert held and "\u00d740); the same story on another watch" in held[0]
    assert world.stage.due(at(14), mono=14.0) == []
    assert sorted(world.stage.due(at(15.5), mono=15.5)) == sorted([acme_id, beta_id])
    assert _paged(world.handle(topics.ESCALATION.name, acme_id.encode(), at(15))) == (
        CRISIS_L1 + EXEC_L1)  # the older one pages
    out = world.handle(topics.ESCALATION.name, beta_id.encode(), at(15.5))
    assert _paged(out) == [] and world.view[beta_id].merged_into == acme_id
    assert [(n.key, n.value) for n in world.notes] == [
        (b"acme", f"joins {acme_id} {beta_id} 40".encode())]
    metric = world.stage.metrics.incidents_joined
    assert metric.labels("beta")._value.get() == 1
    assert metric.labels("acme")._value.get() == 0
    held_metric = world.stage.metrics.incidents_story_held
    assert [held_metric.labels(w)._value.get() for w in ("acme", "beta")] == [1, 1]


def test_without_the_hold_the_same_storm_pages_twice() -> None:
    """What the hold is for: the second watch decides before the first reaches the view."""
    world = _World([], story_wait_s=0)
    _, beta_id, paged = _storm_on_two_watches_at_once(world)
    assert paged == EXEC_L1 + CRISIS_L1 + EXEC_L1
    assert world.view[beta_id].merged_into is None
    assert world.stage.metrics.incidents_joined.labels("beta")._value.get() == 0


def test_an_incident_without_a_forming_story_pages_at_once_by_default() -> None:
    world = _World([])
    # The largest story has 4 copies, under FORMING_MIN (5): nothing to wait for.
    assert FORMING_MIN == 5 < CAMPAIGN_MIN  # a campaign's story is always a forming one
    beta_id, paged = _open(world, _storm("beta", SAME, copies=4, others=4), 0)
    assert paged == EXEC_L1
    assert not [t for t in _texts(world, beta_id) if t.startswith("held")]
    assert world.stage.metrics.incidents_story_held.labels("beta")._value.get() == 0
    # 12 copies among 70 other voices: a text many repeat in a busy window (an ad, a common
    # question), under CAMPAIGN_SHARE of what the evidence holds: no hold either.
    world = _World([])
    gamma = _storm("beta", SAME, copies=12, others=70)
    assert gamma.stories == 71 and CAMPAIGN_SHARE * (70 + 12) > 12
    _, paged = _open(world, gamma, 0)
    assert paged == EXEC_L1


@pytest.mark.parametrize(("others", "held"), [(20, True), (21, False)])
def test_the_forming_share_is_the_campaign_share(others: int, held: bool) -> None:
    """5 copies among 20 other voices are 20% of at least 25 mentions: held; among 21, under."""
    sig = _storm("beta", SAME, copies=5, others=others)
    assert sig.stories == others + 1 and not sig.campaign
    _, paged = _open(_World([]), sig, 0)
    assert (paged == []) is held


def test_a_story_forming_under_the_campaign_rule_holds_too() -> None:
    """A storm's first signal comes from its first copies: five among many voices, no
    campaign yet, already holds; the signal that makes it a campaign, within the hold, gives
    the incident its story and the join happens before anyone is paged."""
    world = _World([])
    acme_id, _ = _open(world, _storm("acme", FIRST), 0)
    world.handle(topics.ESCALATION.name, acme_id.encode(), at(15))  # acme pages
    early = _storm("beta", SAME, copies=5, others=15)
    assert not early.campaign and early.largest_story and early.largest_story.count == 5
    beta_id, paged = _open(world, early, 20)
    assert paged == []
    assert (f"held 15 s before paging: a story is forming (\u2018{SAME[:59]}\u2026\u2019 "
            f"\u00d75); the same story on another watch joins this incident instead of "
            f"paging twice") in _texts(world, beta_id)
    # Seconds later the campaign signal: the story is known, the join is made.
    world.handle(topics.SIGNALS.name, dumps(_storm("beta", SAME, minute=1)), at(25))
    assert world.view[beta_id].merged_into == acme_id
    assert _paged(world.handle(topics.ESCALATION.name, beta_id.encode(), at(35))) == []


def test_a_forming_story_that_never_dominates_pages_when_the_hold_ends() -> None:
    world = _World([])
    acme_id, _ = _open(world, _storm("acme", FIRST), 0)
    world.handle(topics.ESCALATION.name, acme_id.encode(), at(15))
    beta_id, paged = _open(world, _storm("beta", SAME, copies=6, others=18), 20)
    assert paged == [] and world.stage.due(at(34), mono=34.0) == []
    assert world.stage.due(at(35), mono=35.0) == [beta_id]
    out = world.handle(topics.ESCALATION.name, beta_id.encode(), at(35))
    assert _paged(out) == EXEC_L1 and world.view[beta_id].merged_into is None


def test_the_longer_of_group_wait_and_the_story_hold_applies() -> None:
    world = _World([], group_wait_s=3, story_wait_s=20)
    acme_id, paged = _open(world, _storm("acme", FIRST), 0)
    assert paged == [] and world.stage.due(at(19), mono=19.0) == []
    assert world.stage.due(at(20), mono=20.0) == [acme_id]
    assert [t for t in _texts(world, acme_id) if t.startswith("held 20 s")]
    # A group_wait at least as long says nothing more: it holds every incident anyway.
    world = _World([], group_wait_s=30, story_wait_s=20)
    acme_id, _ = _open(world, _storm("acme", FIRST), 0)
    assert world.stage.due(at(29), mono=29.0) == []
    assert not [t for t in _texts(world, acme_id) if t.startswith("held")]


@pytest.mark.parametrize("bad", [-1, 601])
def test_the_story_hold_is_validated(bad: int) -> None:
    with pytest.raises(ValidationError, match="story_wait_s"):
        EscalationSettings(story_wait_s=bad)


def test_an_incident_acknowledged_during_the_hold_pages_nobody() -> None:
    """Someone in the console owns it before the page would go: nobody needs paging (as with
    group_wait). The console e2e test waits for the page before it acknowledges."""
    world = _World([])
    acme_id, paged = _open(world, _storm("acme", FIRST), 0)
    assert paged == []
    world.handle(topics.ACKS.name, dumps(Ack(incident_id=acme_id, action="ack", by="ana",
                                             source="console", at=at(5))), at(5))
    out = world.handle(topics.ESCALATION.name, acme_id.encode(), at(15))
    assert _paged(out) == [] and world.view[acme_id].state == "acknowledged"
