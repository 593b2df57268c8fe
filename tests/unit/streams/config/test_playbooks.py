"""Playbooks: matching, their copy on the incident, steps done on the timeline, and every
channel's rendering (Slack, email, push) with the template text escaped like mention text."""

from __future__ import annotations

import json
import urllib.parse
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from agents.escalate.incidents import EscalationEngine
from notifiers.email import EmailNotifier, EmailSettings
from notifiers.push import build_payload
from notifiers.slack import build_message
from notifiers.slack_actions import parse_block_action
from streams.config.escalation import EscalationSettings, Level, Policy, Route, TargetSpec
from streams.config.playbooks import Playbook, match_playbook
from streams.config.settings import ConfigError, load_settings
from streams.core.links import LinkSigner
from streams.core.records import Ack, Incident, Notification, SampleMention, Signal, stable_id

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
HOSTILE = "<!channel> <https://evil.example|click> & <script>x</script> @everyone"
OUTAGE = Playbook.model_validate({
    "id": "outage", "name": "Service outage", "owner": "Comms lead (Ana)",
    "match": {"watch": "acme", "detector": ["negative_spike", "risk_term_surge"]},
    "experts": ["Ops: Luis", "Legal: Marta"], "approval": "Ana approves every public reply",
    "steps": [{"id": "status", "text": "Check the status page with Ops", "owner": "Luis"},
              {"id": "holding", "text": "Post the holding statement"}],
    "templates": [{"channel": "x", "language": "en", "text": HOSTILE},
                  {"channel": "x", "language": "es", "text": "Estamos en ello."}],
    "do_not_respond": ["Do not reply to accounts with under 100 followers"],
})
CRITICAL_ONLY = Playbook.model_validate({"id": "exec", "name": "Executive crisis",
                                         "owner": "CEO office", "match": {"severity": "critical"}})


def _signal(severity: str = "warning", minute: int = 0, detector: str = "negative_spike") -> Signal:
    start = T0 + timedelta(minutes=minute)
    return Signal(id=stable_id("acme", severity, minute), watch_id="acme", detector=detector,
                  severity=severity, window_start=start,  # type: ignore[arg-type]
                  window_end=start + timedelta(minutes=1), observed=30, expected=5, score=6,
                  summary="spike", samples=[SampleMention(key="x:1", url=None, author="a",
                                                          text="bad", priority=70)])


def _engine(*books: Playbook) -> EscalationEngine:
    policy = Policy(id="p", levels=[Level(targets=[TargetSpec(slack="#crisis"),
                                                   TargetSpec(email=["a@example.com"])])])
    return EscalationEngine(settings=EscalationSettings(policies=[policy],
                                                        route=Route(policy="p")),
                            policies=[policy], schedules={}, playbooks=books)


def _incident(engine: EscalationEngine, **kw: object) -> tuple[dict, Incident]:  # type: ignore[type-arg]
    decision = engine.on_signal(None, _signal(**kw), T0)  # type: ignore[arg-type]
    assert decision.entry is not None and decision.incident is not None
    return decision.entry, decision.incident


def test_first_matching_playbook_in_config_order() -> None:
    labels = {"watch": "acme", "detector": "negative_spike", "severity": "critical"}
    assert match_playbook([OUTAGE, CRITICAL_ONLY], labels) is OUTAGE
    assert match_playbook([CRITICAL_ONLY, OUTAGE], labels) is CRITICAL_ONLY
    assert match_playbook([OUTAGE], {**labels, "watch": "globex"}) is None


def test_bad_playbooks_are_refused_with_the_path() -> None:
    with pytest.raises(ValidationError, match="unknown label"):
        Playbook.model_validate({"id": "x", "name": "x", "owner": "o", "match": {"wach": "a"}})
    with pytest.raises(ValidationError, match="unique"):
        Playbook.model_validate({"id": "x", "name": "x", "owner": "o",
                                 "steps": [{"id": "a", "text": "1"}, {"id": "a", "text": "2"}]})
    with pytest.raises(ConfigError) as err:
        load_settings(None, watches=[{"id": "acme", "name": "Acme", "terms": ["acme"]}],
                      playbooks=[OUTAGE.model_dump(), {**OUTAGE.model_dump(),
                                                       "match": {"watch": "nope"}}])
    assert "playbooks.1.id" in str(err.value) and "no watch with id 'nope'" in str(err.value)


