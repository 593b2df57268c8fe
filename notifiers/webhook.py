"""A generic signed JSON webhook: any tool that can receive a POST gets escucha's notifications.

Wire format (version 1), one POST per notification::

    POST <endpoint url>
    Content-Type: application/json
    X-Escucha-Timestamp: 1714564800
    X-Escucha-Signature: sha256=<hex HMAC-SHA256 of b"<timestamp>." + body, keyed by the secret>
    Idempotency-Key: <notification id>

    {"version": 1, "id": "...", "kind": "trigger", "event": "triggered", "level": 1,
     "created_at": "...", "status": "...", "in_reply_to": "...",
     "incident": {... Incident as JSON ...}, "digest": [...]   # digest only when non-empty}

``event`` says what happened, for a receiver that routes on it: ``triggered`` (the first alert
to this endpoint), ``escalated`` (a new level was notified, or, for ``kind: update``, the
endpoint of an earlier level is told so), ``acknowledged``, ``resolved``, ``updated`` (it grew
or got worse), ``reopened``, ``reminder`` or ``digest``. ``status`` is one line saying who
did it and how ("Acknowledged by ana via Slack at …", "Auto-resolved after 30 min without
signals at …"), absent for a first alert. ``in_reply_to`` is the ``id`` of the first
notification this endpoint received about the incident, absent on that first one.

Receivers should check the request with :func:`verify_webhook` (or the same few lines in
their language): recompute the HMAC over ``timestamp + "." + raw body``, compare in constant
time, and refuse timestamps older than a few minutes so a captured request cannot be replayed.
``Idempotency-Key`` is stable across retries of one notification: dedup on it, because escucha
delivers at least once.

Untrusted text: ``incident.summary`` and ``incident.samples[].text/author/url`` are what
strangers wrote, carried verbatim as JSON string data (JSON-escaped, ASCII only). A consumer
that renders them into HTML, Markdown, chat markup or a terminal must escape them for that
medium itself, and must not follow ``url`` values without checking their scheme.

An endpoint URL often embeds a token (Zapier, Make, Teams, Discord), so the URL is a secret as
much as the HMAC key: errors and logs say ``webhook <name>``, never the URL.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from notifiers.base import ChannelSpec, Receipt, not_configured
from notifiers.errors import NotifierError
from notifiers.followup import change_of, status_line
from notifiers.http import LazySession, configured, post, refused
from streams.core.records import Notification
from streams.i18n import EN, Lang
from streams.i18n.fields import ChannelLocale

__all__ = [
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "WebhookEndpoint",
    "WebhookNotifier",
    "WebhookSettings",
    "WebhookSignatureError",
    "build_body",
    "sign_webhook",
    "verify_webhook",
]

log = logging.getLogger(__name__)

VERSION = 1
TIMESTAMP_HEADER = "X-Escucha-Timestamp"
SIGNATURE_HEADER = "X-Escucha-Signature"
_MIN_SECRET = 16  # shorter HMAC keys are guessable offline from one captured request
_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_SIGNATURE = re.compile(r"sha256=[0-9a-f]{64}")
_HINTS = {
    401: "the receiver refused the signature: check the endpoint's secret on both sides",
    403: "the receiver refused the request: check the endpoint's secret and URL",
    404: "nothing at that URL: check the endpoint's URL",
    410: "the receiver says the hook is gone: update or remove the endpoint",
    413: "the receiver refused the body size",
}


class WebhookSignatureError(NotifierError):
    """A received webhook request is unsigned, tampered with, or too old (a replay)."""


class WebhookEndpoint(BaseModel):
    """One receiver of signed webhook POSTs."""

    # pydantic prints the raw input of a failed field ('https://…/<token>'); hide it. A model
    # that nests this one must set the same flag: the outermost model's config decides.
    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    url: SecretStr = Field(
        description="http(s) URL to POST to. Secret, because many hook URLs embed a token.",
    )
    secret: SecretStr = Field(
        description=f"HMAC-SHA256 key shared with the receiver (at least {_MIN_SECRET} "
        "characters); it signs every request in X-Escucha-Signature.",
    )
    timeout_s: float = Field(
        default=10, gt=0, le=300,
        description="Seconds for one request, connect to answer; retries are not counted.",
    )

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: SecretStr) -> SecretStr:
        try:
            parts = urlsplit(value.get_secret_value())
        except ValueError:
            raise ValueError("must be an http:// or https:// URL") from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http:// or https:// URL with a host")
        return value

    @field_validator("secret")
    @classmethod
    def _long_secret(cls, value: SecretStr) -> SecretStr:
        if len(value.get_secret_value()) < _MIN_SECRET:
            raise ValueError(f"must be at least {_MIN_SECRET} characters (use a random string)")
        return value


class WebhookSettings(ChannelLocale):
    """The webhook channel: named endpoints that notifications target by name."""

    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    endpoints: dict[str, WebhookEndpoint] = Field(
        default_factory=dict,
        description="Endpoint name (what routing rules and notifications name as the target) "
        "→ its URL, secret and timeout.",
    )


def build_body(notification: Notification, lang: Lang = EN) -> bytes:
    """The JSON body for a notification, exactly as signed and sent. Only the human line
    ``status`` follows ``lang`` (named in ``locale`` when one is configured); every machine
    field stays as it is, so receivers' parsers do not depend on a language."""
    data = notification.model_dump(mode="json")
    doc: dict[str, Any] = {
        "version": VERSION,
        "id": data["id"],
        "kind": data["kind"],
        "event": change_of(notification),
        "level": data["level"],
        "created_at": data["created_at"],
        "incident": data["incident"],
    }
    if status := status_line(notification, lang):
        doc["status"] = status
    if not lang.unset:
        doc["locale"] = lang.locale
    if notification.update_of and notification.kind != "digest":
        doc["in_reply_to"] = notification.update_of
    if notification.digest:
        doc["digest"] = data["digest"]
    # ASCII-only: lone surrogates in attacker text cannot break encoding, and every receiver
    # reads the same bytes whatever its default charset.
    return json.dumps(doc, ensure_ascii=True, separators=(",", ":")).encode("ascii")


