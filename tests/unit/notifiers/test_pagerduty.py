"""PagerDutyNotifier against the fake Events API v2 on loopback: real HTTP, PagerDuty's rules."""

from __future__ import annotations

import logging
import socket
import traceback
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from pydantic import SecretStr, ValidationError

from notifiers.base import Notifier
from notifiers.errors import DeliveryError
from notifiers.pagerduty import (
    PagerDutyNotifier,
    PagerDutySettings,
    build_event,
    console_url,
    event_action,
)
from streams.core.records import Incident, Notification, SampleMention
from tests.fakes.pagerduty import FakePagerDuty

KEY = "R0UT1NG-SECRET-KEY-a1b2c3d4e5f6a7"
UNKNOWN_KEY = "R0UT1NG-NOT-KNOWN-ffffeeee0000111"
NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
HOSTILE = "<!channel> @here\x1b[31m\u202eevil\u202c <script>alert(1)</script>\nsecond line"


def notification(
    *, kind: str = "trigger", state: str = "open", severity: str = "critical",
    summary: str = "240 negative mentions in 5 min (expected 12): observed/expected 20x",
    samples: list[SampleMention] | None = None, target: str = "crisis",
    incident_id: str = "acme.4f2a9c", digest: list[str] | None = None,
) -> Notification:
    incident = Incident(
        id=incident_id, fingerprint="acme:negative_spike", watch_id="acme",
        detector="negative_spike", severity=severity, state=state,  # type: ignore[arg-type]
        opened_at=NOW, updated_at=NOW, summary=summary, signal_ids=["s1"],
        samples=samples or [],
    )
    return Notification(id=f"{incident_id}:{kind}", incident=incident, level=1,
                        channel="pagerduty", target=target, created_at=NOW,
                        kind=kind, digest=digest or [])  # type: ignore[arg-type]


def sample(text: str = "acme lost my order", *, author: str = "customer",
           url: str | None = "https://social.example/1") -> SampleMention:
    return SampleMention(key="x:1", url=url, author=author, text=text, priority=80)


def settings(url: str, **services: str) -> PagerDutySettings:
    return PagerDutySettings(events_url=url, timeout_s=5,
                             services={k: SecretStr(v) for k, v in services.items()})


@pytest_asyncio.fixture
async def fake() -> AsyncIterator[FakePagerDuty]:
    async with FakePagerDuty(routing_keys={KEY}) as server:
        yield server


@pytest_asyncio.fixture
async def pd(fake: FakePagerDuty) -> AsyncIterator[PagerDutyNotifier]:
    notifier = PagerDutyNotifier(
        settings=settings(fake.events_url, crisis=KEY, stale=UNKNOWN_KEY),
        watch_names={"acme": "Acme (brand)"},
    )
    yield notifier
    await notifier.close()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- lifecycle and wire shape ---------------------------------------------------------------

def state_at(fake: FakePagerDuty, dedup_key: str = "acme.4f2a9c") -> str | None:
    alert = fake.alert(dedup_key)
    return None if alert is None else alert.state


async def test_trigger_acknowledge_resolve_drive_one_alert(
    fake: FakePagerDuty, pd: PagerDutyNotifier
) -> None:
    assert isinstance(pd, Notifier)
    receipt = await pd.send(notification())
    assert receipt.external_id == "acme.4f2a9c"
    alert = fake.alert("acme.4f2a9c")
    assert alert is not None and alert.routing_key == KEY
    assert state_at(fake) == "triggered"

    await pd.send(notification(kind="escalate"))
    await pd.send(notification(kind="reminder"))
    await pd.send(notification(kind="update", summary="now 400 mentions"))
    assert state_at(fake) == "triggered" and "now 400 mentions" in alert.summary

    receipt = await pd.send(notification(kind="acknowledge", state="acknowledged"))
    assert receipt.external_id == "acme.4f2a9c"
    assert state_at(fake) == "acknowledged"
    await pd.send(notification(kind="resolve", state="resolved"))
    assert state_at(fake) == "resolved"
    assert alert.actions == ["trigger"] * 4 + ["acknowledge", "resolve"]
    assert len(fake.alerts) == 1
    assert {e["dedup_key"] for e in fake.events} == {"acme.4f2a9c"}


