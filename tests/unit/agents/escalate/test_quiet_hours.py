"""Quiet hours defer: the engine and the stage across Madrid nights, DST changes included.

Europe/Madrid changes to summer time on Sunday 2026-03-29 and back on Sunday 2026-10-25. The
quiet hours are 22:00-07:00 local; every time is set by hand, nothing reads the clock.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from agents.escalate.incidents import Decision, EscalationEngine
from agents.escalate.stage import EscalateStage
from notifiers import registry
from streams.config.escalation import EscalationSettings, Level, Policy, QuietHours, Route
from streams.config.escalation import TargetSpec as T
from streams.core import topics
from streams.core.records import Ack, Notification, Severity, Signal, dumps, stable_id
from streams.runtime.metrics import Metrics

NIGHT = QuietHours(start=time(22), end=time(7), timezone="Europe/Madrid")
POLICIES = [
    # Every level quiet at night: the case that used to notify nobody.
    Policy(id="day-team", levels=[
        Level(targets=[T(slack="#comms")], timeout_s=600, quiet_hours=NIGHT),
        Level(targets=[T(email=["boss@example.com"])], timeout_s=600, quiet_hours=NIGHT),
    ]),
    # One level, so reminders start after ten minutes.
    Policy(id="evening", levels=[
        Level(targets=[T(slack="#comms")], timeout_s=600, quiet_hours=NIGHT)]),
    # A quiet level 1 and a 24/7 level 2, twice round.
    Policy(id="rounds", repeat=1, levels=[
        Level(targets=[T(slack="#comms")], timeout_s=600, quiet_hours=NIGHT),
        Level(targets=[T(slack="#duty")], timeout_s=600),
    ]),
]


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def engine(policy: str, **settings: Any) -> EscalationEngine:
    cfg = EscalationSettings(route=Route(policy=policy), policies=POLICIES, **{
        "resolve_after_s": 1800, "repeat_interval_s": 3600, **settings})
    return EscalationEngine(settings=cfg, policies=POLICIES, schedules={})


def signal(at: datetime, severity: Severity = "warning", n: int = 0) -> Signal:
    return Signal(id=stable_id("acme", at.isoformat(), severity, str(n)), watch_id="acme",
                  detector="negative_spike", severity=severity,
                  window_start=at - timedelta(minutes=1), window_end=at, observed=20,
                  expected=4, score=5, summary=f"{severity} {n}")


def sent(d: Decision) -> list[tuple[str, str, str, datetime]]:
    return [(n.channel, n.target, n.kind, n.created_at) for n in d.notifications]


def last_text(d: Decision) -> str:
    assert d.incident is not None
    return d.incident.timeline[-1].text


@pytest.mark.parametrize(("opened", "ends"), [
    ("2026-03-28T22:00", "2026-03-29T05:00"),  # Sat 23:00 CET → Sun 07:00 CEST
    ("2026-10-24T21:00", "2026-10-25T06:00"),  # Sat 23:00 CEST → Sun 07:00 CET
])
def test_a_warning_opened_at_night_is_notified_at_seven_and_not_resolved_unseen(
        opened: str, ends: str) -> None:
    eng, t0, seven = engine("day-team"), utc(opened), utc(ends)
    d = eng.on_signal(None, signal(t0), t0)
    assert d.notifications == [] and d.events == ["opened"]
    day = "2026-03-29" if t0.month == 3 else "2026-10-25"
    assert last_text(d) == ("day-team level 1: quiet hours, deferred to 07:00 Europe/Madrid "
                            f"on Sun {day}")
    entry = d.entry
    assert entry is not None and eng.next_due(entry) == seven  # the clock ticks it then
    assert not eng.overdue(entry)
    # Half an hour without signals used to auto-resolve it here, unseen.
    for t in (t0 + timedelta(minutes=30), t0 + timedelta(hours=3), seven - timedelta(seconds=1)):
        quiet = eng.on_tick(entry, t)
        assert (quiet.notifications, quiet.events) == ([], []), t
    assert entry["incident"]["state"] == "open"

    told = eng.on_tick(entry, seven)
    assert sent(told) == [("slack", "#comms", "trigger", seven)]
    assert told.incident is not None and told.incident.level == 1
    assert eng.next_due(entry) == seven + timedelta(seconds=600)  # timeout from 07:00
    up = eng.on_tick(entry, seven + timedelta(seconds=600))
    assert sent(up) == [("email", "boss@example.com", "escalate", up.notifications[0].created_at),
                        ("slack", "#comms", "update", up.notifications[0].created_at)]
    assert up.events == ["escalated:2"]

    # Auto-resolve gives the people told at 07:00 the usual half hour.
    assert eng.next_due(entry) == seven + timedelta(seconds=1200)  # level 2's timeout first
    assert eng.on_tick(entry, seven + timedelta(seconds=1200)).events == []
    assert eng.next_due(entry) == seven + timedelta(seconds=1800)
    assert eng.on_tick(entry, seven + timedelta(seconds=1799)).events == []
    r = eng.on_tick(entry, seven + timedelta(seconds=1800))
    assert r.incident is not None and r.incident.state == "resolved"
    assert r.source == "auto" and r.events[0].startswith("resolved:")


def test_reminders_wait_for_the_end_of_the_quiet_hours() -> None:
    eng = engine("evening", resolve_after_s=86400)
    t0 = utc("2026-10-24T18:30")  # 20:30 CEST
    d = eng.on_signal(None, signal(t0), t0)
    assert [n.target for n in d.notifications] == ["#comms"]
    entry = d.entry
    assert entry is not None
    assert eng.on_tick(entry, t0 + timedelta(minutes=10)).notifications == []  # done
    assert eng.overdue(entry)
    first = t0 + timedelta(minutes=70)  # 21:40 CEST: still evening
    assert eng.next_due(entry) == first
    assert sent(eng.on_tick(entry, first)) == [("slack", "#comms", "reminder", first)]

    night = first + timedelta(hours=1)  # 22:40 CEST
    held = eng.on_tick(entry, night)
    assert held.notifications == []
    assert last_text(held) == ("evening reminder (level 1): quiet hours, deferred to 07:00 "
                               "Europe/Madrid on Sun 2026-10-25")
    seven = utc("2026-10-25T06:00")  # 07:00 CET
    assert eng.next_due(entry) == seven
    assert not eng.overdue(entry)  # nobody should be paged about it at night either
    assert eng.on_tick(entry, seven - timedelta(seconds=1)).notifications == []
    assert sent(eng.on_tick(entry, seven)) == [("slack", "#comms", "reminder", seven)]
    assert eng.overdue(entry)
    assert eng.next_due(entry) == seven + timedelta(hours=1)


def test_a_later_level_waits_for_the_deferred_one_and_repeats_obey_quiet_hours() -> None:
    eng = engine("rounds", resolve_after_s=86400)
    t0 = utc("2026-03-02T20:50")  # Monday 21:50 CET
    d = eng.on_signal(None, signal(t0), t0)
    assert [n.target for n in d.notifications] == ["#comms"]
    entry = d.entry
    assert entry is not None
    ten = eng.on_tick(entry, t0 + timedelta(minutes=10))  # 22:00: level 2 is 24/7
    assert [(n.target, n.kind) for n in ten.notifications] == [("#duty", "escalate"),
                                                                ("#comms", "update")]
    assert ten.events == ["escalated:2"]
    again = eng.on_tick(entry, t0 + timedelta(minutes=20))  # round 2 starts at a quiet level
    assert again.notifications == [] and again.events == ["escalated:1"]
    assert "deferred to 07:00 Europe/Madrid on Tue 2026-03-03" in last_text(again)
    seven = utc("2026-03-03T06:00")
    assert eng.next_due(entry) == seven
    for t in (t0 + timedelta(minutes=30), t0 + timedelta(hours=4)):  # #duty is not paged again
        assert eng.on_tick(entry, t).notifications == [], t
    assert sent(eng.on_tick(entry, seven)) == [("slack", "#comms", "escalate", seven)]
    later = eng.on_tick(entry, seven + timedelta(minutes=10))
    assert [(n.target, n.kind) for n in later.notifications] == [("#duty", "escalate"),
                                                                  ("#comms", "update")]


def test_opened_at_night_the_24_7_level_is_told_only_after_the_deferred_one() -> None:
    eng = engine("rounds")
    t0 = utc("2026-03-02T22:00")  # 23:00 CET
    entry = eng.on_signal(None, signal(t0), t0).entry
    assert entry is not None
    for t in (t0 + timedelta(minutes=10), t0 + timedelta(hours=5)):
        assert eng.on_tick(entry, t).notifications == [], t
    seven = utc("2026-03-03T06:00")
    assert [n.target for n in eng.on_tick(entry, seven).notifications] == ["#comms"]
    assert [(n.target, n.kind) for n in eng.on_tick(entry, seven + timedelta(minutes=10))
            .notifications] == [("#duty", "escalate"), ("#comms", "update")]


def test_a_deferred_warning_that_turns_critical_breaks_through() -> None:
    eng = engine("day-team")
    t0 = utc("2026-03-02T22:00")
    d = eng.on_signal(None, signal(t0), t0)
    assert d.notifications == []
    later = t0 + timedelta(minutes=5)
    w = eng.on_signal(d.entry, signal(later, "critical", 1), later)
    assert [(n.target, n.kind, n.incident.severity) for n in w.notifications] == [
        ("#comms", "trigger", "critical")]
    assert w.entry is not None and eng.next_due(w.entry) == later + timedelta(seconds=600)
    quiet = eng.on_signal(w.entry, signal(later, "critical", 2), later)  # joins silently
    assert quiet.notifications == []


def test_a_deferral_is_said_once_when_a_worse_signal_is_still_held_back() -> None:
    eng = engine("day-team")
    t0 = utc("2026-03-02T22:00")
    d = eng.on_signal(None, signal(t0, "info"), t0)
    w = eng.on_signal(d.entry, signal(t0, "warning", 1), t0 + timedelta(minutes=5))
    assert w.notifications == [] and w.events == ["worsened"]
    assert w.incident is not None
    assert [e.text for e in w.incident.timeline].count(
        "day-team level 1: quiet hours, deferred to 07:00 Europe/Madrid on Tue 2026-03-03") == 1
    assert w.entry is not None and eng.next_due(w.entry) == utc("2026-03-03T06:00")


def test_an_incident_reopened_at_night_waits_for_seven_and_is_not_resolved_unseen() -> None:
    eng = engine("day-team")
    t0 = utc("2026-03-02T12:00")
    d = eng.on_signal(None, signal(t0), t0)
    assert d.incident is not None and d.entry is not None
    eng.on_tick(d.entry, t0 + timedelta(seconds=600))  # level 2, the boss, by day
    assert d.entry["incident"]["level"] == 2
    night = utc("2026-03-02T21:30")  # 22:30 CET, an hour after a person resolved it
    done = eng.on_ack(d.entry, Ack(incident_id=d.incident.id, action="resolve", by="ana",
                                   source="api", at=night), night - timedelta(hours=1))
    assert done.entry is not None
    again = eng.on_signal(done.entry, signal(night, n=1), night)
    assert again.events == ["reopened"] and again.notifications == []
    assert again.incident is not None and again.incident.level == 1
    assert again.entry is not None and eng.next_due(again.entry) == utc("2026-03-03T06:00")
    assert eng.on_tick(again.entry, night + timedelta(hours=1)).events == []
    assert again.entry["incident"]["state"] == "open"


def test_an_incident_acknowledged_while_deferred_is_not_paged_at_seven() -> None:
    eng = engine("day-team")
    t0 = utc("2026-03-02T22:00")
    d = eng.on_signal(None, signal(t0), t0)
    assert d.incident is not None
    a = eng.on_ack(d.entry, Ack(incident_id=d.incident.id, action="ack", by="ana",
                                source="console", at=t0), t0 + timedelta(minutes=1))
    assert a.entry is not None and a.notifications == []
    # Someone has seen it: auto-resolve runs as usual, before 07:00.
    assert eng.next_due(a.entry) == t0 + timedelta(seconds=1800)
    r = eng.on_tick(a.entry, t0 + timedelta(seconds=1800))
    assert r.incident is not None and r.incident.state == "resolved" and r.notifications == []


# -- the stage: the overdue gauge and MTTA/MTTR by who ended it -----------------------------
def stage(policy: str, **settings: Any) -> EscalateStage:
    metrics = Metrics(registry=CollectorRegistry(), channels=registry.names, watches=["acme"])
    return EscalateStage(engine=engine(policy, **settings), incidents={}, by_fingerprint={},
                         metrics=metrics, tick_debounce_s=0)


def sample(s: EscalateStage, name: str, **labels: str) -> float | None:
    return s.metrics.registry.get_sample_value(name, labels)


def tick(s: EscalateStage, now: datetime) -> list[Notification]:
    out = []
    for incident_id in s.due(now, now.timestamp()):
        for send in s.handle(topics.ESCALATION.name, incident_id.encode(), now):
            if send.topic == topics.NOTIFICATIONS:
                out.append(Notification.model_validate_json(send.value))
    return out


def overdue(s: EscalateStage, now: datetime) -> float | None:
    s.due(now, now.timestamp())
    return sample(s, "escucha_incidents_overdue", severity="warning")


def test_the_overdue_gauge_leaves_out_an_incident_waiting_for_quiet_hours_to_end() -> None:
    s = stage("evening", resolve_after_s=86400)
    t0 = utc("2026-03-02T19:30")  # 20:30 CET
    s.handle(topics.SIGNALS.name, dumps(signal(t0)), t0)
    assert overdue(s, t0) == 0
    assert tick(s, t0 + timedelta(minutes=10)) == []  # level 1 times out: the policy is done
    assert overdue(s, t0 + timedelta(minutes=11)) == 1
    assert [n.kind for n in tick(s, t0 + timedelta(minutes=70))] == ["reminder"]  # 21:40
    assert tick(s, t0 + timedelta(minutes=130)) == []  # 22:40: the reminder waits
    for t in (t0 + timedelta(minutes=131), utc("2026-03-03T05:59")):
        assert overdue(s, t) == 0, t
        assert tick(s, t) == [], t
    assert [(n.kind, n.created_at) for n in tick(s, utc("2026-03-03T06:00"))] == [
        ("reminder", utc("2026-03-03T06:00"))]
    assert overdue(s, utc("2026-03-03T06:01")) == 1


def test_a_deferred_incident_is_never_overdue_and_is_told_at_seven() -> None:
    s = stage("day-team")
    t0 = utc("2026-03-28T22:00")
    s.handle(topics.SIGNALS.name, dumps(signal(t0)), t0)
    t = t0
    while t < utc("2026-03-29T05:00"):
        assert tick(s, t) == [] and overdue(s, t) == 0, t
        t += timedelta(minutes=15)
    assert [(n.target, n.created_at) for n in tick(s, utc("2026-03-29T05:00"))] == [
        ("#comms", utc("2026-03-29T05:00"))]


def _time_to(s: EscalateStage, what: str, by: str) -> float | None:
    return sample(s, f"escucha_time_to_{what}_seconds_count", severity="warning", watch="acme",
                  by=by)


def test_mtta_and_mttr_are_split_between_people_and_auto_resolve() -> None:
    s = stage("evening")
    t0 = utc("2026-03-02T12:00")
    for by in ("person", "auto"):  # every series exists from the start, at 0
        assert _time_to(s, "acknowledge", by) == _time_to(s, "resolve", by) == 0
    out = s.handle(topics.SIGNALS.name, dumps(signal(t0)), t0)
    inc_id = out[0].key.decode()
    ack = Ack(incident_id=inc_id, action="ack", by="ana", source="slack", at=t0)
    s.handle(topics.ACKS.name, dumps(ack), t0 + timedelta(seconds=90))
    done = ack.model_copy(update={"action": "resolve"})
    s.handle(topics.ACKS.name, dumps(done), t0 + timedelta(seconds=600))
    assert _time_to(s, "acknowledge", "person") == _time_to(s, "resolve", "person") == 1
    assert sample(s, "escucha_time_to_resolve_seconds_sum", severity="warning", watch="acme",
                  by="person") == 600

    t1 = utc("2026-03-03T12:00")  # a new incident, left alone until it resolves itself
    s.handle(topics.SIGNALS.name, dumps(signal(t1, n=1)), t1)
    tick(s, t1 + timedelta(seconds=1800))
    assert _time_to(s, "resolve", "auto") == 1
    assert _time_to(s, "resolve", "person") == 1 and _time_to(s, "acknowledge", "auto") == 0
