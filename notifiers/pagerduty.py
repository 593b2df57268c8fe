"""PagerDuty through the Events API v2 (``POST /v2/enqueue``), one alert per incident.

Every event for an incident carries ``dedup_key`` = the incident id, so PagerDuty folds
triggers, escalations, reminders and updates into one alert, and the acknowledge and resolve
events land on that same alert. PagerDuty's own escalation policy pages people; escucha's
re-triggers only add log entries and fresh details to the alert (``custom_details.change``
and ``status`` say what happened, e.g. "escalated" when escucha reached its next level), so a
service an earlier level paged is told of an escalation without being paged twice.

The routing (integration) key is a credential: it is read from settings as ``SecretStr``, goes
only into the request body, and never into an error, a log line or a receipt. A target names a
service from ``settings.services``, never a key.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from typing import Any, Literal
from urllib.parse import quote

import aiohttp
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from notifiers.base import ChannelSpec, Receipt, not_configured
from notifiers.errors import DeliveryError, classify_exception, classify_http
from notifiers.followup import change_of, status_line
from notifiers.http import LazySession
from notifiers.stories import summary_for, watch_label
from notifiers.text import clean, console_safe, safe_url
from streams.core.records import Incident, Notification
from streams.i18n import EN, Lang
from streams.i18n.fields import ChannelLocale

__all__ = ["PagerDutyNotifier", "PagerDutySettings", "PagerDutyWebhookSettings", "build_event",
           "console_url", "dedup_key", "event_action"]

log = logging.getLogger(__name__)

EventAction = Literal["trigger", "acknowledge", "resolve"]

_CHANNEL = "pagerduty"
_SUMMARY_LIMIT = 1024  # PagerDuty rejects a longer payload.summary with 400
_DEDUP_LIMIT = 255  # likewise for dedup_key
_SEVERITY = {"critical": "critical", "warning": "warning", "info": "info"}
_MAX_SAMPLES = 5
_MAX_LINKS = 5


class PagerDutyWebhookSettings(BaseModel):
    """PagerDuty's v3 webhooks in (``POST /pagerduty/webhook``): an acknowledge or resolve
    there acknowledges or resolves the escucha incident."""

    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    secrets: list[SecretStr] = Field(
        min_length=1,
        description="The signing secret of each webhook subscription that posts here (shown "
        "once when the subscription is created). During a rotation list both: a request "
        "signed with any of them is accepted.",
    )
    max_age_s: int = Field(
        default=1800, ge=60, le=86400,
        description="Events whose occurred_at is older are refused (400). 30 min covers "
        "PagerDuty's redelivery (5 attempts over about 20 min) so an acknowledgement made "
        "while escucha was unreachable still stops its escalation; older is a replay.",
    )

    @field_validator("secrets")
    @classmethod
    def _strong_and_distinct(cls, value: list[SecretStr]) -> list[SecretStr]:
        # Never the value in the message: these are credentials.
        texts = [s.get_secret_value() for s in value]
        for i, text in enumerate(texts):
            if len(text.strip()) < 16:
                raise ValueError(f"secret {i} is shorter than 16 characters: paste the "
                                 "subscription's whole signing secret")
            if text in texts[:i]:
                raise ValueError(f"secret {i} is listed twice")
        return value


class PagerDutySettings(ChannelLocale):
    """The PagerDuty channel: where to send events and which services may be paged."""

    # A rejected field would otherwise be printed with its raw input: a routing key.
    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    events_url: str = Field(
        default="https://events.pagerduty.com/v2/enqueue",
        description="Events API v2 endpoint. Change only for a proxy or a test server.",
    )
    services: dict[str, SecretStr] = Field(
        default_factory=dict,
        description="Service name (what routing rules and notifications name as the target) → "
        "the Events API v2 integration key (routing key) of that PagerDuty service.",
    )
    timeout_s: float = Field(
        default=10, gt=0, le=300,
        description="Seconds for one request, connect to answer; retries are not counted.",
    )
    webhook: PagerDutyWebhookSettings | None = Field(
        default=None,
        description="Two-way: accept PagerDuty's v3 webhooks. Unset: /pagerduty/webhook "
        "refuses everything.",
    )


def event_action(notification: Notification) -> EventAction:
    """The Events API action for a notification.

    The furthest state wins: a resolved incident only ever sends ``resolve`` (a ``trigger``
    after a resolve would open a *new* PagerDuty alert and page someone for an incident that is
    over), and an acknowledged one sends ``acknowledge`` for updates and reminders (PagerDuty
    would not notify on a trigger anyway, and this repairs a lost acknowledge). Everything
    else — trigger, escalate, reminder, update, digest — is ``trigger``, deduplicated by key.
    """
    kind, state = notification.kind, notification.incident.state
    if kind == "resolve" or state == "resolved":
        return "resolve"
    if kind == "acknowledge" or state == "acknowledged":
        return "acknowledge"
    return "trigger"


def dedup_key(incident: Incident) -> str:
    """The incident id, or a stable shortened form when it exceeds PagerDuty's 255 characters."""
    if len(incident.id) <= _DEDUP_LIMIT:
        return incident.id
    digest = hashlib.sha256(incident.id.encode()).hexdigest()[:32]
    return f"{incident.id[: _DEDUP_LIMIT - 33]}#{digest}"