def sign_webhook(body: bytes, *, secret: str, timestamp: int) -> str:
    """``sha256=<hex>``: HMAC-SHA256 over ``b"<timestamp>." + body`` keyed by ``secret``."""
    mac = hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def _header(headers: Mapping[str, str], name: str) -> str | None:
    # Plain dicts from other frameworks keep the sender's capitalisation; compare folded.
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    return None


def verify_webhook(
    body: bytes,
    headers: Mapping[str, str],
    *,
    secret: str,
    tolerance_s: int = 300,
    now: float | None = None,
) -> None:
    """Check a received request; raise :class:`WebhookSignatureError` saying what is wrong.

    ``body`` must be the raw bytes as received (before any JSON parsing), ``headers`` the
    request headers (any capitalisation). A timestamp further than ``tolerance_s`` from
    ``now`` (default: the current time) in either direction is refused, so a captured request
    cannot be replayed later. Receivers should also dedup on ``Idempotency-Key``.
    """
    stamp = _header(headers, TIMESTAMP_HEADER)
    signature = _header(headers, SIGNATURE_HEADER)
    if stamp is None or signature is None:
        raise WebhookSignatureError(
            f"unsigned request: {TIMESTAMP_HEADER} and {SIGNATURE_HEADER} are both required")
    stamp, signature = stamp.strip(), signature.strip()
    if not _TIMESTAMP.fullmatch(stamp):
        raise WebhookSignatureError(f"{TIMESTAMP_HEADER} is not unix seconds")
    if not _SIGNATURE.fullmatch(signature):
        raise WebhookSignatureError(f"{SIGNATURE_HEADER} is not 'sha256=<64 hex digits>'")
    expected = sign_webhook(body, secret=secret, timestamp=int(stamp))
    # Signature before age: a forged request learns nothing about the clock check.
    if not hmac.compare_digest(expected, signature):
        raise WebhookSignatureError("signature does not match: wrong secret or altered body")
    age = (time.time() if now is None else now) - int(stamp)
    if abs(age) > tolerance_s:
        when = f"{age:.0f}s old" if age > 0 else f"{-age:.0f}s in the future"
        raise WebhookSignatureError(
            f"timestamp is {when}, outside ±{tolerance_s}s: a replay, or clocks out of sync")


class WebhookNotifier:
    """POSTs each notification, signed, to the named endpoint it targets."""

    channel = "webhook"

    def __init__(
        self,
        *,
        settings: WebhookSettings,
        session: aiohttp.ClientSession | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._settings = settings
        self._http = LazySession(session)
        self._clock = clock

    async def send(self, notification: Notification) -> Receipt:
        endpoint, label = configured(self._settings.endpoints, notification.target,
                                     channel="webhook", kind="endpoint")
        body = build_body(notification, self._settings.lang_for(notification.target))
        stamp = int(self._clock())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": f"escucha-webhook/{VERSION}",
            TIMESTAMP_HEADER: str(stamp),
            SIGNATURE_HEADER: sign_webhook(
                body, secret=endpoint.secret.get_secret_value(), timestamp=stamp),
            "Idempotency-Key": notification.id,
        }
        log.debug("%s: %s %s for incident %s", label, notification.kind, notification.id,
                  notification.incident.id)
        # The answer's body is never read into an error: receivers such as Express echo the
        # request path ("Cannot POST /hooks/<token>") in their error pages.
        answer = await post(self._http.get(), endpoint.url.get_secret_value(), data=body,
                            headers=headers, label=label, timeout_s=endpoint.timeout_s,
                            read_body=False)
        if answer.ok:
            # Its own id, the receiver's Idempotency-Key: later notifications about the
            # incident name it in ``in_reply_to``.
            return Receipt(external_id=notification.id, detail=f"{label}: HTTP {answer.status}")
        raise refused(label, answer, hints=_HINTS, what=notification.id)

    async def find_sent(self, notification: Notification) -> Receipt | None:
        # A webhook cannot be read back; receivers dedup on Idempotency-Key instead.
        return None

    async def close(self) -> None:
        await self._http.close()


CHANNEL = ChannelSpec(
    name="webhook", settings=WebhookSettings, default_on=False, updatable=True,
    target_type=str, target_help="Endpoint name (notifiers.webhook).",
    build=lambda s, ctx: WebhookNotifier(settings=s),
    problem=not_configured("webhook", known="endpoints", what="webhook endpoint"),
)
