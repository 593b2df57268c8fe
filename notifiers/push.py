"""Phone push through ntfy (https://docs.ntfy.sh/publish/): a JSON publish to the server root.

The notification's target is the ntfy topic. On a public server such as ntfy.sh the topic name
is the only thing between strangers and the alert (and its Acknowledge button), so use a
server of your own, or an access token and a reserved topic. The token is a credential: it goes
only into the ``Authorization`` header, never into an error, a log line or a receipt.

The Acknowledge button is an ntfy ``http`` action: the phone POSTs to the signed link itself,
which acknowledges without opening a browser (a GET of the same link only shows a page).

One notification per incident on each phone: every message about an incident carries the same
ntfy sequence id (``sequence_id``, ntfy 2.16+; https://docs.ntfy.sh/publish/#updating-deleting-
notifications), so an acknowledgement, an escalation or the resolution *replaces* the alert on
the lock screen instead of adding another. The id is derived from the incident, returned as
the receipt's ``external_id`` and, once the deliver stage hands it back as ``update_of``,
reused as given (an alert sent before this existed is replaced through its message id). A
replacement of something already seen buzzes less: priority 3 once acknowledged, 2 (silent)
once resolved. Older servers ignore the field and show the follow-up as a new notification.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode, urlsplit

import aiohttp
from pydantic import ConfigDict, Field, SecretStr, field_validator

from notifiers.base import ChannelSpec, Receipt, not_configured
from notifiers.errors import DeliveryError, classify_exception, classify_http
from notifiers.followup import change_of, status_line
from notifiers.http import LazySession, read_bounded
from notifiers.playbook import playbook_lines
from notifiers.stories import summary_for, watch_label
from notifiers.text import clean, console_safe, safe_url
from streams.core.links import LinkSigner
from streams.core.records import Notification
from streams.i18n import EN, Lang
from streams.i18n.fields import ChannelLocale

__all__ = ["NtfySettings", "PushNotifier", "build_payload", "sequence_id"]

log = logging.getLogger(__name__)

#: What ntfy accepts as a topic name (docs: "Picking a topic").
_TOPIC = re.compile(r"[-_A-Za-z0-9]{1,64}")
_PRIORITY = {"critical": 5, "warning": 4, "info": 3}
#: A replacement says "someone has it" or "it is over": it must not wake anyone again.
_STATE_PRIORITY = {"acknowledged": 3, "resolved": 2}
#: What ntfy accepts as a sequence id, and what escucha ever sends as one.
_SEQUENCE = re.compile(r"[-_A-Za-z0-9]{1,64}")
_TAGS = {"critical": "rotating_light", "warning": "warning", "info": "information_source"}
_STATE_TAGS = {"acknowledged": "eyes", "resolved": "white_check_mark"}
# ntfy turns a message over 4096 bytes into an attachment (or refuses it); stay well below.
_MESSAGE_BYTES = 3900
_TITLE_CHARS = 200
_SUMMARY_CHARS = 1000
_SAMPLE_CHARS = 200
_MAX_SAMPLES = 3


class NtfySettings(ChannelLocale):
    """The ntfy server to publish to; topics come from each notification's target."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    base_url: str = Field(default="https://ntfy.sh",
                          description="Root URL of the ntfy server; JSON is POSTed to it.")
    token: SecretStr | None = Field(
        default=None, description="ntfy access token (tk_…), sent as 'Authorization: Bearer'. "
        "Unset: publish anonymously, which only open topics accept.")
    timeout_s: float = Field(default=10, gt=0, le=300,
                             description="Seconds for one publish, connect to answer.")

    @field_validator("base_url")
    @classmethod
    def _plain_http_url(cls, value: str) -> str:
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("expected the server's root URL, e.g. 'https://ntfy.example.com'")
        if parts.username or parts.password:
            # A URL gets logged and echoed in errors; a credential belongs in `token`.
            raise ValueError("put credentials in notifiers.push.token, not in the URL")
        if parts.query or parts.fragment:
            raise ValueError("the root URL takes no query or fragment")
        return value.strip().rstrip("/")


def _fit_bytes(text: str, limit: int) -> str:
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    # Cut on a character boundary, leaving room for the 3-byte ellipsis.
    return data[: limit - 3].decode("utf-8", "ignore") + "…"


