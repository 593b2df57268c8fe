"""EscalationEngine: open, join, update, escalate, remind, ack, resolve, reopen, quiet hours,
schedules, silences, receipts and the JSON round trip of its table entries.

Pure and deterministic: every call gets an explicit ``now`` (aware UTC), which the tests
advance by hand from ``T0``; nothing sleeps or reads the clock.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest

from agents.escalate.incidents import UPDATABLE_CHANNELS, Decision, EscalationEngine
from streams.config.escalation import (
    EscalationSettings,
    Level,
    Member,
    Policy,
    QuietHours,
    Route,
    Schedule,
    TargetSpec,
)
from streams.core.records import (
    Ack,
    Notification,
    Phrase,
    SampleMention,
    Severity,
    Signal,
    stable_id,
)
from streams.core.silences import Silence
from streams.i18n.timeline import say

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)  # a Wednesday, 12:00 UTC


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


# -- configuration ------------------------------------------------------------------------
ALICE = Member(name="alice", slack="U1", email="alice@example.com")
CAROL = Member(name="carol", slack="U3")  # no push topic
DAN = Member(name="dan")  # no contact at all
PRIMARY = Schedule(id="primary", members=[ALICE], start=date(2024, 1, 1))
NIGHTS = Schedule(id="nights", members=[CAROL], start=date(2024, 1, 1))
NEWCOMERS = Schedule(id="newcomers", members=[DAN], start=date(2024, 1, 1))

CRISIS = Policy(id="crisis", repeat=1, levels=[
    Level(targets=[TargetSpec(slack="#crisis"), TargetSpec(email=["crisis@example.com"])],
          timeout_s=300),
    Level(targets=[TargetSpec(schedule="primary", via=["slack", "email"])], timeout_s=600),
    Level(targets=[TargetSpec(pagerduty="comms")], timeout_s=900),
])
EXEC = Policy(id="exec", levels=[
    Level(targets=[TargetSpec(slack="#exec"), TargetSpec(push="exec-phone")], timeout_s=1200),
])
DEFAULT = Policy(id="default", levels=[Level(targets=[TargetSpec(console=True)])])
# 11:00-13:00 UTC holds T0; the default except_severity lets critical through.
DAYTIME = QuietHours(start=time(11, 0), end=time(13, 0))
NIGHT = Policy(id="night", levels=[
    Level(targets=[TargetSpec(slack="#day")], quiet_hours=DAYTIME),
    Level(targets=[TargetSpec(slack="#duty")]),
])
# carol is on call in "nights" but has no push topic.
NOBODY = Policy(id="nobody", levels=[
    Level(targets=[TargetSpec(schedule="nights", via=["push"])], timeout_s=300),
    Level(targets=[TargetSpec(slack="#backup")]),
])
# dan is on call in "newcomers" and has no contact at all.
UNREACHABLE = Policy(id="unreachable", levels=[
    Level(targets=[TargetSpec(schedule="newcomers", via=["slack", "push"])], timeout_s=300),
    Level(targets=[TargetSpec(slack="#backup")]),
])

# acme goes to "crisis" and (continue) on to "exec" when warning or critical.
TREE = Route.model_validate({"policy": "default", "routes": [
    {"match": {"watch": "acme"}, "policy": "crisis", "continue": True},
    {"match": {"severity": ["warning", "critical"]}, "policy": "exec"},
]})

CRISIS_L1 = [("slack", "#crisis"), ("email", "crisis@example.com")]
CRISIS_L2 = [("slack", "U1"), ("email", "alice@example.com")]  # alice, on call in primary
CRISIS_L3 = [("pagerduty", "comms")]
EXEC_L1 = [("slack", "#exec"), ("push", "exec-phone")]

SETTINGS: dict[str, Any] = {
    "group_interval_s": 60, "repeat_interval_s": 3600, "resolve_after_s": 14400,
    "reopen_within_s": 3600,
}


def engine(route: Route = TREE, *, silences: Callable[[], list[Silence]] = list,
           resolved_ids: Callable[[], set[str]] = set, **overrides: Any) -> EscalationEngine:
    policies = [CRISIS, EXEC, DEFAULT, NIGHT, NOBODY, UNREACHABLE]
    schedules = [PRIMARY, NIGHTS, NEWCOMERS]
    settings = EscalationSettings(route=route, policies=policies, schedules=schedules,
                                  **{**SETTINGS, **overrides})
    return EscalationEngine(settings=settings, policies=policies,
                            schedules={s.id: s for s in schedules},
                            silences=silences, resolved_ids=resolved_ids)


def signal(minute: float = 0, severity: Severity = "warning", *, watch: str = "acme",
           detector: str = "negative_spike", tag: str = "") -> Signal:
    start = T0 + timedelta(minutes=minute)
    return Signal(
        id=stable_id(watch, detector, start.isoformat(), severity, tag), watch_id=watch,
        detector=detector, severity=severity, window_start=start,
        window_end=start + timedelta(minutes=1), observed=20, expected=4, score=5,
        summary=f"{severity} at minute {minute}",
        samples=[SampleMention(key=f"x:{minute}", url=None, author="a", text="bad",
                               priority=70)],
    )


def ack(action: str = "ack", *, by: str = "ana", incident_id: str,
        now: datetime) -> Ack:
    return Ack(incident_id=incident_id, action=action, by=by, source="slack", at=now)


def pairs(notes: list[Notification]) -> list[tuple[str, str]]:
    return [(n.channel, n.target) for n in notes]


def kinds(notes: list[Notification]) -> set[str]:
    return {n.kind for n in notes}


def timeline(d: Decision) -> list[str]:
    assert d.incident is not None
    return [e.kind for e in d.incident.timeline]


def seconds_of(event: str, name: str) -> float:
    prefix, _, value = event.partition(":")
    assert prefix == name, event
    return float(value)


def opened(eng: EscalationEngine, s: Signal | None = None, now: datetime = T0) -> Decision:
    d = eng.on_signal(None, s or signal(), now)
    assert d.entry is not None
    return d


# -- open --------------------------------------------------------------------------------
def test_first_signal_opens_an_incident_and_notifies_level_1_of_every_routed_policy() -> None:
    s = signal()
    d = engine().on_signal(None, s, at(60))
    inc = d.incident
    assert inc is not None
    assert re.fullmatch(r"acme\.[0-9a-f]{16}", inc.id)
    assert inc.id == "acme." + stable_id("acme", s.window_start.isoformat())  # group_by: watch
    assert (inc.state, inc.level, inc.severity, inc.signal_ids) == (
        "open", 1, "warning", [s.id])
    assert inc.opened_at == s.window_end and inc.samples == s.samples
    assert d.events == ["opened"]
    # crisis first (tree order), then exec through "continue".
    assert pairs(d.notifications) == CRISIS_L1 + EXEC_L1
    assert kinds(d.notifications) == {"trigger"}
    assert all(n.level == 1 and n.created_at == at(60) and n.incident.id == inc.id
               for n in d.notifications)
    assert len({n.id for n in d.notifications}) == len(d.notifications)
    assert timeline(d) == ["signal", "notification", "notification"]
    assert inc.timeline[0].text == s.summary
    assert "#crisis" in inc.timeline[1].text and "#exec" in inc.timeline[2].text


def test_opening_is_deterministic() -> None:
    a, b = opened(engine()), opened(engine())
    assert json.dumps(a.entry, sort_keys=True) == json.dumps(b.entry, sort_keys=True)
    assert [n.id for n in a.notifications] == [n.id for n in b.notifications]
    assert a.notifications == b.notifications


@pytest.mark.parametrize(("watch", "severity", "expected"), [
    ("acme", "warning", CRISIS_L1 + EXEC_L1),
    ("acme", "critical", CRISIS_L1 + EXEC_L1),
    ("acme", "info", CRISIS_L1),                   # continue, but exec does not match
    ("rival", "warning", EXEC_L1),
    ("rival", "info", [("console", "stdout")]),    # nothing matches: the root's policy
])
def test_routing_picks_the_policies(watch: str, severity: Severity,
                                    expected: list[tuple[str, str]]) -> None:
    d = opened(engine(), signal(severity=severity, watch=watch))
    assert pairs(d.notifications) == expected


# -- join, re-delivery, updates ------------------------------------------------------------
def test_redelivered_signal_changes_nothing() -> None:
    eng, s = engine(), signal()
    d = opened(eng, s)
    before = json.dumps(d.entry)
    again = eng.on_signal(d.entry, s, at(10))
    assert (again.entry, again.notifications, again.events) == (None, [], [])
    assert json.dumps(d.entry) == before
    joined = eng.on_signal(d.entry, signal(5), at(300 - 1))
    assert joined.entry is not None
    assert eng.on_signal(joined.entry, s, at(300)).entry is None  # still known after joins


@pytest.mark.parametrize("severity", ["warning", "info"])
def test_a_signal_no_worse_joins_silently(severity: Severity) -> None:
    eng, first = engine(), signal()
    d = opened(eng, first)
    s2 = signal(5, severity)
    j = eng.on_signal(d.entry, s2, at(200))
    inc = j.incident
    assert inc is not None
    assert (j.notifications, j.events) == ([], [])
    assert inc.signal_ids == [first.id, s2.id]
    assert inc.severity == "warning" and inc.summary == first.summary
    assert inc.updated_at == s2.window_end
    assert timeline(j)[-1] == "signal"
    assert j.entry is not None and j.entry["esc"]["last_signal_wall"] == at(200).isoformat()


def test_worse_severity_updates_everyone_notified_at_most_once_per_group_interval() -> None:
    eng = engine()  # group_interval_s=60
    d = opened(eng, signal(0, "info"))
    assert pairs(d.notifications) == CRISIS_L1
    w = eng.on_signal(d.entry, signal(2, "warning"), at(120))
    assert w.events == ["worsened"]
    updates = [n for n in w.notifications if n.kind == "update"]
    assert pairs(updates) == CRISIS_L1
    assert all(n.incident.severity == "warning" for n in w.notifications)
    # A warning now also routes to exec, which starts at its first level.
    assert {n.kind for n in w.notifications if n not in updates} == {"trigger"}
    assert w.incident is not None and w.incident.summary == "warning at minute 2"

    c = eng.on_signal(w.entry, signal(3, "critical"), at(150))  # inside the interval
    assert c.events == ["worsened"] and c.notifications == []
    assert c.entry is not None and c.entry["esc"]["pending_update"] is True
    assert eng.next_due(c.entry) == at(180)

    assert eng.on_tick(c.entry, at(179)).notifications == []
    t = eng.on_tick(c.entry, at(180))
    # Everyone notified so far hears it got worse: crisis level 1, and exec (routed at warning).
    assert set(CRISIS_L1) < set(pairs(t.notifications))
    assert kinds(t.notifications) == {"update"}
    assert all(n.incident.severity == "critical" for n in t.notifications)
    assert t.entry is not None and t.entry["esc"]["pending_update"] is False
    assert eng.next_due(t.entry) == at(300)  # back to the level timeout
    assert eng.on_tick(t.entry, at(200)).notifications == []  # sent once only


def test_worsening_inside_the_first_group_interval_waits_for_it() -> None:
    eng = engine()
    d = opened(eng, signal(0, "info"))
    w = eng.on_signal(d.entry, signal(1, "warning"), at(30))
    assert [n for n in w.notifications if n.kind == "update"] == []
    assert w.entry is not None and w.entry["esc"]["pending_update"]
    assert eng.next_due(w.entry) == at(60)
    assert kinds(eng.on_tick(w.entry, at(60)).notifications) == {"update"}


# -- escalation ------------------------------------------------------------------------------
# crisis alone: level timeouts 300/600/900 s, repeat=1, reminders every 3600 s.
ESCALATION = [
    # (seconds after opening, expected notifications, kind, level, events, next due, and the
    # earlier levels' targets told of the escalation by an update)
    (299, [], None, 1, [], 300, []),
    (300, CRISIS_L2, "escalate", 2, ["escalated:2"], 900, CRISIS_L1),
    (899, [], None, 2, [], 900, []),
    (900, CRISIS_L3, "escalate", 3, ["escalated:3"], 1800, CRISIS_L1 + CRISIS_L2),
    (1800, CRISIS_L1, "escalate", 1, ["escalated:1"], 2100, CRISIS_L2 + CRISIS_L3),  # round 2
    (2100, CRISIS_L2, "escalate", 2, ["escalated:2"], 2700, CRISIS_L1 + CRISIS_L3),
    (2700, CRISIS_L3, "escalate", 3, ["escalated:3"], 3600, CRISIS_L1 + CRISIS_L2),
    (3600, [], None, 3, [], 7200, []),                        # repeat exhausted: done
    (7199, [], None, 3, [], 7200, []),
    (7200, CRISIS_L3, "reminder", 3, [], 10800, []),          # last level's targets
    (10799, [], None, 3, [], 10800, []),
    (10800, CRISIS_L3, "reminder", 3, [], 14400, []),         # 14400: reminder and auto-resolve
]


def test_escalation_walks_the_levels_repeats_then_reminds() -> None:
    eng = engine(Route(policy="crisis"))
    d = opened(eng)
    entry = d.entry
    assert entry is not None
    assert pairs(d.notifications) == CRISIS_L1
    assert eng.next_due(entry) == at(300)
    ids = {n.id for n in d.notifications}
    escalations = 0
    for seconds, expected, kind, level, events, due, told in ESCALATION:
        t = eng.on_tick(entry, at(seconds))
        where = f"at +{seconds}s"
        paged = [n for n in t.notifications if n.kind != "update"]
        updates = [n for n in t.notifications if n.kind == "update"]
        assert pairs(paged) == expected, where
        assert kinds(paged) == ({kind} if kind else set()), where
        # Nobody is paged and told at once; the told are who earlier levels reached.
        assert pairs(updates) == told and not set(pairs(updates)) & set(pairs(paged)), where
        assert all(n.level == level and n.created_at == at(seconds)
                   for n in t.notifications), where
        assert t.events == events, where
        assert t.entry is not None
        entry = t.entry
        assert eng.next_due(entry) == at(due), where
        inc = t.incident
        assert inc is not None and inc.state == "open", where
        if events:
            escalations += 1
            assert inc.level == level, where
            assert [e.kind for e in inc.timeline[-3:]] == ["escalate", "notification",
                                                           "notification"], where
        ids |= {n.id for n in t.notifications}
    assert inc is not None
    assert [e.kind for e in inc.timeline].count("escalate") == escalations == 5
    paged_ids = 2 + (2 + 1) + (2 + 2 + 1) + 2
    assert len(ids) == paged_ids + 2 + 4 + 3 + 3 + 4  # every notification id is new


def test_a_schedule_target_notifies_the_on_call_members_contacts() -> None:
    eng = engine(Route(policy="crisis"))
    d = opened(eng)
    t = eng.on_tick(d.entry, at(300))
    paged = [n for n in t.notifications if n.kind == "escalate"]
    assert pairs(paged) == [("slack", "U1"), ("email", "alice@example.com")]
    assert t.incident is not None and "alice@example.com" in t.incident.timeline[-2].text


def test_an_escalation_that_reaches_nobody_tells_nobody_it_escalated() -> None:
    # Level 2 is dan, on call without any contact and no fallback configured: nobody is
    # paged, so the earlier level is not told of an escalation that reached no one.
    lonely = Policy(id="lonely", levels=[
        Level(targets=[TargetSpec(slack="#crisis")], timeout_s=300),
        Level(targets=[TargetSpec(schedule="newcomers", via=["push"])], timeout_s=300),
    ])
    settings = EscalationSettings(route=Route(policy="lonely"), policies=[lonely],
                                  schedules=[NEWCOMERS], **SETTINGS)
    eng = EscalationEngine(settings=settings, policies=[lonely],
                           schedules={"newcomers": NEWCOMERS})
    t = eng.on_tick(opened(eng).entry, at(300))
    assert t.events == ["escalated:2"] and t.notifications == []


# -- next_due ------------------------------------------------------------------------------
def _pending(eng: EscalationEngine) -> dict[str, Any]:
    d = opened(eng, signal(0, "info"))
    return eng.on_signal(d.entry, signal(1, "warning"), at(40)).entry or {}


def _acked(eng: EscalationEngine) -> dict[str, Any]:
    d = opened(eng)
    assert d.incident is not None
    return eng.on_ack(d.entry, ack(incident_id=d.incident.id, now=at(100)), at(100)).entry or {}


def _acked_then_joined(eng: EscalationEngine) -> dict[str, Any]:
    return eng.on_signal(_acked(eng), signal(16), at(1000)).entry or {}


@pytest.mark.parametrize(("why", "build", "settings", "due"), [
    ("level 1 timeout of crisis (exec's is later)", lambda e: opened(e).entry, {}, 300),
    ("pending update before the level timeout", _pending, {}, 60),
    ("acknowledged: only auto-resolve", _acked, {}, 14400),
    ("auto-resolve sooner than any timeout", lambda e: opened(e).entry,
     {"resolve_after_s": 120}, 120),
    ("a later signal moves auto-resolve", _acked_then_joined, {}, 1000 + 14400),
])
def test_next_due_is_the_earliest_thing_to_do(
        why: str, build: Callable[[EscalationEngine], dict[str, Any]],
        settings: dict[str, Any], due: int) -> None:
    eng = engine(**settings)
    assert eng.next_due(build(eng)) == at(due), why


def test_next_due_reminder_and_none_once_resolved() -> None:
    eng = engine(Route(policy="default"), repeat_interval_s=600)
    d = opened(eng)
    t = eng.on_tick(d.entry, at(300))  # the only level times out: done, reminders start
    assert t.entry is not None and eng.next_due(t.entry) == at(900)
    assert d.incident is not None
    r = eng.on_ack(t.entry, ack("resolve", incident_id=d.incident.id, now=at(400)), at(400))
    assert r.entry is not None and eng.next_due(r.entry) is None


# -- ack and resolve -------------------------------------------------------------------------
def test_ack_notifies_updatable_channels_and_stops_escalation() -> None:
    eng = engine()
    d = opened(eng)
    inc_id = d.incident.id if d.incident else ""
    e = eng.on_tick(d.entry, at(300))
    assert pairs([n for n in e.notifications if n.kind == "escalate"]) == CRISIS_L2

    a = eng.on_ack(e.entry, ack(incident_id=inc_id, now=at(400)), at(400))
    inc = a.incident
    assert inc is not None
    assert (inc.state, inc.acked_by, inc.acked_at) == ("acknowledged", "ana", at(400))
    assert len(a.events) == 1 and seconds_of(a.events[0], "acked") == 400
    # Everyone notified so far, in order, on every channel: email replies, push replaces.
    everyone = CRISIS_L1 + EXEC_L1 + CRISIS_L2
    assert pairs(a.notifications) == everyone
    assert {n.channel for n in a.notifications} <= UPDATABLE_CHANNELS
    assert kinds(a.notifications) == {"acknowledge"}
    assert timeline(a)[-2:] == ["ack", "notification"]
    assert inc.timeline[-2].by == "ana" and "slack" in inc.timeline[-2].text

    entry = a.entry
    assert entry is not None and eng.next_due(entry) == at(14400)  # only auto-resolve is left
    before = json.dumps(entry)
    again = eng.on_ack(entry, ack(incident_id=inc_id, by="bo", now=at(500)), at(500))
    assert (again.entry, again.notifications, again.events) == (None, [], ["noop"])
    assert json.dumps(entry) == before

    for seconds in (900, 1200, 1800, 5000):  # past every level timeout and reminder
        t = eng.on_tick(entry, at(seconds))
        assert (t.notifications, t.events) == ([], []), seconds

    r = eng.on_ack(entry, ack("resolve", by="bo", incident_id=inc_id, now=at(6000)), at(6000))
    inc = r.incident
    assert inc is not None
    assert (inc.state, inc.resolved_by, inc.resolved_at) == ("resolved", "bo", at(6000))
    assert inc.acked_by == "ana"
    assert len(r.events) == 1 and seconds_of(r.events[0], "resolved") == 6000
    assert pairs(r.notifications) == everyone
    assert kinds(r.notifications) == {"resolve"}
    assert r.entry is not None and eng.next_due(r.entry) is None

    for action in ("ack", "resolve"):
        late = eng.on_ack(r.entry, ack(action, incident_id=inc_id, now=at(6100)), at(6100))
        assert (late.entry, late.notifications, late.events) == (None, [], ["noop"])
    assert eng.on_tick(r.entry, at(20000)).entry is None


def test_resolve_without_ack_and_ack_of_unknown_incident() -> None:
    eng = engine()
    d = opened(eng)
    assert d.incident is not None
    r = eng.on_ack(d.entry, ack("resolve", incident_id=d.incident.id, now=at(90)), at(90))
    assert r.incident is not None and r.incident.state == "resolved"
    assert r.incident.acked_by is None
    assert [seconds_of(e, "resolved") for e in r.events] == [90]
    assert pairs(r.notifications) == CRISIS_L1 + EXEC_L1
    unknown = eng.on_ack(None, ack(incident_id="acme.0123456789abcdef", now=at(1)), at(1))
    assert (unknown.entry, unknown.notifications, unknown.events) == (None, [], ["unknown"])


def test_a_claim_marks_its_sample_goes_on_the_timeline_and_updates_slack_only() -> None:
    eng = engine()
    d = opened(eng)
    assert d.incident is not None and d.entry is not None
    inc_id = d.incident.id
    due = eng.next_due(d.entry)

    def claim(key: str, now: datetime) -> Ack:
        return Ack(incident_id=inc_id, action="claim", by="Ana", source="console", at=now,
                   note="Ana is answering this", mention=key)

    assert eng.on_ack(d.entry, claim("x:404", at(30)), at(30)).events == ["noop"]
    c = eng.on_ack(d.entry, claim("x:0", at(60)), at(60))
    assert c.incident is not None and c.entry is not None
    assert c.events == ["claim"]
    assert [s.claim for s in c.incident.samples] == ["Ana is answering this"]
    assert c.incident.state == "open" and c.incident.acked_by is None
    [entry] = [t for t in c.incident.timeline if t.kind == "claim"]
    assert (entry.by, entry.text) == ("Ana", "Ana is answering this (x:0)")
    # Slack's message is edited to show it; nobody is paged or mailed for a claim.
    assert {n.channel for n in c.notifications} == {"slack"}
    assert pairs(c.notifications) == [p for p in CRISIS_L1 + EXEC_L1 if p[0] == "slack"]
    assert kinds(c.notifications) == {"update"}
    assert eng.next_due(c.entry) == due  # escalation goes on: a claim is not an ack
    done = eng.on_ack(c.entry, ack("resolve", incident_id=inc_id, now=at(90)), at(90))
    late = eng.on_ack(done.entry, claim("x:0", at(100)), at(100))
    assert (late.entry, late.events) == (None, ["noop"])


@pytest.mark.parametrize("acked", [False, True])
def test_auto_resolve_after_resolve_after_s_without_signals(acked: bool) -> None:
    eng = engine(resolve_after_s=1800)
    d = opened(eng)
    inc_id = d.incident.id if d.incident else ""
    entry = eng.on_signal(d.entry, signal(10), at(600)).entry  # last signal at +600
    if acked:
        entry = eng.on_ack(entry, ack(incident_id=inc_id, now=at(700)), at(700)).entry
    assert entry is not None and eng.on_tick(entry, at(700)).events == (
        [] if acked else ["escalated:2"])
    assert eng.next_due(entry) <= at(2400)
    assert not any(e.startswith("resolved") for e in eng.on_tick(entry, at(2399)).events)

    r = eng.on_tick(entry, at(2400))
    inc = r.incident
    assert inc is not None and inc.state == "resolved"
    assert inc.resolved_by == "escucha (no signal for 30 min)"
    assert inc.resolved_at == at(2400)
    assert inc.timeline[-2].kind == "resolve" and "via auto" in inc.timeline[-2].text
    assert [seconds_of(e, "resolved") for e in r.events] == [2400]
    assert kinds(r.notifications) == {"resolve"}
    assert {c for c, _ in pairs(r.notifications)} <= UPDATABLE_CHANNELS


# -- reopen ----------------------------------------------------------------------------------
def _resolved_at_600(eng: EscalationEngine) -> tuple[str, dict[str, Any]]:
    d = opened(eng)
    assert d.incident is not None
    inc_id = d.incident.id
    a = eng.on_ack(d.entry, ack(incident_id=inc_id, now=at(300)), at(300))
    r = eng.on_ack(a.entry, ack("resolve", incident_id=inc_id, now=at(600)), at(600))
    assert r.entry is not None
    return inc_id, r.entry


def test_a_signal_soon_after_resolution_reopens_the_same_incident() -> None:
    eng = engine()  # reopen_within_s=3600
    inc_id, entry = _resolved_at_600(eng)
    s = signal(60, "critical")
    d = eng.on_signal(entry, s, at(600 + 3600))
    inc = d.incident
    assert inc is not None and inc.id == inc_id
    assert d.events == ["reopened"]
    assert (inc.state, inc.acked_by, inc.acked_at, inc.resolved_by, inc.resolved_at) == (
        "open", None, None, None, None)
    assert inc.severity == "critical" and s.id in inc.signal_ids
    assert "reopen" in timeline(d)
    assert pairs(d.notifications) == CRISIS_L1 + EXEC_L1
    assert kinds(d.notifications) == {"escalate"}
    assert d.entry is not None and eng.next_due(d.entry) == at(600 + 3600 + 300)


def test_a_signal_after_reopen_within_s_opens_a_new_incident() -> None:
    eng = engine()
    inc_id, entry = _resolved_at_600(eng)
    d = eng.on_signal(entry, signal(70), at(600 + 3601))
    inc = d.incident
    assert inc is not None and inc.id != inc_id
    assert re.fullmatch(r"acme\.[0-9a-f]{16}", inc.id)
    assert d.events == ["opened"] and inc.state == "open"
    assert kinds(d.notifications) == {"trigger"}
    assert timeline(d) == ["signal", "notification", "notification"]


# -- quiet hours (more in test_quiet_hours.py) ------------------------------------------------
@pytest.mark.parametrize(("severity", "now", "expected"), [
    ("critical", T0, [("slack", "#day")]),          # except_severity: never held back
    ("warning", at(2 * 3600), [("slack", "#day")]),  # 14:00: outside the window
])
def test_outside_quiet_hours_a_level_is_notified_at_once(
        severity: Severity, now: datetime, expected: list[tuple[str, str]]) -> None:
    d = engine(Route(policy="night")).on_signal(None, signal(severity=severity), now)
    assert pairs(d.notifications) == expected and timeline(d) == ["signal", "notification"]
    assert d.incident is not None and d.incident.level == 1


@pytest.mark.parametrize("severity", ["warning", "info"])
def test_quiet_hours_defer_a_level_instead_of_skipping_it(severity: Severity) -> None:
    eng = engine(Route(policy="night"))
    d = eng.on_signal(None, signal(severity=severity), T0)  # 12:00, quiet 11:00-13:00
    assert d.notifications == [] and timeline(d) == ["signal", "deferred"]
    assert d.incident is not None
    assert d.incident.timeline[-1].text == "night level 1: quiet hours, deferred to 13:00 UTC"
    assert d.entry is not None and eng.next_due(d.entry) == at(3600)
    assert not eng.overdue(d.entry)
    assert eng.on_tick(d.entry, at(3599)).notifications == []
    t = eng.on_tick(d.entry, at(3600))
    assert pairs(t.notifications) == [("slack", "#day")] and kinds(t.notifications) == {"trigger"}
    assert all(n.level == 1 and n.created_at == at(3600) for n in t.notifications)
    assert t.entry is not None and eng.next_due(t.entry) == at(3600 + 300)  # from notified
    e = eng.on_tick(t.entry, at(3600 + 300))
    assert pairs(e.notifications) == [("slack", "#duty"), ("slack", "#day")]
    assert [n.kind for n in e.notifications] == ["escalate", "update"]  # #day is told
    assert e.events == ["escalated:2"]


def test_an_on_call_member_without_the_via_contact_is_reached_on_another() -> None:
    eng = engine(Route(policy="nobody"))  # carol has no push topic, but she has Slack
    d = opened(eng)
    assert pairs(d.notifications) == [("slack", "U3")]
    inc = d.incident
    assert inc is not None and inc.level == 1
    assert timeline(d) == ["signal", "fallback", "notification"]
    assert inc.timeline[1].text == ("nobody level 1: carol has no push contact; "
                                    "sent by slack instead")
    assert d.entry is not None and eng.next_due(d.entry) == at(300)
    t = eng.on_tick(d.entry, at(300))
    assert pairs(t.notifications) == [("slack", "#backup"), ("slack", "U3")]
    assert [n.kind for n in t.notifications] == ["escalate", "update"]
    assert t.events == ["escalated:2"]


def test_a_member_with_no_contact_goes_to_the_fallback_and_the_timeline_says_so() -> None:
    eng = engine(Route(policy="unreachable"),
                 fallback=[TargetSpec(email=["ops@example.com"]), TargetSpec(slack="#backup")])
    d = opened(eng)
    assert pairs(d.notifications) == [("email", "ops@example.com"), ("slack", "#backup")]
    assert d.incident is not None
    assert d.incident.timeline[1].text == (
        "unreachable level 1: dan (on call in newcomers) has no contact: nobody reachable; "
        "fallback → email ops@example.com, slack #backup")


def test_a_level_with_nobody_reachable_and_no_fallback_is_logged_and_escalates() -> None:
    eng = engine(Route(policy="unreachable"))
    d = opened(eng)
    assert d.notifications == []
    inc = d.incident
    assert inc is not None and timeline(d) == ["signal", "fallback", "skipped"]
    assert "escalation.fallback reaches nobody" in inc.timeline[1].text
    assert inc.timeline[-1].text == "unreachable level 1: nobody to notify"
    assert d.entry is not None and eng.next_due(d.entry) == at(300)
    t = eng.on_tick(d.entry, at(300))
    assert pairs(t.notifications) == [("slack", "#backup")]  # level 1 reached nobody to tell
    assert [n.kind for n in t.notifications] == ["escalate"]
    assert t.events == ["escalated:2"]


# -- silences --------------------------------------------------------------------------------
def silence(matchers: dict[str, str] | None = None, *, id: str = "s1", minutes: float = 20,
            incident_id: str | None = None) -> Silence:
    return Silence(id=id, matchers=matchers or {"watch": "acme"},
                   starts_at=T0 - timedelta(hours=1), ends_at=T0 + timedelta(minutes=minutes),
                   created_by="ana", comment="planned launch", incident_id=incident_id)


def test_a_silenced_incident_waits_for_the_silence_to_end() -> None:
    eng = engine(silences=lambda: [silence(minutes=20)])
    d = opened(eng)
    assert d.events == ["opened"] and d.notifications == []
    assert timeline(d) == ["signal", "silenced"]
    assert d.incident is not None and d.incident.timeline[-1].by == "ana"
    entry = d.entry
    assert entry is not None

    w = eng.on_signal(entry, signal(2, "critical"), at(200))  # worse, but silenced
    assert w.notifications == [] and w.entry is not None
    assert not w.entry["esc"]["pending_update"]
    for seconds in (300, 600, 1199):  # past level 1's timeout, still silenced
        t = eng.on_tick(entry, at(seconds))
        assert (t.entry, t.notifications, t.events) == (None, [], []), seconds

    t = eng.on_tick(entry, at(1200))
    assert pairs(t.notifications) == CRISIS_L1 + EXEC_L1
    assert kinds(t.notifications) == {"trigger"}
    assert t.incident is not None and t.incident.timeline[-3].kind == "silenced"
    assert t.entry is not None and eng.next_due(t.entry) == at(1200 + 300)


def test_a_silence_of_everything_says_so_on_the_timeline() -> None:
    everything = Silence(id="s-all", matchers={"watch": "*"}, all=True,
                         starts_at=T0 - timedelta(hours=1), ends_at=T0 + timedelta(minutes=20),
                         created_by="ops")
    d = opened(engine(silences=lambda: [everything]))
    assert d.incident is not None
    assert "every incident" in d.incident.timeline[-1].text
    narrow = opened(engine(silences=lambda: [silence()]))
    assert narrow.incident is not None
    assert "every incident" not in narrow.incident.timeline[-1].text


def test_next_due_of_a_silenced_incident_is_the_end_of_its_silence() -> None:
    # The escalation clock only ticks incidents that are due; a silenced incident must come
    # due when its silence ends, or it stays silent until auto-resolve swallows it.
    active = [silence(minutes=20)]
    eng = engine(silences=lambda: active)
    d = opened(eng)
    assert d.entry is not None
    assert eng.next_due(d.entry) == at(1200)
    active.clear()  # expired early (deleted over the API): due at once
    due = eng.next_due(d.entry)
    assert due is not None and due <= at(1)
    assert pairs(eng.on_tick(d.entry, at(1)).notifications) == CRISIS_L1 + EXEC_L1


def test_an_overlapping_silence_takes_over_when_the_first_ends() -> None:
    eng = engine(silences=lambda: [silence(minutes=20), silence(id="s2", minutes=40)])
    d = opened(eng)
    assert d.entry is not None and eng.next_due(d.entry) == at(1200)
    t = eng.on_tick(d.entry, at(1200))
    assert t.notifications == [] and t.entry is not None
    assert t.entry["esc"]["silenced"] == "s2"
    assert eng.next_due(t.entry) == at(2400)
    assert eng.on_tick(t.entry, at(2399)).entry is None
    assert pairs(eng.on_tick(t.entry, at(2400)).notifications) == CRISIS_L1 + EXEC_L1


def test_an_incident_acknowledged_while_silenced_is_not_paged_when_the_silence_ends() -> None:
    eng = engine(silences=lambda: [silence(minutes=20)])
    d = opened(eng)
    assert d.incident is not None
    a = eng.on_ack(d.entry, ack(incident_id=d.incident.id, now=at(300)), at(300))
    assert a.notifications == [] and a.incident is not None
    assert a.incident.state == "acknowledged"
    t = eng.on_tick(a.entry, at(1200))
    assert t.notifications == [] and t.events == []
    assert t.incident is not None and t.incident.state == "acknowledged"
    for seconds in (1500, 3000, 9000):
        assert eng.on_tick(a.entry, at(seconds)).notifications == [], seconds


@pytest.mark.parametrize(("why", "sil", "resolved", "silenced"), [
    ("matches", silence(), set(), True),
    ("other watch", silence({"watch": "rival"}), set(), False),
    ("bound to an open incident", silence(incident_id="acme.0000000000000000"), set(), True),
    ("bound to a resolved incident", silence(incident_id="acme.0000000000000000"),
     {"acme.0000000000000000"}, False),
    ("over", silence(minutes=-1), set(), False),
])
def test_which_silences_hold_an_incident(why: str, sil: Silence, resolved: set[str],
                                         silenced: bool) -> None:
    eng = engine(silences=lambda: [sil], resolved_ids=lambda: resolved)
    d = opened(eng)
    assert (d.notifications == []) == silenced, why
    assert ("silenced" in timeline(d)) == silenced, why


# -- receipts and the timeline -----------------------------------------------------------------
@pytest.mark.parametrize(("outcome", "kind"), [("delivered", "delivery"), ("failed", "failed")])
def test_on_delivery_records_the_receipt(outcome: str, kind: str) -> None:
    eng = engine()
    d = opened(eng)
    r = eng.on_delivery(d.entry, channel="slack", target="#crisis", outcome=outcome,
                        detail="ts=1.2", now=at(5))
    assert r.notifications == [] and r.events == []
    inc = r.incident
    assert inc is not None
    assert inc.timeline[-1].kind == kind and inc.timeline[-1].at == at(5)
    assert inc.timeline[-1].text == f"slack #crisis: {outcome} ts=1.2"
    assert eng.on_delivery(None, channel="slack", target="#x", outcome=outcome, detail="",
                           now=at(6)).entry is None


def test_the_timeline_keeps_the_last_200_entries() -> None:
    eng = engine()
    d = opened(eng)
    entry = d.entry
    for i in range(250):
        entry = eng.on_delivery(entry, channel="slack", target="#crisis", outcome="delivered",
                                detail=str(i), now=at(i)).entry
    assert entry is not None
    inc = Decision(entry).incident
    assert inc is not None and len(inc.timeline) == 200
    assert inc.timeline[-1].text.endswith(" 249")
    assert inc.timeline[0].text.endswith(" 50")  # the opening entries went first


# -- the table stores JSON ---------------------------------------------------------------------
Step = Callable[[EscalationEngine, dict[str, Any] | None, str], Decision]

SCENARIO: list[tuple[str, Step]] = [
    ("open", lambda e, x, i: e.on_signal(x, signal(0, "info"), at(0))),
    ("join", lambda e, x, i: e.on_signal(x, signal(1, "info"), at(60))),
    ("worsen", lambda e, x, i: e.on_signal(x, signal(2, "warning"), at(120))),
    ("worsen again", lambda e, x, i: e.on_signal(x, signal(3, "critical"), at(130))),
    ("redelivered", lambda e, x, i: e.on_signal(x, signal(3, "critical"), at(131))),
    ("pending update", lambda e, x, i: e.on_tick(x, at(180))),
    ("escalate", lambda e, x, i: e.on_tick(x, at(300))),
    ("receipt", lambda e, x, i: e.on_delivery(x, channel="slack", target="U1",
                                              outcome="delivered", detail="ok", now=at(301))),
    ("escalate again", lambda e, x, i: e.on_tick(x, at(900))),
    ("ack", lambda e, x, i: e.on_ack(x, ack(incident_id=i, now=at(1000)), at(1000))),
    ("ack again", lambda e, x, i: e.on_ack(x, ack(incident_id=i, now=at(1001)), at(1001))),
    ("quiet tick", lambda e, x, i: e.on_tick(x, at(5000))),
    ("resolve", lambda e, x, i: e.on_ack(x, ack("resolve", incident_id=i, now=at(6000)),
                                         at(6000))),
    ("reopen", lambda e, x, i: e.on_signal(x, signal(100, "warning"), at(6100))),
    ("escalate after reopen", lambda e, x, i: e.on_tick(x, at(6400))),
    ("auto-resolve", lambda e, x, i: e.on_tick(x, at(6100 + 14400))),
]


def test_entries_survive_a_json_round_trip() -> None:
    live, stored = engine(), engine()
    live_entry: dict[str, Any] | None = None
    stored_json: str | None = None
    inc_id = ""
    for name, step in SCENARIO:
        a = step(live, live_entry, inc_id)
        b = step(stored, None if stored_json is None else json.loads(stored_json), inc_id)
        assert a.events == b.events, name
        assert [n.model_dump() for n in a.notifications] == [
            n.model_dump() for n in b.notifications], name
        assert (a.entry is None) == (b.entry is None), name
        if a.entry is None or b.entry is None:
            continue
        assert json.dumps(a.entry, sort_keys=True) == json.dumps(b.entry, sort_keys=True), name
        assert a.incident == b.incident, name
        assert live.next_due(a.entry) == stored.next_due(b.entry), name
        live_entry, stored_json = a.entry, json.dumps(b.entry)
        inc_id = a.incident.id if a.incident else inc_id
    assert live_entry is not None and live_entry["incident"]["state"] == "resolved"


def test_group_wait_holds_the_first_alert_and_sends_the_latest_severity() -> None:
    from datetime import timedelta as _td

    from agents.escalate.incidents import EscalationEngine as _Engine
    from streams.config.escalation import EscalationSettings as _Esc
    from streams.config.escalation import Level as _Level
    from streams.config.escalation import Policy as _Policy
    from streams.config.escalation import TargetSpec as _Target

    policy = _Policy(id="default", levels=[_Level(targets=[_Target(slack="#c")])])
    engine = _Engine(settings=_Esc(group_wait_s=30, policies=[policy]), policies=[policy],
                     schedules={})
    opened = engine.on_signal(None, signal(severity="warning"), T0)
    assert opened.notifications == [] and opened.events == ["opened"]
    assert opened.entry is not None
    assert engine.next_due(opened.entry) == T0 + _td(seconds=30)
    assert engine.on_tick(opened.entry, T0 + _td(seconds=29)).entry is None
    worse = engine.on_signal(opened.entry, signal(minute=1, severity="critical"),
                             T0 + _td(seconds=10))
    assert worse.notifications == []
    assert worse.entry is not None
    sent = engine.on_tick(worse.entry, T0 + _td(seconds=30))
    assert [(n.kind, n.incident.severity) for n in sent.notifications] == [("trigger",
                                                                             "critical")]


def test_a_warning_that_turns_critical_reaches_the_critical_route() -> None:
    from agents.escalate.incidents import EscalationEngine as _Engine
    from streams.config.escalation import EscalationSettings as _Esc
    from streams.config.escalation import Level as _Level
    from streams.config.escalation import Policy as _Policy
    from streams.config.escalation import Route as _Route
    from streams.config.escalation import TargetSpec as _Target

    default = _Policy(id="default", levels=[_Level(targets=[_Target(slack="#c")])])
    exec_ = _Policy(id="exec", levels=[_Level(targets=[_Target(email=["ceo@x.com"])])])
    route = _Route(policy="default", routes=[
        _Route(match={"severity": "critical"}, policy="exec", continue_=True),
        _Route(policy="default")])
    engine = _Engine(settings=_Esc(policies=[default, exec_], route=route),
                     policies=[default, exec_], schedules={})
    opened = engine.on_signal(None, signal(severity="warning"), T0)
    assert [n.channel for n in opened.notifications] == ["slack"]
    worse = engine.on_signal(opened.entry, signal(minute=1, severity="critical"), T0)
    assert ("email", "ceo@x.com") in [(n.channel, n.target) for n in worse.notifications]


def test_group_by_decides_whether_detectors_share_an_incident() -> None:
    from streams.config.escalation import EscalationSettings as _Esc

    policy = Policy(id="default", levels=[Level(targets=[TargetSpec(slack="#c")])])
    by_watch = EscalationEngine(settings=_Esc(policies=[policy]), policies=[policy],
                                schedules={})
    first = by_watch.on_signal(None, signal(0, "warning", detector="negative_spike"), T0)
    joined = by_watch.on_signal(first.entry, signal(0, "warning", detector="volume_spike",
                                                    tag="v"), T0)
    assert joined.notifications == [] and "opened" not in joined.events
    per_detector = EscalationEngine(settings=_Esc(policies=[policy],
                                                  group_by=["watch", "detector"]),
                                    policies=[policy], schedules={})
    a = per_detector.fingerprint(signal(0, "warning", detector="negative_spike"))
    b = per_detector.fingerprint(signal(0, "warning", detector="volume_spike"))
    assert a == "acme:negative_spike" and b == "acme:volume_spike"


def _surge(minute: float, scale_min: int, severity: Severity = "warning", *,
           seq: int = 1) -> Signal:
    return signal(minute, severity, detector="negative_surge", tag=str(seq)).model_copy(
        update={"scale_min": scale_min, "episode": "ep1", "lasting_min": 60 * seq,
                "summary": f"negatives running 2x normal for {seq} h"})


def test_an_episode_update_rewrites_the_summary_without_paging() -> None:
    eng = engine()
    d = opened(eng, _surge(0, 60))
    grown = eng.on_signal(d.entry, _surge(120, 360, seq=3), at(7200))
    assert grown.notifications == []  # same severity: nobody is paged again
    assert grown.incident is not None
    assert grown.incident.summary == "negatives running 2x normal for 3 h"
    other = eng.on_signal(grown.entry, signal(130, detector="negative_spike"), at(7800))
    assert other.incident is not None  # another detector joins without taking the summary
    assert other.incident.summary == "negatives running 2x normal for 3 h"


def _said(s: Signal, n: int) -> Signal:
    """``s`` with summary parts that name ``n`` (so each signal's parts are told apart)."""
    return s.model_copy(update={"summary_parts": [Phrase(key="emerging_term", params={
        "term": f"#t{n}", "count": n, "minutes": 15})]})


def _terms(d: Decision) -> list[object]:
    assert d.incident is not None
    return [p.params["term"] for p in d.incident.summary_parts]


def test_summary_parts_go_wherever_the_summary_goes() -> None:
    eng = engine()
    d = opened(eng, _said(_surge(0, 60), 1))
    assert _terms(d) == ["#t1"]
    grown = eng.on_signal(d.entry, _said(_surge(120, 360, seq=3), 2), at(7200))
    assert _terms(grown) == ["#t2"]  # the episode grew: new words, new parts
    other = eng.on_signal(grown.entry, _said(signal(130), 3), at(7800))
    assert _terms(other) == ["#t2"]  # joined silently: the summary and its parts stay
    worse = eng.on_signal(other.entry, _said(signal(131, "critical"), 4), at(7860))
    assert worse.incident is not None and worse.incident.severity == "critical"
    assert _terms(worse) == ["#t4"]
    _, resolved = _resolved_at_600(eng)
    again = eng.on_signal(resolved, _said(signal(60, "critical"), 5), at(1200))
    assert again.events == ["reopened"] and _terms(again) == ["#t5"]
    # Timeline text stays English: it is the stored record.
    assert again.incident is not None and "#t5" not in again.incident.timeline[-1].text
    # A signal without parts (an older detector) takes the stale parts away.
    plain = eng.on_signal(worse.entry, _surge(300, 360, "critical", seq=9), at(18000))
    assert plain.incident is not None and plain.incident.summary_parts == []


def test_a_long_window_keeps_its_incident_open_longer_but_capped() -> None:
    eng = engine(resolve_after_s=1800)
    six = opened(eng, _surge(0, 360))
    assert six.entry is not None
    assert eng.next_due(six.entry) is not None
    assert not any(e.startswith("resolved") for e in eng.on_tick(six.entry, at(1801)).events)
    assert any(e.startswith("resolved") for e in eng.on_tick(six.entry, at(6 * 3600)).events)
    day = opened(eng, _surge(0, 1440))
    assert day.entry is not None  # 24 h of evidence holds 6 h at most
    assert any(e.startswith("resolved") for e in eng.on_tick(day.entry, at(6 * 3600)).events)
    five = opened(eng, signal(0))  # a 5-minute spike: resolve_after_s as before
    assert five.entry is not None
    assert any(e.startswith("resolved") for e in eng.on_tick(five.entry, at(1800)).events)


def test_entries_carry_their_phrase_for_every_readers_language() -> None:
    # A signal with clauses: its entry holds them, not the English summary a second time.
    spike = Phrase(key="negative_spike", params={"observed": 20, "minutes": 1, "ratio": 5.0,
                                                 "expected": 4.0, "p": 1e-6, "authors": 9})
    said = signal().model_copy(update={"summary_parts": [spike]})
    d = opened(engine(), said)
    assert d.incident is not None and d.entry is not None
    first = d.incident.timeline[0]
    assert first.phrase == Phrase(key="signal", params={})
    assert first.summary_parts == [spike]
    assert say(first, locale="es").startswith("20 menciones negativas en 1 min")
    # One without clauses keeps its English summary as the value to show.
    plain = opened(engine()).incident
    assert plain is not None
    assert plain.timeline[0].phrase == Phrase(key="signal",
                                              params={"summary": "warning at minute 0"})
    # A claim: the sample and the timeline say it in the reader's language too.
    claim = Phrase(key="claim", params={"state": "claimed", "who": "Ana", "reason": ""})
    c = engine().on_ack(d.entry, Ack(incident_id=d.incident.id, action="claim", by="Ana",
                                     source="console", at=at(60), mention="x:0", claim=claim,
                                     note="Ana is answering this"), at(60))
    assert c.incident is not None
    assert c.incident.samples[0].claim_phrase == claim
    [entry] = [t for t in c.incident.timeline if t.kind == "claim"]
    assert entry.text == "Ana is answering this (x:0)"
    assert say(entry, locale="es") == "Ana la está respondiendo (x:0)"
