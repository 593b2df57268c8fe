"""``POST /pagerduty/webhook``: two-way PagerDuty.

An acknowledge or resolve in PagerDuty acknowledges or resolves the escucha incident through
the same path as a Slack button: an :class:`~streams.core.records.Ack` on the acks topic,
applied idempotently by the escalate agent that owns the incident, which stops escucha's
escalation. PagerDuty's incident is mapped back through its ``incident_key``: for an
incident the Events API opened, that is the ``dedup_key`` escucha sent, the escucha incident
id (``notifiers/pagerduty.py``).

PagerDuty's v3 webhooks carry ``X-PagerDuty-Signature: v1=<hex HMAC-SHA256 of the raw body>``,
one signature per secret of the subscription (comma-separated while a secret rotates). The
signature covers no timestamp, so a captured request would be valid forever; three rules
keep a replay from doing harm: an event whose signed ``occurred_at`` is older than
``max_age_s`` or ahead of our clock by more than the allowed skew is refused, an event id
already accepted is a no-op, and an event older than the incident's latest reopening is
ignored (it was about an earlier episode of the crisis).

Verification and parsing are plain functions, tested without a server; the route at the end
only strings them together.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections import OrderedDict
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from faust.web import Request, Response

from notifiers import registry
from notifiers.pagerduty import CHANNEL as PAGERDUTY
from streams.core.records import Incident, watch_of
from streams.core.security import BadRequest, read_json, same_secret
from streams.runtime.pipeline import Pipeline
from streams.web.api import INCIDENT_ID, Page, client_of, send_ack, too_many

__all__ = ["ACTIONS", "SIGNATURE_HEADER", "SKEW_S", "SeenEvents", "SignatureError",
           "WebhookEvent", "check_age", "incident_for", "install_pagerduty", "parse_event",
           "predates_reopening", "verify_signature"]

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-PagerDuty-Signature"
#: How far ahead of our clock a signed ``occurred_at`` may be: NTP keeps both clocks within a
#: second, but a later one would stretch the window in which a captured request replays.
SKEW_S = 300
#: The event types acted on; every other one (triggered, escalated, the subscription's
#: ``pagey.ping`` test) is answered 200 and ignored, so PagerDuty does not count a failure.
ACTIONS: dict[str, Literal["ack", "resolve"]] = {"incident.acknowledged": "ack",
                                                 "incident.resolved": "resolve"}
# PagerDuty drops every webhook over 256 KB before sending it.
_MAX_BODY = 256 * 1024
_MAX_ID = 128


class SignatureError(BadRequest):
    """The request is not signed by a configured secret (401; counts against the address)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, status=401)


def verify_signature(body: bytes, header: str | None, secrets: Sequence[bytes]) -> None:
    """Pass if one ``v1=`` signature in ``header`` is the HMAC-SHA256 of ``body`` under one of
    ``secrets``; :class:`SignatureError` else. ``body`` must be the raw bytes received."""
    if not header or not header.strip():
        raise SignatureError(f"no {SIGNATURE_HEADER} header")
    given = [part.strip()[3:] for part in header.split(",") if part.strip().startswith("v1=")]
    if not given:
        raise SignatureError(f"no v1 signature in {SIGNATURE_HEADER}")
    expected = [hmac.new(secret, body, hashlib.sha256).hexdigest() for secret in secrets]
    # Every pair is compared, each in constant time: how long it takes says nothing about
    # which secret or which signature matched.
    matched = False
    for signature in given:
        for wanted in expected:
            matched |= same_secret(signature, wanted)
    if not matched:
        raise SignatureError("invalid signature")


@dataclass(frozen=True, kw_only=True)
class WebhookEvent:
    """What escucha reads from one v3 webhook (``{"event": {...}}``)."""

    id: str
    type: str
    occurred_at: datetime
    incident_key: str | None  # PagerDuty's incident_key: escucha's dedup_key when it opened it
    pd_incident: str  # PagerDuty's own incident id, for the log
    agent: str  # who acted in PagerDuty: a user's name, else what the agent is


def _text(value: object, limit: int) -> str | None:
    return value if isinstance(value, str) and 0 < len(value) <= limit else None


def parse_event(body: bytes) -> WebhookEvent:
    """The event of a (verified) v3 webhook body; :class:`BadRequest` says what is wrong."""
    data = read_json(body, max_bytes=_MAX_BODY)
    event = data.get("event") if isinstance(data, dict) else None
    if not isinstance(event, dict):
        raise BadRequest("not a PagerDuty v3 webhook: no \"event\" object")
    event_id, event_type = _text(event.get("id"), _MAX_ID), _text(event.get("event_type"), 100)
    if event_id is None or event_type is None:
        raise BadRequest("event.id and event.event_type must be non-empty strings")
    try:
        occurred_at = datetime.fromisoformat(str(event.get("occurred_at")))
    except ValueError:
        raise BadRequest("event.occurred_at is not an ISO 8601 time") from None
    if occurred_at.tzinfo is None:
        raise BadRequest("event.occurred_at has no time zone")
    inc, agent = event.get("data"), event.get("agent")
    inc = inc if isinstance(inc, dict) else {}
    agent = agent if isinstance(agent, dict) else {}  # null for events no one made
    return WebhookEvent(
        id=event_id, type=event_type, occurred_at=occurred_at.astimezone(UTC),
        incident_key=_text(inc.get("incident_key"), 255),
        pd_incident=_text(inc.get("id"), 64) or "?",
        # Free text from PagerDuty's side: send_ack stores it as one clean line.
        agent=_text(agent.get("summary"), 1000) or "PagerDuty")