def _details(notification: Notification, watch_name: str, lang: Lang) -> dict[str, Any]:
    # Keys and machine values (severity, state, kind, change) stay English for PagerDuty
    # rules and integrations; only the human line ``status`` follows the target's locale.
    inc = notification.incident
    samples = [
        {
            "author": clean(sample.author, limit=64),
            "text": clean(sample.text, limit=500),
            "priority": sample.priority,
            "url": safe_url(sample.url),
        }
        for sample in inc.samples[:_MAX_SAMPLES]
    ]
    details: dict[str, Any] = {
        "incident": inc.id,
        "watch": clean(watch_name, limit=200),
        "watch_id": inc.watch_id,
        "detector": inc.detector,
        "severity": inc.severity,
        "state": inc.state,
        "level": notification.level,
        "kind": notification.kind,
        "change": change_of(notification),
        # The detector's own words: observed vs expected counts, window, top terms.
        "summary": clean(summary_for(inc, lang), limit=2000),
        "opened_at": inc.opened_at.isoformat(),
        "samples": samples,
    }
    if status := status_line(notification, lang):
        details["status"] = status
    if notification.digest:
        details["digest"] = [clean(line, limit=300) for line in notification.digest[:20]]
    return details


def console_url(base_url: str | None, incident: Incident) -> str | None:
    """The console page of ``incident`` under ``api.public_url``; None without a base or when
    the result is not a plain http(s) URL (a misconfigured base must not become a link)."""
    if not base_url:
        return None
    return safe_url(f"{base_url.rstrip('/')}/console/incidents/{quote(incident.id, safe='')}")


def build_event(
    notification: Notification, *, routing_key: str, watch_name: str,
    console: str | None = None, lang: Lang = EN,
) -> dict[str, Any]:
    """The Events API v2 body for a notification (the routing key is the caller's secret);
    ``console`` is the incident's page in escucha's console, linked from PagerDuty."""
    inc = notification.incident
    action = event_action(notification)
    event: dict[str, Any] = {
        "routing_key": routing_key,
        "event_action": action,
        "dedup_key": dedup_key(inc),
    }
    if action != "trigger":
        # PagerDuty ignores a payload on acknowledge/resolve; sending none keeps it minimal.
        return event
    watch = console_safe(watch_name, limit=200) or inc.watch_id or "escucha"
    links = []
    if console is not None:
        # First, so the responder paged by PagerDuty lands where they can see the evidence.
        links.append({"href": console, "text": lang._("escucha: open the incident")})
    for sample in inc.samples:
        url = safe_url(sample.url)
        if url is not None:
            links.append({"href": url, "text": console_safe(f"@{sample.author}", limit=100)})
        if len(links) == _MAX_LINKS:
            break
    event["payload"] = {
        # One line: PagerDuty reads the summary out in phone calls and SMS.
        "summary": console_safe(f"{watch} — {inc.detector}: {summary_for(inc, lang)}",
                                limit=_SUMMARY_LIMIT),
        "source": console_safe(f"escucha:{inc.watch_id}", limit=255),
        "severity": _SEVERITY.get(inc.severity, "critical"),
        "timestamp": notification.created_at.isoformat(),
        "component": watch,
        "group": console_safe(inc.watch_id, limit=255) or "escucha",
        "class": console_safe(inc.detector, limit=255) or "incident",
        "custom_details": _details(notification, watch_name, lang),
    }
    if links:
        event["links"] = links
    event["client"] = "escucha"
    if console is not None:
        event["client_url"] = console  # PagerDuty's "View in escucha" on the alert
    return event


