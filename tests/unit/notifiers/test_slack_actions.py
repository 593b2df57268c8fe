"""Slack interactivity: v0 request signatures and block_actions payloads, as Slack sends them."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import pytest

from notifiers.errors import NotifierError
from notifiers.slack import build_message
from notifiers.slack_actions import (
    ACTION_ACK,
    ACTION_RESOLVE,
    SlackAction,
    SlackPayloadError,
    SlackSignatureError,
    parse_block_action,
    verify_slack_signature,
)
from streams.core.records import Incident, Notification
from tests.fakes.slack import sign_slack_request

INCIDENT = "acme.0123456789abcdef"
SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
NOW = 1_714_564_800  # 2024-05-01 12:00 UTC
RESPONSE_URL = "https://hooks.slack.com/actions/T0001/6123456789/aBcDeFgHiJkLmNoPqRsT"


def block_actions(action_id: str = ACTION_ACK, value: Any = INCIDENT, **changes: Any
                  ) -> dict[str, Any]:
    """A block_actions payload shaped like the ones Slack posts for a button in a message."""
    payload: dict[str, Any] = {
        "type": "block_actions",
        "user": {"id": "U024BE7LH", "username": "ana.lopez", "name": "ana.lopez",
                 "team_id": "T0001"},
        "api_app_id": "A0001",
        "token": "deprecated-verification-token",
        "container": {"type": "message", "message_ts": "1714564801.000001",
                      "channel_id": "C0ALERTS01", "is_ephemeral": False},
        "trigger_id": "6123456789.1234567890.abcdef0123456789abcdef0123456789",
        "team": {"id": "T0001", "domain": "escucha-test"},
        "enterprise": None,
        "is_enterprise_install": False,
        "channel": {"id": "C0ALERTS01", "name": "alerts"},
        "message": {"type": "message", "ts": "1714564801.000001", "bot_id": "B0001",
                    "text": "CRITICAL: Acme — negative_spike", "blocks": []},
        "state": {"values": {}},
        "response_url": RESPONSE_URL,
        "actions": [{
            "action_id": action_id,
            "block_id": "escucha_actions.0123456789abcdef",
            "text": {"type": "plain_text", "text": "Acknowledge", "emoji": True},
            "value": value,
            "style": "primary",
            "type": "button",
            "action_ts": "1714564830.123456",
        }],
    }
    payload.update(changes)
    return payload


def form(payload: Any) -> bytes:
    # How Slack posts it: application/x-www-form-urlencoded, one field, JSON inside.
    return urlencode({"payload": json.dumps(payload)}).encode()


# -- signatures ------------------------------------------------------------------------------

def verify(body: bytes, headers: dict[str, str], *, secret: str = SECRET,
           now: float = NOW) -> None:
    verify_slack_signature(body=body, timestamp=headers.get("X-Slack-Request-Timestamp"),
                           signature=headers.get("X-Slack-Signature"), signing_secret=secret,
                           now=now)


def test_a_correctly_signed_request_verifies() -> None:
    body = form(block_actions())
    verify(body, sign_slack_request(body, signing_secret=SECRET, timestamp=NOW))
    # Within the tolerance either way: Slack's clock and ours differ a little.
    verify(body, sign_slack_request(body, signing_secret=SECRET, timestamp=NOW - 299))
    verify(body, sign_slack_request(body, signing_secret=SECRET, timestamp=NOW + 299))


def test_a_real_clock_is_used_by_default() -> None:
    body = form(block_actions())
    headers = sign_slack_request(body, signing_secret=SECRET)  # signed now
    verify_slack_signature(body=body, timestamp=headers["X-Slack-Request-Timestamp"],
                           signature=headers["X-Slack-Signature"], signing_secret=SECRET)


@pytest.mark.parametrize(("case", "expected"), [
    ("wrong secret", "does not match"),
    ("altered body", "does not match"),
    ("six minutes old", "from this host's clock"),
    ("six minutes ahead", "from this host's clock"),
    ("no timestamp", "missing"),
    ("no signature", "missing"),
    ("empty signature", "missing"),
    ("timestamp not a number", "not a Unix time"),
    ("timestamp with unicode digits", "not a Unix time"),
    ("not v0", "not a v0 signature"),
    ("non-ascii signature", "does not match"),
    ("no secret configured", "no Slack signing secret"),
])
def test_bad_signatures_are_refused(case: str, expected: str) -> None:
    body = form(block_actions())
    ts = {"six minutes old": NOW - 360, "six minutes ahead": NOW + 360}.get(case, NOW)
    headers = sign_slack_request(body, signing_secret=SECRET, timestamp=ts)
    secret = SECRET
    if case == "wrong secret":
        headers = sign_slack_request(body, signing_secret="not-the-secret", timestamp=NOW)
    elif case == "altered body":
        body = form(block_actions(action_id=ACTION_RESOLVE))
    elif case == "no timestamp":
        del headers["X-Slack-Request-Timestamp"]
    elif case == "no signature":
        del headers["X-Slack-Signature"]
    elif case == "empty signature":
        headers["X-Slack-Signature"] = ""
    elif case == "timestamp not a number":
        headers["X-Slack-Request-Timestamp"] = "1714564800.5"
    elif case == "timestamp with unicode digits":
        headers["X-Slack-Request-Timestamp"] = "17145648\u00b2\u00b2"
    elif case == "not v0":
        headers["X-Slack-Signature"] = headers["X-Slack-Signature"].replace("v0=", "v1=")
    elif case == "non-ascii signature":
        headers["X-Slack-Signature"] = "v0=\u00e9" + headers["X-Slack-Signature"][4:]
    elif case == "no secret configured":
        secret = ""
    with pytest.raises(SlackSignatureError, match=expected) as info:
        verify(body, headers, secret=secret)
    assert isinstance(info.value, NotifierError)


def test_refusals_never_reveal_the_secret_or_the_expected_signature() -> None:
    body = form(block_actions())
    good = sign_slack_request(body, signing_secret=SECRET, timestamp=NOW)["X-Slack-Signature"]
    forged = {"X-Slack-Request-Timestamp": str(NOW), "X-Slack-Signature": "v0=" + "0" * 64}
    with pytest.raises(SlackSignatureError) as info:
        verify(body, forged)
    assert SECRET not in str(info.value) and good[3:] not in str(info.value)


# -- payloads --------------------------------------------------------------------------------

def test_an_acknowledge_click_is_parsed() -> None:
    action = parse_block_action(form(block_actions()))
    assert action == SlackAction(incident_id=INCIDENT, action="ack", user_id="U024BE7LH",
                                 user_name="ana.lopez", response_url=RESPONSE_URL)


def test_a_resolve_click_is_parsed() -> None:
    action = parse_block_action(form(block_actions(action_id=ACTION_RESOLVE)))
    assert action is not None and action.action == "resolve"
    assert action.incident_id == INCIDENT


def test_the_buttons_we_render_parse_back() -> None:
    at = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    incident = Incident(id=INCIDENT, fingerprint="acme:spike", watch_id="acme", detector="spike",
                        severity="critical", opened_at=at, updated_at=at, summary="spike")
    note = Notification(id=f"{INCIDENT}:1:slack:#alerts:trigger", incident=incident, level=1,
                        channel="slack", target="#alerts", created_at=at)
    message = build_message(note, watch_name="Acme")
    (actions,) = [b for b in message["blocks"] if b["type"] == "actions"]
    for element, verb in zip(actions["elements"], ("ack", "resolve"), strict=True):
        clicked = {k: element[k] for k in ("action_id", "value", "text", "style", "type")}
        payload = block_actions()
        payload["actions"] = [{**clicked, "block_id": actions["block_id"],
                               "action_ts": "1714564830.123456"}]
        action = parse_block_action(form(payload))
        assert action is not None and (action.incident_id, action.action) == (INCIDENT, verb)


def test_a_signed_then_parsed_request_end_to_end() -> None:
    body = form(block_actions())
    verify(body, sign_slack_request(body, signing_secret=SECRET, timestamp=NOW))
    assert parse_block_action(body) is not None


@pytest.mark.parametrize("payload", [
    block_actions(action_id="someone_elses_button"),
    block_actions(actions=[]),
    {"type": "view_submission", "user": {"id": "U024BE7LH"}, "view": {}},
    {"type": "shortcut", "callback_id": "x", "user": {"id": "U024BE7LH"}},
])
def test_other_actions_and_interactions_are_not_ours(payload: dict[str, Any]) -> None:
    assert parse_block_action(form(payload)) is None


@pytest.mark.parametrize("value", [
    "acme.x<script>", "acme.x<script>alert(1)</script>", "<!channel>", "", None, 42,
    "acme.0123456789abcdef\n", "ACME.0123456789abcdef", "acme.0123abc", "acme",
    "a" * 65 + ".0123456789abcdef", "acme.0123456789abcdef0123456789abcdef0",
    "acme.0123456789abcdef.x", "../etc.0123456789abcdef",
])
def test_an_injected_incident_id_is_refused(value: Any) -> None:
    with pytest.raises(ValueError, match="not an incident id"):
        parse_block_action(form(block_actions(value=value)))


@pytest.mark.parametrize(("body", "expected"), [
    (b"", "exactly one .payload."),
    (b"not a form", "not form-encoded"),
    (b"payload=%ff%fe", "not form-encoded"),
    (b"\xff\xfe", "not form-encoded"),
    (b"other=1", "exactly one 'payload'"),
    (b"payload=1&payload=2", "exactly one 'payload'"),
    (b"payload=%7Bnot+json", "not valid JSON"),
    (form([1, 2]), "not a JSON object"),
    (form("[" * 100_000 + "]" * 100_000), "not a JSON object"),
    (b"payload=" + b"%5B" * 200_000, "not valid JSON"),
    (form({"user": {"id": "U1"}}), "no 'type'"),
    (form(block_actions(actions="escucha_ack")), "no list of 'actions'"),
    (form(block_actions(actions=["escucha_ack"])), "no list of 'actions'"),
    (form(block_actions(user=None)), "no 'user' object"),
    (form(block_actions(user={"id": "U1<script>"})), "not a Slack user id"),
    (form(block_actions(user={"id": "u024be7lh"})), "not a Slack user id"),
    (b"payload=" + b"x" * (1 << 20), "larger|over"),
])
def test_malformed_bodies_raise_a_clear_value_error(body: bytes, expected: str) -> None:
    with pytest.raises(ValueError, match=expected) as info:
        parse_block_action(body)
    assert isinstance(info.value, SlackPayloadError)


def test_the_user_name_is_untrusted_text() -> None:
    hostile = "ana\n<!channel>\u202e\x1b[31m" + "x" * 500
    action = parse_block_action(form(block_actions(user={"id": "W0ENTERPRISE",
                                                         "username": hostile})))
    assert action is not None and action.user_id == "W0ENTERPRISE"
    name = action.user_name
    assert "\n" not in name and "\x1b" not in name and "\u202e" not in name
    assert len(name) <= 80
    # Markup is escaped where it is shown (Slack, HTML), not mangled here.
    assert name.startswith("ana <!channel>")


def test_a_missing_user_name_falls_back_to_the_user_id() -> None:
    for user in ({"id": "U024BE7LH"}, {"id": "U024BE7LH", "username": " \n "},
                 {"id": "U024BE7LH", "username": 7}):
        action = parse_block_action(form(block_actions(user=user)))
        assert action is not None and action.user_name == "U024BE7LH"
    named = parse_block_action(form(block_actions(user={"id": "U024BE7LH", "name": "bo"})))
    assert named is not None and named.user_name == "bo"


@pytest.mark.parametrize("url", [
    "https://evil.example/actions/T0001/1/x", "http://hooks.slack.com/actions/T0001/1/x",
    "https://hooks.slack.com.evil.example/x", "https://user@hooks.slack.com/x",
    "https://hooks.slack.com:8443/x", "https://hooks.slack.com:bad/x", "javascript:alert(1)",
    "https://hooks.slack.com/a b", 42, None,
])
def test_a_response_url_off_slack_is_dropped(url: Any) -> None:
    # The route may POST to it: a payload must not choose where (SSRF).
    action = parse_block_action(form(block_actions(response_url=url)))
    assert action is not None and action.response_url is None