async def test_an_escalation_notice_is_logged_on_the_alert_without_a_second_page(
    fake: FakePagerDuty, pd: PagerDutyNotifier
) -> None:
    await pd.send(notification())
    escalated = notification(kind="escalate")
    await pd.send(escalated.model_copy(update={"level": 2}))
    (alert,) = fake.alerts
    assert alert.actions == ["trigger", "trigger"] and alert.state == "triggered"
    details = alert.events[1]["payload"]["custom_details"]
    assert details["change"] == "escalated"
    assert details["status"] == "Escalated to level 2: nobody has acknowledged it yet"
    assert "status" not in alert.events[0]["payload"]["custom_details"]  # a first alert


async def test_updates_after_resolve_never_open_a_new_alert(
    fake: FakePagerDuty, pd: PagerDutyNotifier
) -> None:
    await pd.send(notification())
    await pd.send(notification(kind="resolve", state="resolved"))
    # A late update or reminder about a resolved incident must not page anyone again.
    await pd.send(notification(kind="update", state="resolved"))
    await pd.send(notification(kind="reminder", state="resolved"))
    assert [e["event_action"] for e in fake.events] == ["trigger", "resolve", "resolve",
                                                        "resolve"]
    assert len(fake.alerts) == 1 and fake.alerts[0].state == "resolved"


@pytest.mark.parametrize(("kind", "state", "action"), [
    ("trigger", "open", "trigger"), ("escalate", "open", "trigger"),
    ("reminder", "open", "trigger"), ("update", "open", "trigger"),
    ("digest", "open", "trigger"), ("acknowledge", "acknowledged", "acknowledge"),
    ("acknowledge", "open", "acknowledge"), ("update", "acknowledged", "acknowledge"),
    ("resolve", "resolved", "resolve"), ("resolve", "acknowledged", "resolve"),
    ("acknowledge", "resolved", "resolve"), ("update", "resolved", "resolve"),
])
def test_event_action_table(kind: str, state: str, action: str) -> None:
    assert event_action(notification(kind=kind, state=state)) == action


@pytest.mark.parametrize("severity", ["critical", "warning", "info"])
async def test_trigger_wire_shape(
    fake: FakePagerDuty, pd: PagerDutyNotifier, severity: str
) -> None:
    note = notification(severity=severity, samples=[
        sample(), sample(HOSTILE, author="bad\x07actor", url="javascript:alert(1)"),
        sample(url="https://x.example/a b"),
    ])
    await pd.send(note)
    (request,) = fake.requests
    assert request.headers["Content-Type"].startswith("application/json")
    event: dict[str, Any] = request.body
    assert set(event) == {"routing_key", "event_action", "dedup_key", "payload", "links",
                          "client"}
    assert event["routing_key"] == KEY and event["event_action"] == "trigger"
    assert event["dedup_key"] == "acme.4f2a9c"
    payload = event["payload"]
    assert set(payload) == {"summary", "source", "severity", "timestamp", "component", "group",
                            "class", "custom_details"}
    assert payload["severity"] == severity
    assert payload["summary"].startswith("Acme (brand) — negative_spike: 240 negative")
    assert payload["source"] == "escucha:acme" and payload["group"] == "acme"
    assert payload["class"] == "negative_spike" and payload["component"] == "Acme (brand)"
    assert datetime.fromisoformat(payload["timestamp"]) == NOW
    details = payload["custom_details"]
    assert details["incident"] == "acme.4f2a9c" and details["watch"] == "Acme (brand)"
    assert details["detector"] == "negative_spike" and "expected 12" in details["summary"]
    assert len(details["samples"]) == 3
    hostile = details["samples"][1]
    assert "\x1b" not in hostile["text"] and "\u202e" not in hostile["text"]
    assert "\x07" not in hostile["author"] and hostile["url"] is None
    # Only plain http(s) links, never javascript: or URLs with spaces.
    assert event["links"] == [{"href": "https://social.example/1", "text": "@customer"}]