def _title(notification: Notification, watch_name: str, lang: Lang) -> str:
    _ = lang._
    inc = notification.incident
    if inc.state == "resolved":
        status = (_("resolved by {who}").format(who=inc.resolved_by) if inc.resolved_by
                  else _("resolved"))
    elif inc.state == "acknowledged":
        status = (_("acknowledged by {who}").format(who=inc.acked_by) if inc.acked_by
                  else _("acknowledged"))
    elif notification.kind == "escalate" or change_of(notification) == "escalated":
        # Also the update telling an earlier level's phone that the next level was paged.
        status = _("escalated, level {level}").format(level=notification.level)
    elif notification.kind == "reminder":
        status = _("not acknowledged yet")
    else:
        status = ""
    text = f"[{lang.label(inc.severity).upper()}] {watch_name}: {inc.detector.replace('_', ' ')}"
    return console_safe(text + (f" — {status}" if status else ""), limit=_TITLE_CHARS)


def sequence_id(notification: Notification) -> str | None:
    """The ntfy sequence id that makes every message about an incident replace the last.

    ``update_of`` (the first message's receipt) when it is one; else derived from the incident
    id, so a follow-up whose first receipt was lost still replaces the right notification. A
    digest rolls up several incidents and replaces none.
    """
    if notification.kind == "digest":
        return None
    given = notification.update_of
    if given and _SEQUENCE.fullmatch(given):
        return given
    digest = hashlib.sha256(notification.incident.id.encode("utf-8", "replace")).hexdigest()
    return f"escucha-{digest[:32]}"


def _message(notification: Notification, watch_name: str, lang: Lang) -> str:
    inc = notification.incident
    change = status_line(notification, lang)
    # What changed comes first: a replaced notification shows its first lines.
    lines = [console_safe(change, limit=300)] if change else []
    lines += [clean(summary_for(inc, lang), limit=_SUMMARY_CHARS),
             console_safe(lang._("Watch: {watch} · state: {state} · level {level}").format(
                 watch=watch_name, state=lang.label(inc.state), level=notification.level),
                 limit=300)]
    if notification.kind == "digest":
        lines += [f"• {console_safe(d, limit=_SAMPLE_CHARS)}" for d in notification.digest[:10]]
    if inc.playbook is not None:
        # The plan before the samples: on a lock screen the first lines are what is read.
        book = playbook_lines(inc.playbook, inc.language, templates=0)
        lines += [console_safe(line, limit=_SAMPLE_CHARS) for line in book[:2]]
        lines += [console_safe(line, limit=_SAMPLE_CHARS) for line in book
                  if line.startswith("[ ]")][:3]
    for sample in inc.samples[:_MAX_SAMPLES]:
        lines.append(f"• @{console_safe(sample.author, limit=64)}: "
                     f"{console_safe(sample.text, limit=_SAMPLE_CHARS)}")
    return _fit_bytes("\n".join(lines), _MESSAGE_BYTES)


def build_payload(
    notification: Notification, *, topic: str, watch_name: str, links: LinkSigner | None,
    lang: Lang = EN,
) -> dict[str, Any]:
    """The JSON body of ntfy's publish-as-JSON for a notification, its words in ``lang``."""
    inc = notification.incident
    tags = [_TAGS[inc.severity]]
    if inc.state in _STATE_TAGS:
        tags.append(_STATE_TAGS[inc.state])
    payload: dict[str, Any] = {
        "topic": topic,
        "title": _title(notification, watch_name, lang),
        "message": _message(notification, watch_name, lang),
        "priority": _STATE_PRIORITY.get(inc.state, _PRIORITY[inc.severity]),
        "tags": tags,
    }
    sequence = sequence_id(notification)
    if sequence is not None:
        payload["sequence_id"] = sequence
    click = safe_url(inc.samples[0].url) if inc.samples else None
    if click:
        payload["click"] = click
    if links is not None and inc.state == "open":
        ack = safe_url(links.url(inc.id, "ack"))
        if ack:
            # The form field names who acted, as the link page's form does: a personal
            # topic identifies the person, so the ack is not just "link".
            payload["actions"] = [{
                "action": "http", "label": lang._("Acknowledge"), "url": ack, "method": "POST",
                "headers": {"Content-Type": "application/x-www-form-urlencoded"},
                "body": urlencode({"by": f"ntfy:{topic}"}), "clear": True}]
        else:
            log.warning("push: ack link for %s is not a plain http(s) URL; check "
                        "api.public_url", inc.id)
    if links is not None and inc.playbook is not None:
        page = safe_url(f"{links.base_url.rstrip('/')}/console/incidents/{inc.id}#playbook")
        if page:  # the whole plan, templates included, is one tap away in the console
            payload.setdefault("actions", []).append(
                {"action": "view", "label": lang._("Playbook"), "url": page})
    return payload