def check_age(event: WebhookEvent, now: datetime, *, max_age_s: float) -> None:
    """:class:`BadRequest` (400) for an event older than ``max_age_s`` or from the future."""
    age = (now - event.occurred_at).total_seconds()
    if age > max_age_s:
        raise BadRequest(f"stale event: it occurred {age:.0f} s ago and events older than "
                         f"{max_age_s:.0f} s are refused")
    if -age > SKEW_S:
        raise BadRequest(f"event.occurred_at is {-age:.0f} s ahead of this server's clock "
                         f"(at most {SKEW_S} s allowed): check both clocks")


def incident_for(event: WebhookEvent, watches: Collection[str]) -> str | None:
    """The escucha incident the PagerDuty incident was opened for, or None if not ours."""
    key = event.incident_key
    if key is None or not INCIDENT_ID.fullmatch(key) or watch_of(key) not in watches:
        return None
    return key


def predates_reopening(incident: Incident | None, occurred_at: datetime) -> bool:
    """Whether ``occurred_at`` is before the incident's latest reopening: an ack of the
    earlier episode, late or replayed, must not silence the new one."""
    if incident is None:
        return False
    reopened = [e.at if e.at.tzinfo else e.at.replace(tzinfo=UTC)
                for e in incident.timeline if e.kind == "reopen"]
    return bool(reopened) and occurred_at < max(reopened)


class SeenEvents:
    """Ids of the events accepted within the last ``keep_s`` seconds: a redelivery or a replay
    of one is a no-op. Older ones are refused as stale anyway, so they are forgotten; at most
    ``max_items`` are kept (oldest out), so memory stays bounded."""

    def __init__(self, *, keep_s: float, max_items: int = 10_000) -> None:
        self.keep_s, self.max_items = keep_s, max_items
        self._ids: OrderedDict[str, datetime] = OrderedDict()

    def __contains__(self, event_id: object) -> bool:
        return event_id in self._ids

    def __len__(self) -> int:
        return len(self._ids)

    def add(self, event_id: str, now: datetime) -> None:
        self._ids[event_id] = now
        self._ids.move_to_end(event_id)
        while self._ids and ((now - next(iter(self._ids.values()))).total_seconds() > self.keep_s
                             or len(self._ids) > self.max_items):
            self._ids.popitem(last=False)


def install_pagerduty(pipeline: Pipeline) -> None:
    """Add ``POST /pagerduty/webhook``; it refuses everything until
    ``notifiers.pagerduty.webhook.secrets`` is set."""
    app, settings = pipeline.app, pipeline.settings
    section = registry.section(settings.notifiers, PAGERDUTY)
    hook = section.webhook if section is not None else None
    secrets = [s.get_secret_value().encode() for s in hook.secrets] if hook else []
    max_age_s = hook.max_age_s if hook else 0
    seen = SeenEvents(keep_s=max_age_s + SKEW_S)
    watches = {w.id for w in settings.watches}
    incidents = pipeline.views.incidents

    @app.serve("/pagerduty/webhook", access="signed")
    class PagerDutyWebhook(Page):
        def _ignored(self, event: WebhookEvent, reason: str) -> Response:
            # 2xx: PagerDuty counts a 4xx as a failed delivery, and these are not failures.
            log.info("PagerDuty %r on %r ignored: %s", event.type, event.pd_incident, reason)
            return self.json({"status": "ignored", "reason": reason})

        async def post(self, request: Request) -> Response:
            client = client_of(pipeline, request)
            wait = pipeline.gate.locked("pagerduty_signature", client)
            if wait is not None:
                raise too_many(wait)
            body = await request.read()  # type: ignore[attr-defined]
            if not secrets:
                log.warning("a PagerDuty webhook arrived but notifiers.pagerduty.webhook."
                            "secrets is not set; refused")
                return self.json({"error": "not configured"}, status=401)
            try:
                verify_signature(body, request.headers.get(SIGNATURE_HEADER), secrets)
            except SignatureError as exc:
                pipeline.gate.failed("pagerduty_signature", client)
                log.warning("refused a PagerDuty webhook from %s: %s", client, exc)
                return self.json({"error": str(exc)}, status=exc.status)
            now = datetime.now(UTC)
            try:
                event = parse_event(body)
                check_age(event, now, max_age_s=max_age_s)
            except BadRequest as exc:
                log.warning("refused a signed PagerDuty webhook from %s: %s", client, exc)
                return self.json({"error": str(exc)}, status=exc.status)
            if event.id in seen:
                return self.json({"status": "duplicate"})
            action = ACTIONS.get(event.type)
            if action is None:
                return self._ignored(event, f"{event.type} changes nothing in escucha")
            incident_id = incident_for(event, watches)
            if incident_id is None:
                return self._ignored(event, "not an incident escucha opened")
            if predates_reopening(incidents.get(incident_id), event.occurred_at):
                return self._ignored(event, "it happened before the incident reopened")
            await send_ack(pipeline, incident_id, action, by=event.agent, source="pagerduty")
            seen.add(event.id, now)  # only once sent: a retry after a failure must go through
            return self.json({"status": "accepted", "incident_id": incident_id,
                              "action": action}, status=202)
