"""PagerDuty's v3 webhooks, without a server: the signature, the event, its age, the incident
it maps to, replays; and, at the engine, that an acknowledgement from PagerDuty stops
escucha's escalation. Bodies come from the fake's ``webhook_event`` (PagerDuty's wire shape)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import SecretStr, ValidationError

from agents.escalate.incidents import EscalationEngine
from notifiers.pagerduty import PagerDutySettings, PagerDutyWebhookSettings
from streams.config.escalation import EscalationSettings, Level, Policy, Route, TargetSpec
from streams.core.records import Ack, Incident, SampleMention, Signal, TimelineEntry, stable_id
from streams.core.security import BadRequest
from streams.web.pagerduty import (
    ACTIONS,
    SKEW_S,
    SeenEvents,
    SignatureError,
    WebhookEvent,
    check_age,
    incident_for,
    parse_event,
    predates_reopening,
    verify_signature,
)
from tests.fakes.pagerduty import sign_webhook, webhook_event

SECRET = "pd-webhook-secret-0123456789abcdef"
OLD_SECRET = "pd-webhook-old-secret-fedcba9876543210"
INCIDENT = "acme.0123456789abcdef"
NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


def body_of(event_type: str = "incident.acknowledged", *, key: str | None = INCIDENT,
            at: datetime = NOW, by: str | None = "Ana Responder", event_id: str = "ev-1"
            ) -> bytes:
    return json.dumps(webhook_event(event_type, incident_key=key, by=by, occurred_at=at,
                                    event_id=event_id)).encode()


def signature(body: bytes, *secrets: str) -> str:
    return sign_webhook(body, secrets or (SECRET,))["X-PagerDuty-Signature"]


# -- the signature ---------------------------------------------------------------------------

def test_a_body_signed_with_a_configured_secret_passes() -> None:
    body = body_of()
    verify_signature(body, signature(body), [SECRET.encode()])
    # During a rotation PagerDuty signs with both secrets; either one configured is enough,
    # and escucha may hold both.
    rotating = signature(body, OLD_SECRET, SECRET)
    assert rotating.count("v1=") == 2 and "," in rotating
    verify_signature(body, rotating, [SECRET.encode()])
    verify_signature(body, rotating, [OLD_SECRET.encode()])
    verify_signature(body, signature(body, OLD_SECRET), [SECRET.encode(), OLD_SECRET.encode()])
    verify_signature(body, " " + signature(body) + " , v0=abc", [SECRET.encode()])


@pytest.mark.parametrize(("header", "reason"), [
    (None, "no X-PagerDuty-Signature header"),
    ("", "no X-PagerDuty-Signature header"),
    ("sha256=" + "0" * 64, "no v1 signature"),
    ("v1=" + "0" * 64, "invalid signature"),
    ("v1=", "invalid signature"),
])
def test_missing_or_forged_signatures_are_refused(header: str | None, reason: str) -> None:
    with pytest.raises(SignatureError, match=reason) as info:
        verify_signature(body_of(), header, [SECRET.encode()])
    assert info.value.status == 401


def test_the_signature_covers_the_raw_body_and_the_secret() -> None:
    body = body_of()
    with pytest.raises(SignatureError):  # signed by someone else
        verify_signature(body, signature(body, "not-the-secret-0123456789"), [SECRET.encode()])
    # The same JSON re-serialised, or one byte changed, is another body.
    pretty = json.dumps(json.loads(body), indent=1).encode()
    with pytest.raises(SignatureError):
        verify_signature(pretty, signature(body), [SECRET.encode()])
    with pytest.raises(SignatureError):
        verify_signature(body.replace(b"Ana", b"Eve"), signature(body), [SECRET.encode()])
    # Upper-case hex is not what PagerDuty sends: compared exactly, as its docs do.
    with pytest.raises(SignatureError):
        verify_signature(body, signature(body).upper().replace("V1=", "v1="),
                         [SECRET.encode()])


# -- the event --------------------------------------------------------------------------------

def test_an_acknowledged_event_is_read() -> None:
    event = parse_event(body_of(at=datetime(2026, 3, 2, 9, 29, 1, 169000, tzinfo=UTC)))
    assert event.id == "ev-1" and event.type == "incident.acknowledged"
    assert event.occurred_at == datetime(2026, 3, 2, 9, 29, 1, 169000, tzinfo=UTC)
    assert event.incident_key == INCIDENT and event.agent == "Ana Responder"
    assert event.pd_incident.startswith("Q")
    assert ACTIONS[event.type] == "ack" and ACTIONS["incident.resolved"] == "resolve"
    # No agent (PagerDuty acted itself): the name says so.
    assert parse_event(body_of(by=None)).agent == "PagerDuty"


@pytest.mark.parametrize(("body", "reason"), [
    (b"not json", "not JSON"),
    (b"[1, 2]", "no \"event\" object"),
    (b'{"event": "x"}', "no \"event\" object"),
    (b'{"event": {"event_type": "incident.acknowledged", "occurred_at": "2026-03-02T09:00Z"}}',
     "event.id"),
    (b'{"event": {"id": "e", "event_type": "", "occurred_at": "2026-03-02T09:00:00Z"}}',
     "event.event_type"),
    (b'{"event": {"id": "e", "event_type": "incident.resolved", "occurred_at": "yesterday"}}',
     "ISO 8601"),
    (b'{"event": {"id": "e", "event_type": "incident.resolved", "occurred_at": 5}}',
     "ISO 8601"),
    (b'{"event": {"id": "e", "event_type": "incident.resolved", '
     b'"occurred_at": "2026-03-02T09:00:00"}}', "no time zone"),
])
def test_an_unreadable_event_is_a_400_that_says_why(body: bytes, reason: str) -> None:
    with pytest.raises(BadRequest, match=reason) as info:
        parse_event(body)
    assert info.value.status == 400


def test_a_body_over_pagerdutys_limit_is_refused() -> None:
    event = webhook_event("incident.acknowledged", incident_key=INCIDENT, occurred_at=NOW)
    event["event"]["data"]["title"] = "x" * (256 * 1024)
    with pytest.raises(BadRequest) as info:
        parse_event(json.dumps(event).encode())
    assert info.value.status == 413


# -- age, replays, mapping ----------------------------------------------------------------------

def _event(at: datetime, key: str | None = INCIDENT) -> WebhookEvent:
    return WebhookEvent(id="e", type="incident.acknowledged", occurred_at=at, incident_key=key,
                        pd_incident="Q1", agent="ana")


def test_stale_events_and_events_from_the_future_are_refused() -> None:
    max_age = 1800
    check_age(_event(NOW - timedelta(seconds=max_age - 1)), NOW, max_age_s=max_age)
    check_age(_event(NOW + timedelta(seconds=SKEW_S - 1)), NOW, max_age_s=max_age)
    with pytest.raises(BadRequest, match=r"stale event: it occurred 1801 s ago and events "
                       r"older than 1800 s are refused") as info:
        check_age(_event(NOW - timedelta(seconds=max_age + 1)), NOW, max_age_s=max_age)
    assert info.value.status == 400
    with pytest.raises(BadRequest, match="ahead of this server's clock"):
        check_age(_event(NOW + timedelta(seconds=SKEW_S + 1)), NOW, max_age_s=max_age)


def test_only_escucha_incidents_of_configured_watches_are_mapped() -> None:
    watches = {"acme", "globex"}
    assert incident_for(_event(NOW), watches) == INCIDENT
    for key in (None, "d3640fbd41094207a1c11e58e46b1662",  # an incident PagerDuty keyed itself
                "initech.0123456789abcdef",  # a watch this worker does not have
                INCIDENT + "\n", "ACME.0123456789ABCDEF", "acme.0123"):
        assert incident_for(_event(NOW, key), watches) is None, key


def _incident(*reopened: datetime) -> Incident:
    return Incident(id=INCIDENT, fingerprint="acme:negative_spike", watch_id="acme",
                    detector="negative_spike", severity="critical", opened_at=NOW,
                    updated_at=NOW, summary="s",
                    timeline=[TimelineEntry(at=at, kind="reopen", text="recurred")
                              for at in reopened])


def test_an_event_before_the_latest_reopening_is_about_an_earlier_episode() -> None:
    ack_at = NOW + timedelta(minutes=10)
    assert not predates_reopening(None, ack_at)
    assert not predates_reopening(_incident(), ack_at)
    assert not predates_reopening(_incident(NOW), ack_at)
    assert predates_reopening(_incident(NOW, ack_at + timedelta(seconds=1)), ack_at)
    naive = (ack_at + timedelta(minutes=1)).replace(tzinfo=None)  # read as UTC
    assert predates_reopening(_incident(naive), ack_at)


def test_seen_events_are_remembered_for_the_window_and_bounded() -> None:
    seen = SeenEvents(keep_s=60, max_items=3)
    seen.add("a", NOW)
    assert "a" in seen and "b" not in seen
    seen.add("b", NOW + timedelta(seconds=61))  # "a" is past the window: forgotten
    assert "a" not in seen and "b" in seen
    for name in "cde":
        seen.add(name, NOW + timedelta(seconds=62))
    assert len(seen) == 3 and "b" not in seen and all(x in seen for x in "cde")


# -- the settings -------------------------------------------------------------------------------

def test_webhook_settings_need_strong_distinct_secrets_and_never_echo_them() -> None:
    hook = PagerDutyWebhookSettings(secrets=[SecretStr(SECRET)])
    assert hook.max_age_s == 1800 and SECRET not in repr(hook)
    assert PagerDutySettings(webhook={"secrets": [SECRET]}).webhook == hook  # type: ignore[arg-type]
    short = "tooshort"
    cases = [({"secrets": []}, "at least 1"),
             ({"secrets": [short]}, "shorter than 16"),
             ({"secrets": [SECRET, SECRET]}, "listed twice"),
             ({"secrets": [SECRET], "max_age_s": 30}, "greater than or equal to 60"),
             ({"secrets": [SECRET], "max_age_s": 90000}, "less than or equal to 86400"),
             ({"secret": SECRET}, "Extra inputs")]
    for data, message in cases:
        with pytest.raises(ValidationError, match=message) as info:
            PagerDutySettings.model_validate({"webhook": data})
        assert SECRET not in str(info.value) and short not in str(info.value)


# -- at the engine: PagerDuty's acknowledgement stops the escalation ------------------------------

_POLICY = Policy(id="crisis", levels=[
    Level(targets=[TargetSpec(slack="#crisis")], timeout_s=300),
    Level(targets=[TargetSpec(pagerduty="comms"), TargetSpec(email=["lead@example.com"])],
          timeout_s=600),
])


def _engine() -> EscalationEngine:
    settings = EscalationSettings(route=Route(policy="crisis"), policies=[_POLICY])
    return EscalationEngine(settings=settings, policies=[_POLICY], schedules={})


def _signal() -> Signal:
    return Signal(id=stable_id("acme", "negative_spike", NOW.isoformat()), watch_id="acme",
                  detector="negative_spike", severity="critical", window_start=NOW,
                  window_end=NOW + timedelta(minutes=1), observed=20, expected=4, score=5,
                  summary="20 negative mentions (expected 4)",
                  samples=[SampleMention(key="x:1", url=None, author="a", text="bad",
                                         priority=70)])


def test_an_acknowledgement_in_pagerduty_stops_escucha_escalating() -> None:
    eng = _engine()
    opened = eng.on_signal(None, _signal(), NOW)
    assert opened.entry is not None and opened.incident is not None
    incident_id = opened.incident.id
    # Unanswered, level 2 is paged at the level-1 timeout: what the ack must prevent.
    unanswered = eng.on_tick(json.loads(json.dumps(opened.entry)), NOW + timedelta(seconds=300))
    assert ("email", "lead@example.com") in [(n.channel, n.target)
                                             for n in unanswered.notifications]

    # The responder acknowledges in PagerDuty two minutes in; its webhook, verified and read
    # as the route does, becomes the Ack a Slack button would have sent.
    at = NOW + timedelta(minutes=2)
    body = body_of(key=incident_id, at=at, by="Ana Responder")
    verify_signature(body, signature(body), [SECRET.encode()])
    event = parse_event(body)
    check_age(event, at + timedelta(seconds=3), max_age_s=1800)
    mapped = incident_for(event, {"acme"})
    assert mapped == incident_id
    ack = Ack(incident_id=mapped, action=ACTIONS[event.type], by=event.agent,
              source="pagerduty", at=at)
    acked = eng.on_ack(opened.entry, ack, at)
    assert acked.incident is not None and acked.incident.state == "acknowledged"
    assert acked.incident.acked_by == "Ana Responder"
    assert "acknowledged via pagerduty" in acked.incident.timeline[-2].text
    assert acked.entry is not None
    # Past every level's timeout (auto-resolve, at 30 min without signals, is not a page).
    for seconds in (300, 900, 1500, 1799):
        tick = eng.on_tick(acked.entry, NOW + timedelta(seconds=seconds))
        assert tick.notifications == [], seconds
