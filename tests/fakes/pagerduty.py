"""A fake PagerDuty Events API v2: a real aiohttp server on 127.0.0.1, port 0.

``POST /v2/enqueue`` validates an alert event the way PagerDuty documents it and answers in
its format: 202 ``{"status": "success", "message": "Event processed", "dedup_key": ...}``;
400 ``{"status": "invalid event", "message": "Event object is invalid", "errors": [...]}``;
429 when throttled; 5xx when down. Accepted events drive one alert per
(routing key, dedup key) through triggered → acknowledged → resolved with PagerDuty's rules:
a trigger on a resolved alert opens a new one, acknowledge/resolve of no open alert is dropped.

The other direction is PagerDuty's v3 webhooks: :meth:`FakePagerDuty.respond` is a responder
acknowledging or resolving in PagerDuty's app (the alert changes state) and returns the
webhook event it causes; :func:`sign_webhook` gives the headers PagerDuty sends it with.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from aiohttp import web

from tests.fakes._server import LocalServer, serve

__all__ = ["FakeAlert", "FakePagerDuty", "PagerDutyRequest", "sign_webhook", "webhook_event"]

AlertState = Literal["triggered", "acknowledged", "resolved"]

_ACTIONS = ("trigger", "acknowledge", "resolve")
_SEVERITIES = ("critical", "error", "warning", "info")
_MAX_BYTES = 512 * 1024  # PagerDuty's documented payload limit


@dataclass
class PagerDutyRequest:
    """One request the fake answered, refused ones included."""

    body: Any  # parsed JSON, or the raw text when it was not JSON
    status: int
    response: dict[str, Any] | str
    at: float
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class FakeAlert:
    routing_key: str
    dedup_key: str
    state: AlertState
    summary: str
    severity: str
    events: list[dict[str, Any]] = field(default_factory=list)  # every event applied, in order

    @property
    def actions(self) -> list[str]:
        return [str(e["event_action"]) for e in self.events]


@dataclass
class _Failure:
    status: int
    retry_after: int | None
    remaining: int


def _validate(event: Any, known_keys: set[str]) -> list[str]:
    """PagerDuty's checks, as error strings; empty when the event is valid."""
    if not isinstance(event, dict):
        return ["Event object must be a JSON object"]
    errors: list[str] = []
    key = event.get("routing_key")
    if not isinstance(key, str) or not key.strip():
        errors.append("'routing_key' is missing or blank")
    elif key not in known_keys:
        errors.append("Invalid routing key")
    action = event.get("event_action")
    if action not in _ACTIONS:
        errors.append("'event_action' is missing or invalid")
    dedup = event.get("dedup_key")
    if dedup is not None and (not isinstance(dedup, str) or len(dedup) > 255):
        errors.append("'dedup_key' must be a string of at most 255 characters")
    if action in ("acknowledge", "resolve") and not dedup:
        errors.append("'dedup_key' is required for acknowledge and resolve events")
    if action == "trigger":
        errors.extend(_validate_payload(event.get("payload")))
    links = event.get("links", [])
    if not isinstance(links, list) or any(
        not isinstance(link, dict) or not isinstance(link.get("href"), str) for link in links
    ):
        errors.append("'links' must be a list of objects with an 'href'")
    for name in ("client", "client_url"):
        if name in event and not isinstance(event[name], str):
            errors.append(f"'{name}' must be a string")
    return errors


def _validate_payload(payload: Any) -> list[str]:
    if not isinstance(payload, dict):
        return ["'payload' is missing or not an object"]
    errors = []
    summary = payload.get("summary")
    if not isinstance(summary, str) or not summary.strip():
        errors.append("'payload.summary' is missing or blank")
    elif len(summary) > 1024:
        errors.append("'payload.summary' is longer than 1024 characters")
    source = payload.get("source")
    if not isinstance(source, str) or not source.strip():
        errors.append("'payload.source' is missing or blank")
    if payload.get("severity") not in _SEVERITIES:
        errors.append("'payload.severity' must be one of critical, error, warning, info")
    stamp = payload.get("timestamp")
    if stamp is not None:
        try:
            datetime.fromisoformat(str(stamp))
        except ValueError:
            errors.append("'payload.timestamp' is not an ISO 8601 timestamp")
    details = payload.get("custom_details")
    if details is not None and not isinstance(details, dict):
        errors.append("'payload.custom_details' must be an object")
    return errors


def _ref(kind: str, ref_id: str, summary: str) -> dict[str, str]:
    path = {"user": "users", "service": "services",
            "escalation_policy": "escalation_policies"}[kind]
    return {"html_url": f"https://acme.pagerduty.com/{path}/{ref_id}", "id": ref_id,
            "self": f"https://api.pagerduty.com/{path}/{ref_id}", "summary": summary,
            "type": f"{kind}_reference"}


