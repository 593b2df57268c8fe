"""Inhibit rules: the rule semantics as a table, then the engine holding a warning under a
critical (no page, both timelines say so) and paging it at the tick after the critical
resolves, through the stage as the worker runs it, with the incidents view in a dict."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from agents.escalate.incidents import EscalationEngine
from agents.escalate.inhibit import Inhibitor
from agents.escalate.stage import EscalateStage, Send
from notifiers import registry
from streams.config.escalation import EscalationSettings, InhibitRule
from streams.core import topics
from streams.core.records import Ack, Incident, Notification, dumps
from streams.runtime.metrics import Metrics
from tests.unit.agents.escalate.test_incidents import (
    CRISIS,
    CRISIS_L1,
    DEFAULT,
    EXEC,
    EXEC_L1,
    PRIMARY,
    SETTINGS,
    T0,
    TREE,
    at,
    signal,
)


def _incident(id: str, *, severity: str = "warning", watch: str = "acme",
              detector: str = "negative_spike", language: str | None = "en",
              state: str = "open", minute: int = 0) -> Incident:
    return Incident(id=id, fingerprint=watch, watch_id=watch, detector=detector,
                    severity=severity, state=state, language=language,  # type: ignore[arg-type]
                    opened_at=at(60 * minute), updated_at=at(60 * minute), summary="s")


CRIT_OVER_WARN = {"source_match": {"severity": "critical"},
                  "target_match": {"severity": "warning"}}


@pytest.mark.parametrize(("rule", "target", "sources", "inhibitor"), [
    # equal labels: the same watch inhibits, another watch does not
    ({**CRIT_OVER_WARN, "equal": ["watch"]}, _incident("t"),
     [_incident("s", severity="critical")], "s"),
    ({**CRIT_OVER_WARN, "equal": ["watch"]}, _incident("t"),
     [_incident("s", severity="critical", watch="other")], None),
    # no equal labels: any critical anywhere inhibits
    (CRIT_OVER_WARN, _incident("t"), [_incident("s", severity="critical", watch="other")], "s"),
    # a label missing on both reads as "" on both: equal
    ({**CRIT_OVER_WARN, "equal": ["language"]}, _incident("t", language=None),
     [_incident("s", severity="critical", language=None)], "s"),
    # ... but missing on one side only is not equal
    ({**CRIT_OVER_WARN, "equal": ["language"]}, _incident("t", language=None),
     [_incident("s", severity="critical", language="es")], None),
    # a missing label reads as "" for the matchers too
    ({"source_match": {"severity": "critical", "language": ""},
      "target_match": {"severity": "warning"}}, _incident("t"),
     [_incident("s", severity="critical", language=None)], "s"),
    # the target matchers must match the target
    (CRIT_OVER_WARN, _incident("t", severity="info"),
     [_incident("s", severity="critical")], None),
    # a resolved source inhibits nothing; an acknowledged one still does
    (CRIT_OVER_WARN, _incident("t"), [_incident("s", severity="critical", state="resolved")],
     None),
    (CRIT_OVER_WARN, _incident("t"),
     [_incident("s", severity="critical", state="acknowledged")], "s"),
    # a source never inhibits itself, even matching both sides
    ({"source_match": {"watch": "acme"}, "target_match": {"watch": "acme"}},
     _incident("t"), [_incident("t")], None),
    # ... nor does the view's older copy of it, whatever labels that copy shows
    (CRIT_OVER_WARN, _incident("t"), [_incident("t", severity="critical")], None),
    # peers matching both sides never mute each other ...
    ({"source_match": {"severity": "~warning|critical"},
      "target_match": {"severity": "~warning|critical"}},
     _incident("t"), [_incident("s")], None),
    # ... but one matching only the source side still inhibits such a target
    ({"source_match": {"severity": "~warning|critical"}, "target_match": {"severity": "warning"}},
     _incident("t"), [_incident("s", severity="critical")], "s"),
    # regex and negation operators, as in silences and routes
    ({"source_match": {"detector": "~risk_.*"}, "target_match": {"watch": "!=beta"}},
     _incident("t"), [_incident("s", detector="risk_terms")], "s"),
    # the oldest source is named, whatever order the view lists them in
    (CRIT_OVER_WARN, _incident("t"),
     [_incident("a-late", severity="critical", minute=5),
      _incident("b-early", severity="critical")], "b-early"),
])
def test_rule_semantics(rule: dict[str, Any], target: Incident, sources: list[Incident],
                        inhibitor: str | None) -> None:
    found = Inhibitor([InhibitRule.model_validate(rule)]).find(target, [target, *sources])
    assert (found.source.id if found else None) == inhibitor


def test_no_rules_inhibit_nothing() -> None:
    assert Inhibitor([]).find(_incident("t"), [_incident("s", severity="critical")]) is None


# -- the engine, through the stage ---------------------------------------------------------
class _World:
    """One worker's stage plus the incidents view every worker reads back from the topic."""

    def __init__(self, rules: list[dict[str, Any]], **settings: Any) -> None:
        self.view: dict[str, Incident] = {}
        policies = [CRISIS, EXEC, DEFAULT]
        settings = EscalationSettings(route=TREE, policies=policies, schedules=[PRIMARY],
                                      inhibit_rules=rules, **SETTINGS, **settings)
        eng = EscalationEngine(settings=settings, policies=policies,
                               schedules={PRIMARY.id: PRIMARY},
                               incidents=lambda: list(self.view.values()))
        m = Metrics(registry=CollectorRegistry(), channels=registry.names,
                    watches=["acme", "beta"], detectors=("negative_spike",))
        self.stage = EscalateStage(engine=eng, incidents={}, by_fingerprint={}, metrics=m)
        self.notes: list[Send] = []

    def handle(self, topic: str, raw: bytes, now: Any) -> list[Send]:
        out = self.stage.handle(topic, raw, now)
        for send in out:
            if send.topic == topics.INCIDENTS:
                inc = Incident.model_validate_json(send.value)
                self.view[inc.id] = inc
            elif send.topic == topics.ESCALATION:
                self.notes.append(send)
        return out

    def deliver_notes(self, now: Any) -> None:
        """The escalation topic brings the notes to the source's owner."""
        notes, self.notes = self.notes, []
        for note in notes:
            self.handle(topics.ESCALATION.name, note.value, now)


