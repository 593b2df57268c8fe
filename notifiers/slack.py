"""Slack through the Web API (``chat.postMessage``), with Block Kit and an idempotency key.

Every message carries ``metadata.event_payload.key`` = the notification id. If a worker dies
between Slack's answer and our receipt, ``find_sent`` reads the channel history for that key
so the restarted worker does not post the same alert twice.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError, SlackRequestError
from slack_sdk.web.async_client import AsyncWebClient

from notifiers.base import Receipt
from notifiers.errors import DeliveryError
from notifiers.text import clean, safe_url, slack_escape, truncate
from streams.records import Notification

__all__ = ["SlackNotifier", "build_message"]

log = logging.getLogger(__name__)

EVENT_TYPE = "escucha_notification"
_RETRYABLE_ERRORS = {"ratelimited", "internal_error", "fatal_error", "service_unavailable",
                     "request_timeout"}
_SEVERITY_ICON = {"info": ":information_source:", "warning": ":warning:",
                  "critical": ":rotating_light:"}
_SECTION_LIMIT = 3000  # Slack rejects section text over 3000 characters
_HEADER_LIMIT = 150


def build_message(notification: Notification, *, watch_name: str) -> dict[str, Any]:
    """The ``chat.postMessage`` arguments (less channel) for a notification."""
    inc = notification.incident
    icon = _SEVERITY_ICON.get(inc.severity, "")
    title = truncate(clean(f"{inc.severity.upper()}: {watch_name} — {inc.detector}", limit=200),
                     _HEADER_LIMIT)
    summary = slack_escape(inc.summary, limit=1500)
    samples = []
    for sample in inc.samples[:5]:
        who = slack_escape(sample.author, limit=64)
        said = slack_escape(sample.text, limit=280).replace("\n", " ")
        url = safe_url(sample.url)
        link = f" <{url}|open>" if url else ""
        samples.append(f"• *@{who}* (priority {sample.priority}): {said}{link}")
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": title, "emoji": True}},
        {"type": "section",
         "text": {"type": "mrkdwn", "text": truncate(f"{icon} {summary}", _SECTION_LIMIT)}},
        {"type": "section", "fields": [
            {"type": "mrkdwn", "text": f"*Watch*\n{slack_escape(watch_name, limit=200)}"},
            {"type": "mrkdwn", "text": f"*Severity*\n{inc.severity}"},
            {"type": "mrkdwn", "text": f"*State*\n{inc.state}"},
            {"type": "mrkdwn", "text": f"*Level*\n{notification.level}"},
        ]},
    ]
    if samples:
        blocks.append({"type": "section", "text": {
            "type": "mrkdwn",
            "text": truncate("*What people say*\n" + "\n".join(samples), _SECTION_LIMIT)}})
    blocks.append({"type": "context", "elements": [{
        "type": "mrkdwn",
        "text": f"incident `{inc.id}` · opened {inc.opened_at:%Y-%m-%d %H:%M} UTC"}]})
    fallback = truncate(f"{inc.severity.upper()}: {slack_escape(watch_name, limit=200)} — "
                        f"{summary}", 3000)
    return {
        "text": fallback,
        "blocks": blocks,
        "unfurl_links": False,
        "unfurl_media": False,
        "metadata": {"event_type": EVENT_TYPE,
                     "event_payload": {"key": notification.id, "incident_id": inc.id}},
    }


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
    ) -> None:
        self._client = AsyncWebClient(
            token=token, base_url=base_url, timeout=timeout_s, retry_handlers=[]
        )
        self._target = channel
        self._watch_names = dict(watch_names or {})
        self._channel_ids: dict[str, str] = {}

    def _watch(self, notification: Notification) -> str:
        wid = notification.incident.watch_id
        return self._watch_names.get(wid, wid)

    async def send(self, notification: Notification) -> Receipt:
        message = build_message(notification, watch_name=self._watch(notification))
        channel = notification.target or self._target
        try:
            if notification.update_of:
                # One message per incident, kept current: a state change edits it in place.
                channel_id, _, ts = notification.update_of.rpartition("/")
                resp = await self._client.chat_update(
                    channel=channel_id or channel, ts=ts, text=message["text"],
                    blocks=message["blocks"], metadata=message["metadata"],
                )
            else:
                resp = await self._client.chat_postMessage(channel=channel, **message)
        except Exception as exc:  # slack_sdk raises several types; _classify sorts them
            raise _classify(exc) from exc
        channel_id = str(resp.get("channel") or channel)
        self._channel_ids[channel] = channel_id
        # "<channel id>/<ts>": everything needed to update the message later, even after a
        # restart, without looking the channel up again.
        return Receipt(external_id=f"{channel_id}/{resp.get('ts')}", detail=f"in {channel_id}")

    async def _resolve(self, channel: str) -> str | None:
        if channel in self._channel_ids:
            return self._channel_ids[channel]
        if channel[:1] in ("C", "G", "D") and not channel.startswith("#"):
            return channel
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
            payload: dict[str, Any] = (msg.get("metadata") or {}).get("event_payload") or {}
            if payload.get("key") == notification.id:
                return Receipt(external_id=f"{channel_id}/{msg.get('ts')}",
                               detail="found in history")
        return None

    async def close(self) -> None:
        session = getattr(self._client, "session", None)
        if session is not None and not session.closed:
            await session.close()
