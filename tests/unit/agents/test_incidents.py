"""IncidentBook: open, join silently, re-notify when worse, re-open after a quiet spell."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from agents.incidents import IncidentBook, Target
from streams.records import SampleMention, Severity, Signal, stable_id

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
TARGETS = [Target("slack", "#alerts"), Target("console", "stdout"), Target("slack", "#exec")]
RESOLVE = timedelta(minutes=30)


def signal(minute: int, severity: Severity = "warning", *, watch: str = "acme",
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


@pytest.fixture
def book() -> IncidentBook:
    return IncidentBook(resolve_after=RESOLVE, level1=TARGETS)


def test_new_signal_opens_an_incident_and_notifies_every_target(book: IncidentBook) -> None:
    s = signal(0)
    decision = book.on_signal(None, s)
    assert decision is not None and decision.opened
    inc = decision.incident
    assert (inc.watch_id, inc.detector, inc.severity, inc.state) == (
        "acme", "negative_spike", "warning", "open")
    assert inc.signal_ids == [s.id]
    assert inc.summary == s.summary and inc.samples == s.samples
    assert inc.opened_at == inc.updated_at == s.window_end
    assert inc.fingerprint == "acme:negative_spike"
    assert [(n.channel, n.target) for n in decision.notifications] == [
        (t.channel, t.target) for t in TARGETS]
    assert all(n.level == 1 and n.incident == inc for n in decision.notifications)
    assert all(n.created_at == s.window_end for n in decision.notifications)
    assert len({n.id for n in decision.notifications}) == len(TARGETS)


def test_opening_is_deterministic(book: IncidentBook) -> None:
    a = book.on_signal(None, signal(0))
    b = IncidentBook(resolve_after=RESOLVE, level1=TARGETS).on_signal(None, signal(0))
    assert a is not None and b is not None
    assert a.incident == b.incident
    assert [n.id for n in a.notifications] == [n.id for n in b.notifications]


def test_redelivered_signal_changes_nothing(book: IncidentBook) -> None:
    s = signal(0)
    first = book.on_signal(None, s)
    assert first is not None
    assert book.on_signal(first.incident, s) is None
    joined = book.on_signal(first.incident, signal(3))
    assert joined is not None
    assert book.on_signal(joined.incident, s) is None  # still known after others joined


def test_another_signal_joins_silently(book: IncidentBook) -> None:
    first = book.on_signal(None, signal(0))
    assert first is not None
    s2 = signal(5)
    joined = book.on_signal(first.incident, s2)
    assert joined is not None and not joined.opened
    assert joined.notifications == []
    inc = joined.incident
    assert inc.id == first.incident.id
    assert inc.signal_ids == [signal(0).id, s2.id]
    assert inc.updated_at == s2.window_end
    assert inc.opened_at == first.incident.opened_at
    assert inc.summary == first.incident.summary  # not worse: the first summary stands


def test_less_severe_signal_does_not_downgrade(book: IncidentBook) -> None:
    opened = book.on_signal(None, signal(0, "critical"))
    assert opened is not None
    joined = book.on_signal(opened.incident, signal(2, "warning"))
    assert joined is not None
    assert joined.incident.severity == "critical" and joined.notifications == []


def test_worse_severity_renotifies_with_new_notification_ids(book: IncidentBook) -> None:
    opened = book.on_signal(None, signal(0, "warning"))
    assert opened is not None
    worse = signal(0, "critical", tag="escalated")
    escalated = book.on_signal(opened.incident, worse)
    assert escalated is not None and not escalated.opened
    inc = escalated.incident
    assert inc.id == opened.incident.id
    assert inc.severity == "critical"
    assert inc.summary == worse.summary and inc.samples == worse.samples
    assert [(n.channel, n.target) for n in escalated.notifications] == [
        (t.channel, t.target) for t in TARGETS]
    assert all(n.incident.severity == "critical" for n in escalated.notifications)
    old_ids = {n.id for n in opened.notifications}
    new_ids = {n.id for n in escalated.notifications}
    assert len(new_ids) == len(TARGETS) and not old_ids & new_ids


def test_after_a_quiet_spell_a_new_incident_opens(book: IncidentBook) -> None:
    opened = book.on_signal(None, signal(0))
    assert opened is not None
    within = book.on_signal(opened.incident, signal(30))  # 30 min after the last update
    assert within is not None and not within.opened
    later = book.on_signal(within.incident, signal(30 + 31))
    assert later is not None and later.opened
    assert later.incident.id != opened.incident.id
    assert later.incident.signal_ids == [signal(61).id]
    assert len(later.notifications) == len(TARGETS)
    assert not {n.id for n in later.notifications} & {n.id for n in opened.notifications}


def test_quiet_spell_is_measured_from_the_last_update(book: IncidentBook) -> None:
    inc = None
    for minute in range(0, 120, 20):  # a signal every 20 minutes keeps it open for 2 hours
        decision = book.on_signal(inc, signal(minute))
        assert decision is not None
        assert decision.opened == (minute == 0)
        inc = decision.incident


def test_resolved_incident_is_not_reopened(book: IncidentBook) -> None:
    opened = book.on_signal(None, signal(0))
    assert opened is not None
    resolved = opened.incident.model_copy(update={"state": "resolved"})
    again = book.on_signal(resolved, signal(2))
    assert again is not None and again.opened
    assert again.incident.state == "open"
    assert again.incident.id != opened.incident.id


def test_signal_ids_are_bounded(book: IncidentBook) -> None:
    decision = book.on_signal(None, signal(0))
    assert decision is not None
    inc = decision.incident
    for i in range(150):
        d = book.on_signal(inc, signal(0, tag=str(i)))
        assert d is not None
        inc = d.incident
    assert len(inc.signal_ids) == 100


def test_no_targets_means_no_notifications() -> None:
    decision = IncidentBook(resolve_after=RESOLVE, level1=[]).on_signal(None, signal(0))
    assert decision is not None and decision.opened and decision.notifications == []