def _scrub(text: str, secrets: list[str]) -> str:
    """Belt and braces: a service that echoes the request must not leak its key through us."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[redacted]")
    return text


def _error_detail(body: str) -> str:
    """PagerDuty's own words from an error answer: message and errors, else the raw text."""
    try:
        data = json.loads(body)
    except ValueError:
        return console_safe(body, limit=200)
    if not isinstance(data, dict):
        return console_safe(body, limit=200)
    parts = [str(data.get("message") or data.get("status") or "")]
    errors = data.get("errors")
    if isinstance(errors, list) and errors:
        parts.append("; ".join(str(e) for e in errors[:5]))
    return console_safe(": ".join(p for p in parts if p), limit=200)


class PagerDutyNotifier:
    """Sends each notification as one Events API v2 event to the service it targets."""

    channel = _CHANNEL

    def __init__(
        self,
        *,
        settings: PagerDutySettings,
        watch_names: Mapping[str, str] | None = None,
        session: aiohttp.ClientSession | None = None,
        public_url: str | None = None,
    ) -> None:
        self._settings = settings
        self._watch_names = dict(watch_names or {})
        self._http = LazySession(session)
        self._public_url = public_url

    async def send(self, notification: Notification) -> Receipt:
        service = notification.target
        secret = self._settings.services.get(service)
        if secret is None:
            known = ", ".join(sorted(self._settings.services)) or "none configured"
            raise DeliveryError(
                f"pagerduty: unknown service {console_safe(service, limit=100)!r}; add it to "
                f"notifiers.pagerduty.services (known: {known})",
                retryable=False,
            )
        key = secret.get_secret_value()
        inc = notification.incident
        event = build_event(notification, routing_key=key,
                            watch_name=watch_label(inc, self._watch_names),
                            console=console_url(self._public_url, inc),
                            lang=self._settings.lang_for(service))
        action = event["event_action"]
        log.debug("pagerduty: %s for incident %s to service %s", action, inc.id, service)
        timeout = aiohttp.ClientTimeout(total=self._settings.timeout_s)
        try:
            async with self._http.get().post(
                self._settings.events_url, json=event, timeout=timeout,
                # A redirect would replay the key to wherever it points; refuse instead.
                allow_redirects=False,
            ) as resp:
                status = resp.status
                body = await resp.text(errors="replace")
                retry_after = resp.headers.get("Retry-After")
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            err = classify_exception(_CHANNEL, exc)
            raise DeliveryError(
                _scrub(f"{err.reason} (service {service})", [key]),
                retryable=err.retryable, retry_after=err.retry_after,
            ) from exc
        if not 200 <= status < 300:
            err = classify_http(_CHANNEL, status, _scrub(_error_detail(body), [key]),
                                retry_after)
            log.debug("pagerduty: %s for incident %s refused: %s", action, inc.id, err.reason)
            raise DeliveryError(f"{err.reason} (service {service})", retryable=err.retryable,
                                retry_after=err.retry_after)
        returned = event["dedup_key"]
        try:
            data = json.loads(body)
            if isinstance(data, dict) and isinstance(data.get("dedup_key"), str):
                returned = data["dedup_key"]
        except ValueError:
            pass  # 2xx means accepted; the key we sent is the alert's key
        return Receipt(external_id=returned, detail=f"{action} on service {service}")

    async def find_sent(self, notification: Notification) -> Receipt | None:
        # The Events API cannot be read back; re-sending is harmless anyway, since PagerDuty
        # folds a repeated event into the same alert by dedup_key.
        return None

    async def close(self) -> None:
        await self._http.close()


CHANNEL = ChannelSpec(
    name="pagerduty", settings=PagerDutySettings, default_on=False, updatable=True,
    target_type=str, target_help="Service name (notifiers.pagerduty).",
    build=lambda s, ctx: PagerDutyNotifier(
        settings=s, watch_names=ctx.watch_names,
        public_url=ctx.links.base_url if ctx.links is not None else None),
    problem=not_configured("pagerduty", known="services", what="PagerDuty service"),
)