def webhook_event(event_type: str, *, incident_key: str | None, by: str | None = "Ana Responder",
                  occurred_at: datetime | None = None, event_id: str | None = None,
                  status: str | None = None, title: str = "escucha alert") -> dict[str, Any]:
    """A v3 webhook body as PagerDuty sends it for an ``incident.*`` event (one event per
    webhook; ``by=None``: no agent, as for changes PagerDuty makes itself)."""
    at = occurred_at or datetime.now(UTC)
    incident_id = "Q" + hashlib.sha256(str(incident_key).encode()).hexdigest()[:12].upper()
    state = status or {"incident.acknowledged": "acknowledged",
                       "incident.resolved": "resolved"}.get(event_type, "triggered")
    return {"event": {
        "id": event_id or uuid.uuid4().hex,
        "event_type": event_type,
        "resource_type": "incident",
        "occurred_at": at.astimezone(UTC).isoformat(timespec="milliseconds").replace(
            "+00:00", "Z"),
        "agent": None if by is None else _ref("user", "PLH1HKV", by),
        "client": None,
        "data": {
            "id": incident_id, "type": "incident",
            "self": f"https://api.pagerduty.com/incidents/{incident_id}",
            "html_url": f"https://acme.pagerduty.com/incidents/{incident_id}",
            "number": 2, "status": state, "incident_key": incident_key,
            "created_at": at.astimezone(UTC).isoformat(timespec="seconds").replace(
                "+00:00", "Z"),
            "title": title,
            "service": _ref("service", "PF9KMXH", "Brand crisis"),
            "assignees": [_ref("user", "PTUXL6G", "On call")],
            "escalation_policy": _ref("escalation_policy", "PUS0KTE", "Default"),
            "teams": [], "priority": None, "urgency": "high", "conference_bridge": None,
            "resolve_reason": None,
        },
    }}


def sign_webhook(body: bytes, secrets: Iterable[str]) -> dict[str, str]:
    """The headers of a v3 webhook delivery: one ``v1=`` HMAC-SHA256 of the raw body per
    secret of the subscription, comma-separated (two while a secret rotates)."""
    signatures = ",".join("v1=" + hmac.new(s.encode(), body, hashlib.sha256).hexdigest()
                          for s in secrets)
    return {"Content-Type": "application/json", "User-Agent": "PagerDuty-Webhook/V3.0",
            "X-PagerDuty-Signature": signatures,
            # The same id on every retry of one delivery.
            "X-Webhook-Id": hashlib.sha256(body).hexdigest()[:32],
            "X-Webhook-Subscription": "PSUBS01"}


