"""EscalateStage alone: records applied to in-memory tables, what to send, the clock's ticks."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from agents.escalate.stage import EscalateStage, effective_policies
from notifiers import registry
from streams.config.settings import Settings
from streams.core import topics
from streams.core.records import Delivery, Incident, Notification, RecordError, dumps
from streams.runtime.metrics import Metrics
from tests.unit.agents.escalate.test_incidents import T0, ack, at, engine, signal


def stage() -> EscalateStage:
    m = Metrics(registry=CollectorRegistry(), channels=registry.names, watches=["acme"],
                detectors=("negative_spike",))
    return EscalateStage(engine=engine(), incidents={}, by_fingerprint={}, metrics=m)


def sent(out: list[Any], spec: topics.TopicSpec) -> list[bytes]:
    return [s.value for s in out if s.topic == spec]


def opened(s: EscalateStage) -> Incident:
    out = s.handle(topics.SIGNALS.name, dumps(signal()), T0)
    [snap] = sent(out, topics.INCIDENTS)
    return Incident.model_validate_json(snap)


def test_a_signal_opens_an_incident_in_the_tables_and_sends_its_notifications() -> None:
    s = stage()
    out = s.handle(topics.SIGNALS.name, dumps(signal()), T0)
    [snap] = sent(out, topics.INCIDENTS)
    inc = Incident.model_validate_json(snap)
    assert set(s.incidents) == {inc.id} and list(s.by_fingerprint.values()) == [inc.id]
    notes = [Notification.model_validate_json(v) for v in sent(out, topics.NOTIFICATIONS)]
    assert notes and {n.kind for n in notes} == {"trigger"}
    assert all(o.key == inc.id.encode() for o in out if o.topic == topics.INCIDENTS)
    # Notifications by target: one worker owns each target's rate limit and digest.
    assert [o.key for o in out if o.topic == topics.NOTIFICATIONS] == [
        topics.notification_key(n.channel, n.target) for n in notes]
    assert s.metrics.incidents.labels(inc.severity)._value.get() == 1


def test_the_same_signal_again_changes_nothing() -> None:
    s = stage()
    opened(s)
    before = dict(s.incidents)
    assert s.handle(topics.SIGNALS.name, dumps(signal()), at(5)) == []
    assert s.incidents == before


def test_an_ack_applies_and_is_counted_an_unknown_one_is_not() -> None:
    s = stage()
    inc = opened(s)
    out = s.handle(topics.ACKS.name, dumps(ack(incident_id=inc.id, now=at(60))), at(60))
    [snap] = sent(out, topics.INCIDENTS)
    assert Incident.model_validate_json(snap).state == "acknowledged"
    assert s.metrics.acks.labels("slack", "ack")._value.get() == 1
    unknown = ack(incident_id="acme.ffffffffffffffff", now=at(61))
    assert s.handle(topics.ACKS.name, dumps(unknown), at(61)) == []
    assert s.metrics.acks.labels("slack", "ack")._value.get() == 1


def test_a_receipt_goes_on_the_timeline() -> None:
    s = stage()
    inc = opened(s)
    receipt = Delivery(notification_id="n", incident_id=inc.id, channel="slack",
                       target="#crisis", outcome="failed", detail="slack: HTTP 500", at=at(2))
    out = s.handle(topics.DELIVERIES.name, dumps(receipt), at(2))
    [snap] = sent(out, topics.INCIDENTS)
    assert any("HTTP 500" in e.text for e in Incident.model_validate_json(snap).timeline)


def test_bad_records_raise_for_the_dead_letter_topic() -> None:
    with pytest.raises(RecordError):
        stage().handle(topics.SIGNALS.name, b"{not json", T0)


def test_the_clock_ticks_a_due_incident_once_per_debounce_and_counts_gauges() -> None:
    s = stage()
    inc = opened(s)
    assert s.due(T0, 1000.0) == []  # level 1 was just notified: nothing due yet
    late = T0 + timedelta(hours=1)
    assert s.due(late, 1000.0) == [inc.id]
    assert s.due(late, 1002.0) == []  # a tick is on its way
    assert s.due(late, 1006.0) == [inc.id]
    s.untick(inc.id)
    assert s.due(late, 1006.5) == [inc.id]
    assert s.metrics.incidents_current.labels(inc.severity, "open")._value.get() == 1
    out = s.handle(topics.ESCALATION.name, inc.id.encode(), late)
    assert sent(out, topics.NOTIFICATIONS)  # the next level


def test_default_policy_goes_to_every_channel_that_is_set_up() -> None:
    assert [t.kind for t in effective_policies(Settings()).pop().levels[0].targets] == [
        "console"]
    slack = Settings(notifiers={"slack": {"token": "xoxb-1", "channel": "#c"}})
    targets = effective_policies(slack)[0].levels[0].targets
    assert [(t.kind, getattr(t, t.kind)) for t in targets] == [("console", True),
                                                               ("slack", "#c")]