def _paged(out: list[Send]) -> list[tuple[str, str]]:
    return [(n.channel, n.target) for n in
            (Notification.model_validate_json(s.value) for s in out
             if s.topic == topics.NOTIFICATIONS)]


def _texts(world: _World, incident_id: str) -> list[str]:
    return [t.text for t in world.view[incident_id].timeline]


def _id(out: list[Send]) -> str:
    [snap] = [s.value for s in out if s.topic == topics.INCIDENTS]
    return Incident.model_validate_json(snap).id


def test_a_warning_under_a_critical_is_not_paged_and_both_timelines_say_why() -> None:
    world = _World([{**CRIT_OVER_WARN, "equal": ["detector"]}])
    crit = world.handle(topics.SIGNALS.name, dumps(signal(severity="critical")), T0)
    assert _paged(crit)  # the critical pages as usual
    crit_id = _id(crit)

    warn = world.handle(topics.SIGNALS.name, dumps(signal(watch="beta")), at(30))
    warn_id = _id(warn)
    assert _paged(warn) == []
    assert (f"inhibited by {crit_id} (critical negative_spike on acme; inhibit rule 0)"
            in _texts(world, warn_id))
    # The source's timeline is written by the worker owning its watch, from a note sent there.
    assert [(n.key, n.value) for n in world.notes] == [
        (b"acme", f"inhibits {crit_id} {warn_id}".encode())]
    world.deliver_notes(at(31))
    assert f"inhibits {warn_id}" in _texts(world, crit_id)
    # Re-delivered (at-least-once): written once.
    out = world.handle(topics.ESCALATION.name, f"inhibits {crit_id} {warn_id}".encode(), at(32))
    assert out == []
    assert _texts(world, crit_id).count(f"inhibits {warn_id}") == 1

    # Held for as long as the critical is open: the clock has nothing to do for it.
    assert warn_id not in world.stage.due(at(3000), mono=3000.0)
    late = world.handle(topics.SIGNALS.name, dumps(signal(3, watch="beta")), at(200))
    assert _paged(late) == []