async def test_the_alert_links_back_to_the_console_incident_page(fake: FakePagerDuty) -> None:
    notifier = PagerDutyNotifier(settings=settings(fake.events_url, crisis=KEY),
                                 public_url="https://escucha.example.com/")
    try:
        await notifier.send(notification(samples=[sample()]))
        await notifier.send(notification(kind="acknowledge", state="acknowledged"))
    finally:
        await notifier.close()
    trigger, acknowledge = fake.events
    page = "https://escucha.example.com/console/incidents/acme.4f2a9c"
    assert trigger["client"] == "escucha" and trigger["client_url"] == page
    # The console first (evidence, timeline, playbook), then the mentions themselves.
    assert trigger["links"] == [{"href": page, "text": "escucha: open the incident"},
                                {"href": "https://social.example/1", "text": "@customer"}]
    assert "client_url" not in acknowledge  # PagerDuty reads links on a trigger only


def test_a_public_url_that_is_not_plain_http_gives_no_link() -> None:
    for base in ("javascript:alert(1)//", "ftp://escucha.example.com", None, ""):
        event = build_event(notification(), routing_key=KEY, watch_name="Acme",
                            console=console_url(base, notification().incident))
        assert "client_url" not in event and "links" not in event, base
    # An id is one path segment, whatever it holds.
    odd = notification(incident_id="acme.4f/../x?y#z").incident
    assert console_url("https://e.example", odd) == (
        "https://e.example/console/incidents/acme.4f%2F..%2Fx%3Fy%23z")


async def test_acknowledge_and_resolve_carry_no_payload(
    fake: FakePagerDuty, pd: PagerDutyNotifier
) -> None:
    await pd.send(notification())
    await pd.send(notification(kind="acknowledge", state="acknowledged"))
    await pd.send(notification(kind="resolve", state="resolved"))
    for event in fake.events[1:]:
        assert set(event) == {"routing_key", "event_action", "dedup_key"}


def test_summary_is_one_bounded_line() -> None:
    event = build_event(notification(summary=("x" * 3000) + "\n" + HOSTILE),
                        routing_key=KEY, watch_name="Acme\nInjected")
    summary = event["payload"]["summary"]
    assert len(summary) <= 1024 and summary.endswith("…")
    assert "\n" not in summary and "\x1b" not in summary
    assert len(event["payload"]["custom_details"]["summary"]) <= 2000


def test_long_incident_id_gets_a_stable_bounded_dedup_key() -> None:
    long_id = "acme." + "z" * 400
    first = build_event(notification(incident_id=long_id), routing_key=KEY, watch_name="a")
    again = build_event(notification(incident_id=long_id, kind="resolve", state="resolved"),
                        routing_key=KEY, watch_name="a")
    assert len(first["dedup_key"]) <= 255 and first["dedup_key"] == again["dedup_key"]


async def test_long_summary_and_many_samples_are_accepted(
    fake: FakePagerDuty, pd: PagerDutyNotifier
) -> None:
    note = notification(summary="y" * 5000, samples=[sample("z" * 10_000)] * 50,
                        kind="digest", digest=["one line"] * 100)
    await pd.send(note)
    assert fake.requests[-1].status == 202


# -- failures ---------------------------------------------------------------------------------