def _error_detail(body: bytes) -> str:
    """ntfy's ``{"code", "http", "error"}`` answer as one short line."""
    try:
        data = json.loads(body)
    except ValueError:
        return console_safe(body.decode("utf-8", "replace"), limit=120)
    if isinstance(data, dict) and isinstance(data.get("error"), str):
        code = data.get("code")
        return console_safe(f"{data['error']}" + (f" (code {code})" if code else ""), limit=160)
    return ""


class PushNotifier:
    channel = "push"

    def __init__(
        self,
        *,
        settings: NtfySettings,
        links: LinkSigner | None,
        watch_names: Mapping[str, str] | None = None,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        self._settings = settings
        self._links = links
        self._watch_names = dict(watch_names or {})
        self._http = LazySession(session)
        self._url = settings.base_url + "/"  # JSON publishing goes to the root, not the topic

    def _secrets(self) -> list[str]:
        token = self._settings.token
        return [token.get_secret_value()] if token is not None else []

    def render(self, notification: Notification) -> dict[str, Any]:
        """The JSON that ``send`` would publish (also for previews and tests)."""
        inc = notification.incident
        return build_payload(notification, topic=notification.target.strip(),
                             watch_name=watch_label(inc, self._watch_names),
                             links=self._links,
                             lang=self._settings.lang_for(notification.target))

    async def send(self, notification: Notification) -> Receipt:
        topic = notification.target.strip()
        if not _TOPIC.fullmatch(topic):
            raise DeliveryError(
                f"push: {console_safe(topic, limit=80)!r} is not an ntfy topic: use 1-64 "
                "letters, digits, '-' or '_'; fix the escalation target", retryable=False)
        payload = self.render(notification)
        headers = {"Accept": "application/json"}
        if self._settings.token is not None:
            headers["Authorization"] = f"Bearer {self._settings.token.get_secret_value()}"
        timeout = aiohttp.ClientTimeout(total=self._settings.timeout_s)
        try:
            async with self._http.get().post(
                self._url, json=payload, headers=headers, timeout=timeout,
                # A redirect would replay the token to wherever it points; refuse instead.
                allow_redirects=False,
            ) as resp:
                status = resp.status
                body = await read_bounded(resp)
                retry_after = resp.headers.get("Retry-After")
        except Exception as exc:  # transport failures; classify_exception sorts them
            raise _scrub(classify_exception(self.channel, exc), self._secrets()) from exc
        if not 200 <= status < 300:
            detail = _error_detail(body)
            if status in (401, 403):
                detail += "; check notifiers.push.token and the topic's access rights"
            elif 300 <= status < 400:
                detail += "; redirected: set notifiers.push.base_url to the final URL"
            err = _scrub(classify_http(self.channel, status, detail, retry_after),
                         self._secrets())
            log.debug("push: %s to %s refused: %s", notification.id, topic, err.reason)
            raise err
        # The sequence id is what later messages about the incident must carry; a server that
        # predates sequences answers without one, and ours still names the incident.
        external_id: str | None = payload.get("sequence_id")
        try:
            data = json.loads(body)
        except ValueError:
            data = None  # 200 means published; the receipt keeps the id we sent
        if isinstance(data, dict):
            answered = data.get("sequence_id") or (None if external_id else data.get("id"))
            if isinstance(answered, str) and _SEQUENCE.fullmatch(answered):
                external_id = answered
        verb = "replaced on" if notification.update_of else "published to"
        log.debug("push: %s %s %s as %s", notification.id, verb, topic, external_id)
        return Receipt(external_id=external_id, detail=f"{verb} ntfy topic {topic}")

    async def find_sent(self, notification: Notification) -> Receipt | None:
        # Polling the topic's cache would need read access the publisher may lack, and an
        # ntfy message carries no field to hold our idempotency key.
        return None

    async def close(self) -> None:
        await self._http.close()


def _scrub(error: DeliveryError, secrets: list[str]) -> DeliveryError:
    reason = error.reason
    for secret in secrets:
        if secret:
            reason = reason.replace(secret, "***")
    if reason == error.reason:
        return error
    return DeliveryError(reason, retryable=error.retryable, retry_after=error.retry_after)

CHANNEL = ChannelSpec(
    name="push", settings=NtfySettings, default_on=False, updatable=True,
    target_type=str, target_help="ntfy topic.", personal=True,
    personal_help="Personal ntfy topic.",
    build=lambda s, ctx: PushNotifier(settings=s, links=ctx.links, watch_names=ctx.watch_names),
    problem=not_configured("push"),
)