def test_incident_carries_the_playbook_and_a_later_critical_one_attaches() -> None:
    _, inc = _incident(_engine(OUTAGE))
    assert inc.playbook is not None and inc.playbook.id == "outage"
    assert [s.id for s in inc.playbook.steps] == ["status", "holding"]
    engine = _engine(CRITICAL_ONLY)
    entry, inc = _incident(engine)
    assert inc.playbook is None
    joined = engine.on_signal(entry, _signal("critical", minute=1), T0 + timedelta(minutes=1))
    assert joined.incident and joined.incident.playbook and joined.incident.playbook.id == "exec"


def test_step_done_is_on_the_timeline_once_and_updates_only_slack() -> None:
    engine = _engine(OUTAGE)
    entry, inc = _incident(engine)
    ack = Ack(incident_id=inc.id, action="step", step="holding", by="ana", source="console",
              at=T0)
    later = T0 + timedelta(minutes=2)
    done = engine.on_ack(entry, ack, later)
    assert done.incident and done.incident.playbook
    assert [d.step for d in done.incident.playbook.done] == ["holding"]
    assert done.incident.playbook.is_done("holding")
    step_entries = [t for t in done.incident.timeline if t.kind == "step"]
    assert len(step_entries) == 1 and "holding statement" in step_entries[0].text
    assert step_entries[0].by == "ana"
    assert {n.channel for n in done.notifications} == {"slack"}
    assert done.incident.state == "open"  # a step is not an acknowledgement
    assert engine.on_ack(done.entry, ack, later).entry is None  # idempotent
    unknown = ack.model_copy(update={"step": "nope"})
    assert engine.on_ack(done.entry, unknown, later).entry is None


def _notification(inc: Incident, channel: str) -> Notification:
    return Notification(id=f"{inc.id}:1:{channel}", incident=inc, level=1, channel=channel,
                        target="#crisis", created_at=T0)


def test_slack_shows_the_checklist_escaped_with_a_done_button_per_open_step() -> None:
    engine = _engine(OUTAGE)
    entry, inc = _incident(engine)
    ack = Ack(incident_id=inc.id, action="step", step="status", by="luis", source="slack", at=T0)
    inc = engine.on_ack(entry, ack, T0).incident  # type: ignore[assignment]
    message = build_message(_notification(inc, "slack"), watch_name="Acme")
    text = json.dumps(message["blocks"])
    assert "Playbook: Service outage" in text and "[x] Check the status page" in text
    assert "<!channel>" not in text and "<https://evil" not in text and "<script>" not in text
    assert "&lt;!channel&gt;" in text
    buttons = [e for b in message["blocks"] if b["type"] == "actions" for e in b["elements"]
               if e["action_id"].startswith("escucha_step")]
    assert [b["value"] for b in buttons] == [f"{inc.id} holding"]
    # The click comes back as a step action.
    payload = {"type": "block_actions", "user": {"id": "U0ANA", "username": "ana"},
               "actions": [{"action_id": buttons[0]["action_id"], "value": buttons[0]["value"]}]}
    body = urllib.parse.urlencode({"payload": json.dumps(payload)}).encode()
    action = parse_block_action(body)
    assert action and action.action == "step" and action.step == "holding"
    assert action.incident_id == inc.id


def test_email_and_push_carry_the_playbook() -> None:
    _, inc = _incident(_engine(OUTAGE))
    links = LinkSigner(secret=b"k" * 32, base_url="https://escucha.example")
    mail = EmailNotifier(settings=EmailSettings(host="127.0.0.1", from_addr="e@example.com"),
                         links=links).render(_notification(inc, "email"))
    html = next(p for p in mail.walk() if p.get_content_type() == "text/html").get_content()
    text = next(p for p in mail.walk() if p.get_content_type() == "text/plain").get_content()
    assert "Playbook: Service outage" in text and "Do not respond" in text
    assert "Legal: Marta" in html and "<script>" not in html and "&lt;script&gt;" in html
    push = build_payload(_notification(inc, "push"), topic="t", watch_name="Acme", links=links)
    assert "Owner: Comms lead (Ana)" in push["message"] and "[ ] Post the holding" in \
        push["message"]
    view = [a for a in push["actions"] if a["action"] == "view"]
    assert view and view[0]["url"].endswith(f"/console/incidents/{inc.id}#playbook")