async def test_unknown_service_is_permanent_and_sends_nothing(
    fake: FakePagerDuty, pd: PagerDutyNotifier
) -> None:
    with pytest.raises(DeliveryError) as info:
        await pd.send(notification(target="marketing"))
    assert not info.value.retryable and "marketing" in info.value.reason
    assert "crisis" in info.value.reason  # says what is configured
    assert fake.requests == []


async def test_invalid_event_400_is_permanent(fake: FakePagerDuty, pd: PagerDutyNotifier) -> None:
    # A service whose key PagerDuty does not know: a real 400 from the validator.
    with pytest.raises(DeliveryError) as info:
        await pd.send(notification(target="stale"))
    assert not info.value.retryable
    assert "HTTP 400" in info.value.reason and "Invalid routing key" in info.value.reason
    fake.fail_next(400)
    with pytest.raises(DeliveryError) as info:
        await pd.send(notification())
    assert not info.value.retryable


async def test_429_is_retryable_with_retry_after(
    fake: FakePagerDuty, pd: PagerDutyNotifier
) -> None:
    fake.fail_next(429, retry_after=7)
    with pytest.raises(DeliveryError) as info:
        await pd.send(notification())
    assert info.value.retryable and info.value.retry_after == 7
    assert "HTTP 429" in info.value.reason
    assert (await pd.send(notification())).external_id == "acme.4f2a9c"


@pytest.mark.parametrize("status", [500, 502, 503, 504])
async def test_5xx_is_retryable(fake: FakePagerDuty, pd: PagerDutyNotifier, status: int) -> None:
    fake.fail_next(status, times=2)
    for _ in range(2):
        with pytest.raises(DeliveryError) as info:
            await pd.send(notification())
        assert info.value.retryable and info.value.retry_after is None
    await pd.send(notification())
    assert fake.alert("acme.4f2a9c") is not None


async def test_down_then_up(fake: FakePagerDuty, pd: PagerDutyNotifier) -> None:
    fake.go_down()
    with pytest.raises(DeliveryError) as info:
        await pd.send(notification())
    assert info.value.retryable and "HTTP 503" in info.value.reason
    fake.come_up()
    await pd.send(notification())
    assert len(fake.events) == 1


async def test_connection_refused_is_retryable() -> None:
    notifier = PagerDutyNotifier(settings=settings(
        f"http://127.0.0.1:{closed_port()}/v2/enqueue", crisis=KEY))
    try:
        with pytest.raises(DeliveryError) as info:
            await notifier.send(notification())
    finally:
        await notifier.close()
    assert info.value.retryable


async def test_find_sent_cannot_tell(pd: PagerDutyNotifier) -> None:
    assert await pd.find_sent(notification()) is None


async def test_a_given_session_is_left_open() -> None:
    async with FakePagerDuty(routing_keys={KEY}) as server, aiohttp.ClientSession() as session:
        notifier = PagerDutyNotifier(settings=settings(server.events_url, crisis=KEY),
                                     session=session)
        await notifier.send(notification())
        await notifier.close()
        assert not session.closed


# -- the fake speaks PagerDuty -----------------------------------------------------------------

@pytest.mark.parametrize(("event", "error"), [
    ({"event_action": "trigger"}, "'routing_key' is missing"),
    ({"routing_key": KEY, "event_action": "poke", "dedup_key": "d"}, "'event_action'"),
    ({"routing_key": KEY, "event_action": "resolve"}, "'dedup_key' is required"),
    ({"routing_key": KEY, "event_action": "trigger",
      "payload": {"source": "s", "severity": "info"}}, "'payload.summary'"),
    ({"routing_key": KEY, "event_action": "trigger",
      "payload": {"summary": "s", "severity": "info"}}, "'payload.source'"),
    ({"routing_key": KEY, "event_action": "trigger",
      "payload": {"summary": "s", "source": "s", "severity": "fatal"}}, "'payload.severity'"),
    ({"routing_key": KEY, "event_action": "trigger",
      "payload": {"summary": "s" * 1025, "source": "s", "severity": "info"}}, "1024"),
    ({"routing_key": KEY, "event_action": "trigger"}, "'payload'"),
])
async def test_fake_rejects_invalid_events_like_pagerduty(
    fake: FakePagerDuty, event: dict[str, Any], error: str
) -> None:
    async with aiohttp.ClientSession() as session, session.post(
        fake.events_url, json=event
    ) as resp:
        assert resp.status == 400
        body = await resp.json()
    assert body["status"] == "invalid event" and body["message"] == "Event object is invalid"
    assert any(error in e for e in body["errors"])
    assert fake.events == []


