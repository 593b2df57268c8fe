"""Slack through the Web API, with Block Kit, buttons, threads and an idempotency key.

One message per incident and channel, kept current: the deliver stage passes the
``"<channel id>/<ts>"`` of the incident's first message as ``notification.update_of``, and

* ``update``/``acknowledge``/``resolve`` (and a ``trigger`` for a known message) edit it in place
  with ``chat.update``: new state, new buttons, same ts;
* ``escalate``/``reminder`` post a short threaded reply (``thread_ts`` = that ts) and then edit
  the parent so it shows the new level;
* without ``update_of`` every kind posts a new top-level message, and a ``digest`` always does
  (it rolls up many incidents, so it must never overwrite one incident's message).

Every message carries ``metadata.event_payload.key`` = the notification id. If a worker dies
between Slack's answer and our receipt, ``find_sent`` reads it back, so the restarted worker does
not post the same alert twice; for a direct message to a user id it reads the history of the
bot's IM with that user, found with ``conversations.open``.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import aiohttp
from pydantic import ConfigDict, Field, SecretStr
from slack_sdk.errors import SlackApiError, SlackRequestError
from slack_sdk.web.async_client import AsyncWebClient

from notifiers.base import BuildContext, ChannelSpec, Receipt
from notifiers.errors import DeliveryError
from notifiers.playbook import playbook_lines
from notifiers.slack_actions import ACTION_ACK, ACTION_RESOLVE, ACTION_STEP
from notifiers.stories import story_line, summary_for, watch_label
from notifiers.text import clean, safe_url, slack_escape, truncate
from streams.core.records import Incident, Notification
from streams.i18n import DEFAULT as DEFAULT_LOCALE
from streams.i18n import Lang, label
from streams.i18n.fields import ChannelLocale
from streams.i18n.timeline import claim_of, say

__all__ = ["EVENT_TYPE", "SlackNotifier", "build_message", "build_thread_reply"]

log = logging.getLogger(__name__)

EVENT_TYPE = "escucha_notification"
_RETRYABLE_ERRORS = {"ratelimited", "internal_error", "fatal_error", "service_unavailable",
                     "request_timeout"}
_SEVERITY_ICON = {"info": ":information_source:", "warning": ":warning:",
                  "critical": ":rotating_light:"}
_SECTION_LIMIT = 3000  # Slack rejects section text over 3000 characters
_HEADER_LIMIT = 150
_MAX_BLOCKS = 50  # Slack rejects messages with more blocks
_NAME_LIMIT = 80
_DIGEST_LINES = 100  # more is unreadable in chat; the rest are counted, not shown
_DIGEST_LINE_LIMIT = 300
_REPLY_KINDS = frozenset({"escalate", "reminder"})
_USER_ID = re.compile(r"[UW][A-Z0-9]{2,}")  # a member, or an Enterprise Grid user


_Lang = Lang


_EN = _Lang(DEFAULT_LOCALE, "UTC")


def _state_phrase(inc: Incident, lang: _Lang = _EN) -> str | None:
    """Who owns the incident now, or None while nobody does."""
    _ = lang._
    if inc.state == "acknowledged":
        who = slack_escape(inc.acked_by or _("someone"), limit=_NAME_LIMIT)
        return (_("Acknowledged by {who} at {time}").format(who=who, time=lang.hm(inc.acked_at))
                if inc.acked_at else _("Acknowledged by {who}").format(who=who))
    if inc.state == "resolved":
        who = slack_escape(inc.resolved_by or _("someone"), limit=_NAME_LIMIT)
        return (_("Resolved by {who} at {time}").format(who=who, time=lang.hm(inc.resolved_at))
                if inc.resolved_at else _("Resolved by {who}").format(who=who))
    return None


def _state_line(inc: Incident, level: int, lang: _Lang) -> str:
    # First thing under the header: who owns it is what people scan a channel for.
    phrase = _state_phrase(inc, lang)
    if phrase is None:
        return ":red_circle: " + lang._("*Open*, not acknowledged yet (level {level})").format(
            level=level)
    icon = ":white_check_mark:" if inc.state == "resolved" else ":eyes:"
    return f"{icon} *{phrase}*"


def _buttons(inc: Incident, notification_id: str, lang: _Lang) -> dict[str, Any] | None:
    if inc.state == "resolved":
        return None
    _ = lang._
    resolve: dict[str, Any] = {
        "type": "button", "action_id": ACTION_RESOLVE, "style": "danger", "value": inc.id,
        "text": {"type": "plain_text", "text": _("Resolve"), "emoji": True},
        # Resolving stops escalation for everyone: one stray tap must not do that.
        "confirm": {
            "title": {"type": "plain_text", "text": _("Resolve this incident?")},
            "text": {"type": "plain_text",
                     "text": _("Resolving closes the incident and stops all escalation.")},
            "confirm": {"type": "plain_text", "text": _("Resolve")},
            "deny": {"type": "plain_text", "text": _("Cancel")},
            "style": "danger",
        },
    }
    elements: list[dict[str, Any]] = [resolve]
    if inc.state == "open":
        elements.insert(0, {
            "type": "button", "action_id": ACTION_ACK, "style": "primary", "value": inc.id,
            "text": {"type": "plain_text", "text": _("Acknowledge"), "emoji": True},
        })
    # Slack asks for a new block_id per iteration of an updated message, or clients may keep
    # showing the old buttons; the notification id changes with every update.
    block_id = "escucha_actions." + hashlib.sha256(notification_id.encode()).hexdigest()[:16]
    return {"type": "actions", "block_id": block_id, "elements": elements}


def _playbook_blocks(inc: Incident, notification_id: str, lang: _Lang) -> list[dict[str, Any]]:
    """The playbook as a checklist, with a "Done" button per open step (at most five)."""
    if inc.playbook is None:
        return []
    lines = playbook_lines(inc.playbook, inc.language)
    body = "\n".join(slack_escape(line, limit=700) for line in lines[1:])
    text = truncate(f"*{slack_escape(lines[0], limit=200)}*\n{body}", _SECTION_LIMIT)
    blocks: list[dict[str, Any]] = [{"type": "section", "text": {"type": "mrkdwn",
                                                                  "text": text}}]
    open_steps = [s for s in inc.playbook.steps if not inc.playbook.is_done(s.id)]
    if open_steps and inc.state != "resolved":
        block_id = "escucha_steps." + hashlib.sha256(notification_id.encode()).hexdigest()[:16]
        blocks.append({"type": "actions", "block_id": block_id, "elements": [
            {"type": "button", "action_id": f"{ACTION_STEP}.{i}",
             "value": f"{inc.id} {step.id}",
             "text": {"type": "plain_text", "emoji": False,
                      "text": truncate(clean(lang._("Done: {step}").format(step=step.text),
                                             limit=200), 75)}}
            for i, step in enumerate(open_steps[:5])]})
    return blocks


def _metadata(notification: Notification, **extra: str) -> dict[str, Any]:
    return {"event_type": EVENT_TYPE,
            "event_payload": {"key": notification.id,
                              "incident_id": notification.incident.id, **extra}}


def _message(notification: Notification, text: str, blocks: list[dict[str, Any]]
             ) -> dict[str, Any]:
    # No unfurling: a mention's link must never pull a stranger's preview into the channel.
    return {"text": truncate(text, 3000), "blocks": blocks, "unfurl_links": False,
            "unfurl_media": False, "metadata": _metadata(notification)}


def build_message(notification: Notification, *, watch_name: str,
                  locale: str = DEFAULT_LOCALE, timezone: str = "UTC") -> dict[str, Any]:
    """The ``chat.postMessage``/``chat.update`` arguments (less channel) for a notification,
    its own words in ``locale`` and its times in ``timezone``; mention text stays as written."""
    lang = _Lang(locale, timezone)
    _ = lang._
    if notification.kind == "digest":
        return _build_digest(notification, watch_name=watch_name, lang=lang)
    inc = notification.incident
    icon = _SEVERITY_ICON.get(inc.severity, "")
    severity = label(lang.tr, inc.severity)
    title = truncate(clean(f"{severity.upper()}: {watch_name} — {inc.detector}", limit=200),
                     _HEADER_LIMIT)
    summary = slack_escape(summary_for(inc, lang), limit=1500)  # escaped once rendered
    state = _state_line(inc, notification.level, lang)
    samples = []
    for sample in inc.samples[:5]:
        who = slack_escape(sample.author, limit=64)
        said = slack_escape(sample.text, limit=280).replace("\n", " ")
        url = safe_url(sample.url)
        link = f" <{url}|{lang.tr.pgettext('link', 'open')}>" if url else ""
        priority = _("priority {priority}").format(priority=sample.priority)
        # Who answers it, so a second responder does not: the claim made in escucha.
        said_claim = claim_of(sample.claim, sample.claim_phrase, lang.tr)
        claim = f" — _{slack_escape(said_claim, limit=120)}_" if said_claim else ""
        samples.append(f"• *@{who}* ({priority}): {said}{link}{claim}")
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": title, "emoji": True}},
        {"type": "section", "text": {"type": "mrkdwn", "text": state}},
        {"type": "section",
         "text": {"type": "mrkdwn", "text": truncate(f"{icon} {summary}", _SECTION_LIMIT)}},
        {"type": "section", "fields": [
            {"type": "mrkdwn",
             "text": f"*{_('Watch')}*\n{slack_escape(watch_name, limit=200)}"},
            {"type": "mrkdwn", "text": f"*{_('Severity')}*\n{severity}"},
            {"type": "mrkdwn", "text": f"*{_('State')}*\n{label(lang.tr, inc.state)}"},
            {"type": "mrkdwn", "text": f"*{_('Level')}*\n{notification.level}"},
        ]},
    ]
    story = story_line(inc, lang)
    if story is not None:
        blocks.append({"type": "section", "text": {
            "type": "mrkdwn", "text": slack_escape(story, limit=1000)}})
    if samples:
        blocks.append({"type": "section", "text": {
            "type": "mrkdwn",
            "text": truncate(f"*{_('What people say')}*\n" + "\n".join(samples),
                             _SECTION_LIMIT)}})
    actions = _buttons(inc, notification.id, lang)
    if actions is not None:
        blocks.append(actions)
    blocks += _playbook_blocks(inc, notification.id, lang)
    blocks.append({"type": "context", "elements": [{
        "type": "mrkdwn",
        "text": _("incident `{id}` · opened {time}").format(id=inc.id,
                                                           time=lang.at(inc.opened_at))}]})
    # The fallback is what phones and screen readers show: state first once someone owns it.
    phrase = _state_phrase(inc, lang)
    prefix = f"{phrase} — " if phrase else ""
    return _message(notification, f"{prefix}{severity.upper()}: "
                    f"{slack_escape(watch_name, limit=200)} — {summary}", blocks)


def _build_digest(notification: Notification, *, watch_name: str, lang: _Lang
                  ) -> dict[str, Any]:
    _ = lang._
    lines = [slack_escape(line, limit=_DIGEST_LINE_LIMIT).replace("\n", " ")
             for line in notification.digest[:_DIGEST_LINES]]
    hidden = len(notification.digest) - len(lines)
    count = len(notification.digest)
    heading = lang.tr.ngettext("Digest: {count} notice", "Digest: {count} notices",
                               count).format(count=count)
    title = truncate(clean(f"{heading} — {watch_name}", limit=200), _HEADER_LIMIT)
    sections: list[str] = []
    for line in lines:
        item = f"• {line}"
        if sections and len(sections[-1]) + 1 + len(item) <= _SECTION_LIMIT:
            sections[-1] += "\n" + item
        else:
            sections.append(truncate(item, _SECTION_LIMIT))
    # header + sections + context must stay within Slack's block limit.
    room = _MAX_BLOCKS - 2
    if len(sections) > room:
        hidden += sum(s.count("\n") + 1 for s in sections[room:])
        sections = sections[:room]
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": title, "emoji": True}},
        *({"type": "section", "text": {"type": "mrkdwn", "text": s}}
          for s in sections or ["_" + _("No notices.") + "_"]),
    ]
    more = (" · " + lang.tr.ngettext("{count} more not shown", "{count} more not shown",
                                     hidden).format(count=hidden)) if hidden > 0 else ""
    blocks.append({"type": "context", "elements": [{
        "type": "mrkdwn",
        "text": _("escucha digest · {time}").format(time=lang.at(notification.created_at))
        + more}]})
    return _message(notification, f"{heading} — " + "; ".join(lines), blocks)


def build_thread_reply(notification: Notification, *, locale: str = DEFAULT_LOCALE,
                       timezone: str = "UTC") -> dict[str, Any]:
    """The short threaded reply (less channel and thread_ts) for an escalation or reminder."""
    lang = _Lang(locale, timezone)
    _ = lang._
    inc = notification.incident
    if notification.kind == "escalate":
        # The escalate stage says why on the incident's timeline (a timeout, or a recurrence
        # that reopened it); show its latest word on it.
        why = next((say(e, locale=locale, timezone=timezone) for e in reversed(inc.timeline)
                    if e.kind in ("escalate", "reopen")), "")
        reason = (slack_escape(why, limit=300).replace("\n", " ")
                  or _("nobody acknowledged in time"))
        heading = _("Escalated to level {level}").format(level=notification.level)
        text = f":arrow_double_up: *{heading}*: {reason}"
    else:
        state = label(lang.tr, inc.state)
        if inc.state == "acknowledged":
            who = slack_escape(inc.acked_by or _("someone"), limit=80)
            detail = _("incident still {state}, acknowledged by {who} (level {level}), "
                       "opened {time}").format(state=state, who=who, level=notification.level,
                                               time=lang.hm(inc.opened_at))
        else:
            detail = _("incident still {state} (level {level}), opened {time}").format(
                state=state, level=notification.level, time=lang.hm(inc.opened_at))
        text = f":alarm_clock: *{_('Reminder')}*: {detail}"
    return _message(notification, text,
                    [{"type": "section", "text": {"type": "mrkdwn", "text": text}}])


def _classify(exc: Exception) -> DeliveryError:
    """Map what slack_sdk raised to retryable or not; never include the token."""
    if isinstance(exc, SlackApiError):
        status = exc.response.status_code
        data = exc.response.data if isinstance(exc.response.data, dict) else {}
        error = str(data.get("error") or f"HTTP {status}")
        retry_after: float | None = None
        header = exc.response.headers.get("Retry-After") or exc.response.headers.get(
            "retry-after")
        if header:
            try:
                retry_after = float(header)
            except ValueError:
                retry_after = None
        retryable = status == 429 or status >= 500 or error in _RETRYABLE_ERRORS
        return DeliveryError(f"slack: {error}", retryable=retryable, retry_after=retry_after)
    if isinstance(exc, aiohttp.ClientError | asyncio.TimeoutError | OSError | SlackRequestError):
        return DeliveryError(f"slack: {type(exc).__name__}: {exc}", retryable=True)
    return DeliveryError(f"slack: unexpected {type(exc).__name__}", retryable=False)


def _split(update_of: str | None) -> tuple[str, str] | None:
    """``"<channel id>/<ts>"`` as (channel id, ts); None when there is nothing to update."""
    if not update_of:
        return None
    channel_id, _, ts = update_of.rpartition("/")
    return (channel_id, ts) if ts else None


def _event_payload(message: dict[str, Any]) -> dict[str, Any]:
    payload = (message.get("metadata") or {}).get("event_payload")
    return payload if isinstance(payload, dict) else {}


class SlackNotifier:
    channel = "slack"

    def __init__(
        self,
        *,
        token: str,
        channel: str,
        base_url: str = "https://slack.com/api/",
        watch_names: Mapping[str, str] | None = None,
        timeout_s: int = 10,
        locale: str = DEFAULT_LOCALE,
        timezone: str = "UTC",
        target_locales: Mapping[str, str] | None = None,
    ) -> None:
        self._client = AsyncWebClient(
            token=token, base_url=base_url, timeout=timeout_s, retry_handlers=[]
        )
        self._target = channel
        self._watch_names = dict(watch_names or {})
        self._channel_ids: dict[str, str] = {}
        self._locale, self._timezone = locale, timezone
        self._target_locales = dict(target_locales or {})

    def _lang(self, notification: Notification) -> dict[str, str]:
        """The locale and zone for the target this notification goes to."""
        target = notification.target or self._target
        return {"locale": self._target_locales.get(target, self._locale),
                "timezone": self._timezone}

    def _watch(self, notification: Notification) -> str:
        return watch_label(notification.incident, self._watch_names)

    async def send(self, notification: Notification) -> Receipt:
        """Post, edit in place, or reply in the incident's thread (see the module docstring).

        The receipt's ``external_id`` is ``"<channel id>/<ts>"`` of the message *written*: the
        edited message for an update, the new reply for an escalation or reminder. The deliver
        stage keeps only the first receipt per incident and channel, so thread replies never
        become the message later updates edit.
        """
        message = build_message(notification, watch_name=self._watch(notification),
                                **self._lang(notification))
        channel = notification.target or self._target
        parent = None if notification.kind == "digest" else _split(notification.update_of)
        try:
            if parent is None:
                resp = await self._client.chat_postMessage(channel=channel, **message)
            elif notification.kind in _REPLY_KINDS:
                return await self._reply(notification, message, parent)
            else:
                resp = await self._client.chat_update(
                    channel=parent[0] or channel, ts=parent[1], text=message["text"],
                    blocks=message["blocks"], metadata=message["metadata"],
                )
        except Exception as exc:  # slack_sdk raises several types; _classify sorts them
            raise _classify(exc) from exc
        channel_id = str(resp.get("channel") or channel)
        self._channel_ids[channel] = channel_id
        # "<channel id>/<ts>": everything needed to update the message later, even after a
        # restart, without looking the channel up again.
        verb = "updated" if parent else "posted"
        return Receipt(external_id=f"{channel_id}/{resp.get('ts')}",
                       detail=f"{verb} in {channel_id}")

    async def _reply(self, notification: Notification, parent_message: dict[str, Any],
                     parent: tuple[str, str]) -> Receipt:
        channel_id, parent_ts = parent
        # The reply is the one side effect that must happen once: it goes first, and a
        # failure here raises so the retry stage tries again.
        resp = await self._client.chat_postMessage(
            channel=channel_id or notification.target or self._target, thread_ts=parent_ts,
            **build_thread_reply(notification, **self._lang(notification)))
        channel_id = str(resp.get("channel") or channel_id)
        reply_ts = str(resp.get("ts"))
        receipt = Receipt(external_id=f"{channel_id}/{reply_ts}",
                          detail=f"replied in {channel_id} thread {parent_ts}")
        # Then the parent shows the new level. Best effort: raising now would make the retry
        # stage post the reply twice, and the next update repaints the parent anyway. Its
        # metadata names the reply, which is how find_sent recognises this send after a crash.
        try:
            await self._client.chat_update(
                channel=channel_id, ts=parent_ts, text=parent_message["text"],
                blocks=parent_message["blocks"],
                metadata=_metadata(notification, reply_ts=reply_ts),
            )
        except Exception as exc:  # slack_sdk raises several types; _classify sorts them
            reason = _classify(exc).reason
            log.warning("slack: replied to %s but could not update it: %s", notification.id,
                        reason)
            return Receipt(external_id=receipt.external_id,
                           detail=f"{receipt.detail}; parent not updated: {reason}")
        return receipt

    async def _resolve(self, channel: str) -> str | None:
        """The conversation id a target's messages are in; None if there is none."""
        if channel in self._channel_ids:
            return self._channel_ids[channel]
        if channel[:1] in ("C", "G", "D") and not channel.startswith("#"):
            return channel
        if _USER_ID.fullmatch(channel):
            # A post to a user id lands in the bot's direct message with them (a D… id that
            # only Slack knows): open it (idempotent) to read its history after a restart.
            resp = await self._client.conversations_open(users=channel)
            im = str((resp.get("channel") or {}).get("id") or "")
            if not im:
                return None
            self._channel_ids[channel] = im
            return im
        name = channel.lstrip("#")
        cursor = None
        for _ in range(50):  # paginated; bounded so a huge workspace cannot stall delivery
            resp = await self._client.conversations_list(
                types="public_channel,private_channel", exclude_archived=True, limit=200,
                cursor=cursor,
            )
            conv: dict[str, Any]
            for conv in resp.get("channels", []):
                if conv.get("name") == name:
                    self._channel_ids[channel] = str(conv["id"])
                    return str(conv["id"])
            cursor = (resp.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                break
        return None

    async def find_sent(self, notification: Notification) -> Receipt | None:
        parent = None if notification.kind == "digest" else _split(notification.update_of)
        if parent is not None and parent[0]:
            return await self._find_in_parent(notification, parent)
        channel = notification.target or self._target
        try:
            channel_id = await self._resolve(channel)
            if channel_id is None:
                return None
            oldest = notification.created_at - timedelta(minutes=5)
            resp = await self._client.conversations_history(
                channel=channel_id, oldest=f"{oldest.timestamp():.6f}", limit=200,
                include_all_metadata=True,
            )
        except Exception as exc:  # cannot tell: the caller sends, which is the safe default
            log.warning("slack: cannot check history for %s: %s", notification.id,
                        _classify(exc).reason)
            return None
        msg: dict[str, Any]
        for msg in resp.get("messages", []):
            if _event_payload(msg).get("key") == notification.id:
                return Receipt(external_id=f"{channel_id}/{msg.get('ts')}",
                               detail="found in history")
        return None

    async def _find_in_parent(self, notification: Notification,
                              parent: tuple[str, str]) -> Receipt | None:
        # Edits and thread replies both leave this notification's key on the parent message,
        # which may be far older than any history window: read exactly that one message.
        channel_id, ts = parent
        try:
            resp = await self._client.conversations_history(
                channel=channel_id, latest=ts, inclusive=True, limit=1,
                include_all_metadata=True,
            )
        except Exception as exc:  # cannot tell: the caller sends, which is the safe default
            log.warning("slack: cannot read message for %s: %s", notification.id,
                        _classify(exc).reason)
            return None
        msg: dict[str, Any]
        for msg in resp.get("messages", []):
            payload = _event_payload(msg)
            if msg.get("ts") != ts or payload.get("key") != notification.id:
                continue
            if notification.kind in _REPLY_KINDS:
                reply_ts = payload.get("reply_ts")
                # A key without reply_ts: an earlier edit, not this reply; send it.
                return (Receipt(external_id=f"{channel_id}/{reply_ts}", detail="found in thread")
                        if reply_ts else None)
            return Receipt(external_id=f"{channel_id}/{ts}", detail="found in history")
        return None

    async def close(self) -> None:
        session = getattr(self._client, "session", None)
        if session is not None and not session.closed:
            await session.close()

class SlackSettings(ChannelLocale):
    # locale, timezone, target_locales: ChannelLocale, validated like every channel's.
    model_config = ConfigDict(frozen=True, extra="forbid")

    token: SecretStr | None = Field(default=None, description="Bot token (xoxb-…).")
    signing_secret: SecretStr | None = Field(
        default=None, description="Verifies Acknowledge/Resolve button clicks (app settings, "
        "'Signing Secret'); without it the buttons are refused.")
    channel: str = Field(default="#escucha-alerts", description="Channel for alerts.")
    base_url: str = Field(
        default="https://slack.com/api/", description="Web API base URL (tests point it at a fake)."
    )


def _build(section: SlackSettings, ctx: BuildContext) -> SlackNotifier | None:
    if section.token is None:
        return None
    return SlackNotifier(token=section.token.get_secret_value(), channel=section.channel,
                         base_url=section.base_url, watch_names=ctx.watch_names,
                         locale=section.locale, timezone=section.timezone,
                         target_locales=section.target_locales)


def _problem(section: SlackSettings | None, value: object) -> str | None:
    if section is None or section.token is None:
        return "uses slack but notifiers.slack.token is not set"
    return None


CHANNEL = ChannelSpec(
    name="slack", settings=SlackSettings, default_on=True, updatable=True,
    target_type=str, target_help="Channel ('#crisis', 'C…') or user (U…).",
    personal=True, personal_help="Slack user id (U…).",
    build=_build, problem=_problem,
    default_target=lambda s: s.channel if s.token is not None else None,
)