def test_when_the_critical_resolves_the_warning_escalates_at_the_next_tick() -> None:
    world = _World([CRIT_OVER_WARN])
    crit_id = _id(world.handle(topics.SIGNALS.name, dumps(signal(severity="critical")), T0))
    warn_id = _id(world.handle(topics.SIGNALS.name, dumps(signal(watch="beta")), at(30)))
    assert world.stage.due(at(60), mono=60.0) == []
    assert _inhibited_now(world) == {"info": 0, "warning": 1, "critical": 0}

    world.handle(topics.ACKS.name, dumps(Ack(incident_id=crit_id, action="resolve", by="ana",
                                             source="slack", at=at(600))), at(600))
    assert world.stage.due(at(601), mono=601.0) == [warn_id]
    paged = world.handle(topics.ESCALATION.name, warn_id.encode(), at(601))
    assert _paged(paged) == EXEC_L1  # beta warning: the exec policy, level 1
    assert f"inhibition by {crit_id} ended" in _texts(world, warn_id)
    world.stage.due(at(602), mono=602.0)
    assert _inhibited_now(world)["warning"] == 0


def _inhibited_now(world: _World) -> dict[str, float | None]:
    """The escucha_incidents_inhibited gauge by severity, as the last clock round set it."""
    registry = world.stage.metrics.registry
    return {sev: registry.get_sample_value("escucha_incidents_inhibited", {"severity": sev})
            for sev in ("info", "warning", "critical")}


def test_a_critical_opening_later_stops_the_warnings_escalation() -> None:
    world = _World([CRIT_OVER_WARN])
    warn = world.handle(topics.SIGNALS.name, dumps(signal(watch="beta")), T0)
    assert _paged(warn) == EXEC_L1
    warn_id = _id(warn)
    crit_id = _id(world.handle(topics.SIGNALS.name, dumps(signal(severity="critical")), at(60)))
    # exec's only level times out after 1200 s; repeat reminders would follow: none now.
    due = world.stage.due(at(1300), mono=1300.0)
    assert warn_id in due
    held = world.handle(topics.ESCALATION.name, warn_id.encode(), at(1300))
    assert _paged(held) == []
    assert any(t.startswith(f"inhibited by {crit_id}") for t in _texts(world, warn_id))
    assert warn_id not in world.stage.due(at(9000), mono=9000.0)


def test_a_held_warning_that_turns_critical_is_paged() -> None:
    # One incident per detector, so a watch can hold a critical and a warning at once.
    world = _World([{**CRIT_OVER_WARN, "equal": ["watch"]}], group_by=["watch", "detector"])
    crit_id = _id(world.handle(topics.SIGNALS.name,
                               dumps(signal(severity="critical", detector="risk_terms")), T0))
    warn = world.handle(topics.SIGNALS.name, dumps(signal()), at(30))
    warn_id = _id(warn)
    assert warn_id != crit_id and _paged(warn) == []
    worse = world.handle(topics.SIGNALS.name, dumps(signal(2, severity="critical")), at(120))
    assert _paged(worse) == CRISIS_L1 + EXEC_L1  # no longer a target: paged from level 1
    assert f"no longer inhibited by {crit_id}" in _texts(world, warn_id)


def test_a_held_warning_reopened_under_the_same_critical_says_so_again_unpaged() -> None:
    world = _World([CRIT_OVER_WARN])
    crit_id = _id(world.handle(topics.SIGNALS.name, dumps(signal(severity="critical")), T0))
    warn_id = _id(world.handle(topics.SIGNALS.name, dumps(signal(watch="beta")), at(30)))
    world.handle(topics.ACKS.name, dumps(Ack(incident_id=warn_id, action="resolve", by="ana",
                                             source="slack", at=at(60))), at(60))
    again = world.handle(topics.SIGNALS.name, dumps(signal(5, watch="beta")), at(300))
    assert _id(again) == warn_id and _paged(again) == []
    held = [t for t in _texts(world, warn_id) if t.startswith(f"inhibited by {crit_id}")]
    assert len(held) == 2
