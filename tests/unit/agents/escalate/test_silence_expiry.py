"""A silence expired early (API, console, CLI) lets the incident it held escalate at the
next clock round: the expiry arrives as a new record of the silence (ends_at = the moment),
the escalate stage's clock finds the incident due and its tick pages level 1."""

from __future__ import annotations

import json
from datetime import timedelta

from prometheus_client import CollectorRegistry

from agents.escalate.stage import EscalateStage
from notifiers import registry
from streams.core import topics
from streams.core.records import Incident, Notification, dumps
from streams.core.silences import Silence
from streams.runtime.metrics import Metrics
from tests.unit.agents.escalate.test_incidents import (
    CRISIS_L1,
    EXEC_L1,
    T0,
    at,
    engine,
    signal,
)


def _stage(silences: dict[str, Silence]) -> EscalateStage:
    m = Metrics(registry=CollectorRegistry(), channels=registry.names, watches=["acme"],
                detectors=("negative_spike",))
    # The worker's engine reads the silences view the same way: a callable, asked each time.
    eng = engine(silences=lambda: list(silences.values()))
    return EscalateStage(engine=eng, incidents={}, by_fingerprint={}, metrics=m)


def _silence(id: str, minutes: float) -> Silence:
    return Silence(id=id, matchers={"watch": "acme"}, starts_at=T0 - timedelta(minutes=5),
                   ends_at=T0 + timedelta(minutes=minutes), created_by="ana")


def _published(silence: Silence) -> Silence:
    """What every worker's view holds once the record is read back from the topic."""
    return Silence.from_dict(json.loads(json.dumps(silence.to_dict())))


def _notes(out: list) -> list[tuple[str, str]]:
    return [(n.channel, n.target) for n in
            (Notification.model_validate_json(s.value) for s in out
             if s.topic == topics.NOTIFICATIONS)]


def test_an_expired_silence_lets_its_incident_escalate_at_the_next_tick() -> None:
    silences = {"s-1": _silence("s-1", minutes=240)}
    stage = _stage(silences)
    out = stage.handle(topics.SIGNALS.name, dumps(signal()), T0)
    [snap] = [s.value for s in out if s.topic == topics.INCIDENTS]
    inc = Incident.model_validate_json(snap)
    assert _notes(out) == [] and inc.timeline[-1].kind == "silenced"
    # Held: the clock has nothing to tick for hours (level 1's 5 minutes long past).
    assert stage.due(at(600), mono=600.0) == []

    silences["s-1"] = _published(silences["s-1"].expire(by="luis", at=at(900)))
    assert stage.due(at(901), mono=901.0) == [inc.id]
    paged = stage.handle(topics.ESCALATION.name, inc.id.encode(), at(901))
    assert _notes(paged) == CRISIS_L1 + EXEC_L1
    [snap] = [s.value for s in paged if s.topic == topics.INCIDENTS]
    after = Incident.model_validate_json(snap)
    assert after.level == 1
    assert ("silence s-1 expired", "luis") in [(t.text, t.by) for t in after.timeline]


def test_expiring_one_of_two_silences_keeps_the_incident_held_by_the_other() -> None:
    silences = {"s-1": _silence("s-1", minutes=240), "s-2": _silence("s-2", minutes=480)}
    stage = _stage(silences)
    out = stage.handle(topics.SIGNALS.name, dumps(signal()), T0)
    [snap] = [s.value for s in out if s.topic == topics.INCIDENTS]
    inc = Incident.model_validate_json(snap)

    silences["s-1"] = _published(silences["s-1"].expire(by="luis", at=at(900)))
    assert stage.due(at(901), mono=901.0) == [inc.id]
    held = stage.handle(topics.ESCALATION.name, inc.id.encode(), at(901))
    assert _notes(held) == []
    assert stage.incidents[inc.id]["esc"]["silenced"] == "s-2"
    assert stage.due(at(1000), mono=1000.0) == []