async def test_fake_generates_a_dedup_key_and_drops_ack_of_nothing(fake: FakePagerDuty) -> None:
    async with aiohttp.ClientSession() as session:
        trigger = {"routing_key": KEY, "event_action": "trigger",
                   "payload": {"summary": "s", "source": "s", "severity": "info"}}
        async with session.post(fake.events_url, json=trigger) as resp:
            assert resp.status == 202
            body = await resp.json()
        assert body["status"] == "success" and body["message"] == "Event processed"
        assert fake.alert(body["dedup_key"]) is not None
        ack = {"routing_key": KEY, "event_action": "acknowledge", "dedup_key": "nothing"}
        async with session.post(fake.events_url, json=ack) as resp:
            assert resp.status == 202
    assert fake.alert("nothing") is None


# -- secrets ----------------------------------------------------------------------------------

def test_settings_hide_keys_and_refuse_unknown_fields() -> None:
    s = settings("https://events.pagerduty.com/v2/enqueue", crisis=KEY)
    assert KEY not in repr(s) and KEY not in str(s) and KEY not in s.model_dump_json()
    with pytest.raises(ValidationError):
        PagerDutySettings.model_validate({"services": {"crisis": KEY}, "routing_key": KEY})
    assert PagerDutySettings().events_url == "https://events.pagerduty.com/v2/enqueue"
    with pytest.raises(ValidationError) as info:
        PagerDutySettings.model_validate({"services": {"crisis": [KEY]}, "timeout_s": -1})
    assert KEY not in str(info.value) and "services.crisis" in str(info.value)


async def _every_failure(fake: FakePagerDuty) -> list[DeliveryError]:
    errors: list[DeliveryError] = []
    notifier = PagerDutyNotifier(settings=settings(
        fake.events_url, crisis=KEY, stale=UNKNOWN_KEY))
    refused = PagerDutyNotifier(settings=settings(
        f"http://127.0.0.1:{closed_port()}/v2/enqueue", crisis=KEY))
    scripted: list[tuple[int, int | None]] = [(400, None), (429, 3), (500, None), (503, 1)]
    try:
        for status, retry_after in scripted:
            fake.fail_next(status, retry_after=retry_after)
            with pytest.raises(DeliveryError) as info:
                await notifier.send(notification())
            errors.append(info.value)
        for target in ("stale", "nope"):
            with pytest.raises(DeliveryError) as info:
                await notifier.send(notification(target=target))
            errors.append(info.value)
        fake.go_down()
        with pytest.raises(DeliveryError) as info:
            await notifier.send(notification())
        errors.append(info.value)
        with pytest.raises(DeliveryError) as info:
            await refused.send(notification())
        errors.append(info.value)
    finally:
        fake.come_up()
        await notifier.close()
        await refused.close()
    return errors


async def test_routing_keys_never_reach_errors_or_logs(
    fake: FakePagerDuty, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    errors = await _every_failure(fake)
    assert len(errors) == 8
    for err in errors:
        text = "".join(traceback.format_exception(err))
        for secret in (KEY, UNKNOWN_KEY):
            assert secret not in str(err) and secret not in err.reason and secret not in text
    for secret in (KEY, UNKNOWN_KEY):
        assert secret not in caplog.text
        assert all(secret not in r.getMessage() for r in caplog.records)