class FakePagerDuty(LocalServer):
    """Events API v2 on a loopback port; ``events_url`` is what the notifier posts to."""

    def __init__(
        self,
        *,
        routing_keys: Iterable[str] = ("R0UT1NGKEY0000000000000000000000",),
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.routing_keys = set(routing_keys)
        self.requests: list[PagerDutyRequest] = []
        self.events: list[dict[str, Any]] = []  # accepted (202) events, in order
        self._alerts: dict[tuple[str, str], FakeAlert] = {}
        self._failures: list[_Failure] = []
        self._down = False
        self._clock = clock
        self._runner: web.AppRunner | None = None
        self._base: str | None = None

    # -- lifecycle -------------------------------------------------------------------------
    async def start(self) -> None:
        if self._runner is not None:
            raise RuntimeError("FakePagerDuty is already started")
        app = web.Application(client_max_size=2 * _MAX_BYTES)
        app.router.add_route("*", "/v2/enqueue", self._enqueue)
        self._runner, base = await serve(app)
        self._base = base

    @property
    def events_url(self) -> str:
        if self._base is None:
            raise RuntimeError("FakePagerDuty has no URL yet: await start() or use 'async with'")
        return f"{self._base}/v2/enqueue"

    # -- scripting and inspection ---------------------------------------------------------
    def fail_next(self, status: int, retry_after: int | None = None, times: int = 1) -> None:
        """Answer the next ``times`` requests with ``status`` (and ``Retry-After`` if given)."""
        if times < 1 or not 400 <= status <= 599:
            raise ValueError("fail_next needs times >= 1 and an HTTP error status")
        self._failures.append(_Failure(status, retry_after, times))

    def go_down(self) -> None:
        """Every request gets HTTP 503 until come_up()."""
        self._down = True

    def come_up(self) -> None:
        self._down = False

    @property
    def alerts(self) -> list[FakeAlert]:
        return list(self._alerts.values())

    def respond(self, dedup_key: str, action: Literal["acknowledge", "resolve"], *,
                by: str = "Ana Responder") -> dict[str, Any]:
        """A responder acknowledges or resolves the alert in PagerDuty's app: its state changes
        and the v3 webhook event that PagerDuty then sends is returned."""
        alert = self.alert(dedup_key)
        if alert is None or alert.state == "resolved":
            raise ValueError(f"no open alert with dedup_key {dedup_key!r}")
        alert.state = "acknowledged" if action == "acknowledge" else "resolved"
        event_type = f"incident.{alert.state}"
        return webhook_event(event_type, incident_key=dedup_key, by=by, title=alert.summary)

    def alert(self, dedup_key: str, routing_key: str | None = None) -> FakeAlert | None:
        """The alert for a dedup key (on one routing key, if given), or None."""
        for (key, dedup), alert in self._alerts.items():
            if dedup == dedup_key and routing_key in (None, key):
                return alert
        return None

    # -- the endpoint ---------------------------------------------------------------------
    def _answer(self, body: Any, headers: dict[str, str], status: int,
                response: dict[str, Any] | str, extra: dict[str, str] | None = None
                ) -> web.Response:
        self.requests.append(PagerDutyRequest(body=body, status=status, response=response,
                                              at=self._clock(), headers=headers))
        if isinstance(response, str):
            return web.Response(status=status, text=response, content_type="text/html",
                                headers=extra)
        return web.json_response(response, status=status, headers=extra)

    async def _enqueue(self, request: web.Request) -> web.Response:
        raw = await request.read()
        headers = dict(request.headers)
        try:
            body: Any = json.loads(raw)
        except ValueError:
            body = raw.decode("utf-8", "replace")
        if request.method != "POST":
            return self._answer(body, headers, 405, {"status": "error",
                                                     "message": "Method Not Allowed"})
        if self._down:
            return self._answer(body, headers, 503, "<html><body>503 Service Unavailable"
                                                    "</body></html>")
        if self._failures:
            failure = self._failures[0]
            failure.remaining -= 1
            if failure.remaining == 0:
                self._failures.pop(0)
            extra = ({"Retry-After": str(failure.retry_after)}
                     if failure.retry_after is not None else None)
            if failure.status == 429:
                return self._answer(body, headers, 429, {
                    "status": "throttle event",
                    "message": "Requests for this service are arriving too quickly. "
                               "Please retry later."}, extra)
            if failure.status == 400:
                return self._answer(body, headers, 400, {
                    "status": "invalid event", "message": "Event object is invalid",
                    "errors": ["Scripted failure"]}, extra)
            return self._answer(body, headers, failure.status,
                                f"<html><body>{failure.status} error</body></html>", extra)
        if len(raw) > _MAX_BYTES:
            return self._answer(body, headers, 400, {
                "status": "invalid event", "message": "Event object is invalid",
                "errors": ["Event object is larger than 512 KB"]})
        if isinstance(body, str):
            return self._answer(body, headers, 400, {
                "status": "invalid event", "message": "Event object is invalid",
                "errors": ["Request body is not valid JSON"]})
        errors = _validate(body, self.routing_keys)
        if errors:
            return self._answer(body, headers, 400, {
                "status": "invalid event", "message": "Event object is invalid",
                "errors": errors})
        dedup = body.get("dedup_key") or uuid.uuid4().hex
        self._apply(body, dedup)
        self.events.append(body)
        return self._answer(body, headers, 202, {
            "status": "success", "message": "Event processed", "dedup_key": dedup})

    def _apply(self, event: dict[str, Any], dedup: str) -> None:
        slot = (str(event["routing_key"]), dedup)
        alert = self._alerts.get(slot)
        action = event["event_action"]
        if action == "trigger":
            payload = event["payload"]
            if alert is None or alert.state == "resolved":
                # PagerDuty never reopens a resolved alert: a new trigger starts a new one.
                alert = FakeAlert(routing_key=slot[0], dedup_key=dedup, state="triggered",
                                  summary=payload["summary"], severity=payload["severity"])
                self._alerts[slot] = alert
            else:
                alert.summary, alert.severity = payload["summary"], payload["severity"]
            alert.events.append(event)
            return
        if alert is None or alert.state == "resolved":
            return  # dropped, as PagerDuty does, though still answered 202
        if action == "acknowledge" and alert.state == "triggered":
            alert.state = "acknowledged"
        elif action == "resolve":
            alert.state = "resolved"
        alert.events.append(event)
