"""Slack file uploads with the current three-step flow, for reports' charts.

1. ``files.getUploadURLExternal`` (filename, length) answers an ``upload_url`` and a
   ``file_id`` for each file;
2. the bytes are POSTed to that ``upload_url`` (pre-signed: no token goes with them, so the
   bot token never reaches the upload host);
3. ``files.completeUploadExternal`` with ``files=[{id, title}]``, ``channel_id`` and
   ``initial_comment`` shares them all in one message.

``files.upload`` (the old single call) is retired by Slack. The Web API calls go through
slack_sdk like notifiers/slack.py, and failures are classified the same way: a
:class:`DeliveryError` saying whether another try can help. The caller (the report scheduler)
decides whether and when to retry.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError, SlackRequestError
from slack_sdk.web.async_client import AsyncWebClient

from notifiers.base import Receipt
from notifiers.errors import DeliveryError, classify_exception, classify_http
from notifiers.text import clean, truncate

__all__ = ["SlackFile", "SlackFileUploader"]

_RETRYABLE_ERRORS = {"ratelimited", "internal_error", "fatal_error", "service_unavailable",
                     "request_timeout"}
_COMMENT_LIMIT = 3900
_MAX_FILES = 10  # completeUploadExternal shares at most 10 files in one message


@dataclass(frozen=True)
class SlackFile:
    filename: str
    content: bytes
    title: str
    alt_text: str | None = None


def _classify(exc: Exception) -> DeliveryError:
    """What slack_sdk raised, as retryable or not; the token never appears."""
    if isinstance(exc, SlackApiError):
        status = exc.response.status_code
        data = exc.response.data if isinstance(exc.response.data, dict) else {}
        error = str(data.get("error") or f"HTTP {status}")
        header = exc.response.headers.get("Retry-After") or exc.response.headers.get(
            "retry-after")
        try:
            retry_after = float(header) if header else None
        except ValueError:
            retry_after = None
        hint = {"missing_scope": " (the bot token needs files:write)",
                "not_in_channel": " (invite the bot to the channel)",
                "channel_not_found": " (check the report's slack channel)"}.get(error, "")
        return DeliveryError(f"slack: {error}{hint}",
                             retryable=status == 429 or status >= 500
                             or error in _RETRYABLE_ERRORS, retry_after=retry_after)
    if isinstance(exc, aiohttp.ClientError | asyncio.TimeoutError | OSError | SlackRequestError):
        return DeliveryError(f"slack: {type(exc).__name__}: {exc}", retryable=True)
    return DeliveryError(f"slack: unexpected {type(exc).__name__}", retryable=False)


class SlackFileUploader:
    """Uploads files into one message of a channel (name or id)."""

    channel = "slack"

    def __init__(self, *, token: str, base_url: str = "https://slack.com/api/",
                 timeout_s: int = 30) -> None:
        self._client = AsyncWebClient(token=token, base_url=base_url, timeout=timeout_s,
                                      retry_handlers=[])
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._channel_ids: dict[str, str] = {}

    async def channel_id(self, channel: str) -> str:
        """completeUploadExternal takes ids only: look a '#name' up (paginated, bounded)."""
        if channel in self._channel_ids:
            return self._channel_ids[channel]
        if channel[:1] in ("C", "G", "D") and not channel.startswith("#"):
            return channel
        name, cursor = channel.lstrip("#"), None
        try:
            for _ in range(50):
                resp = await self._client.conversations_list(
                    types="public_channel,private_channel", exclude_archived=True, limit=200,
                    cursor=cursor)
                conv: dict[str, Any]
                for conv in resp.get("channels", []):
                    if conv.get("name") == name:
                        self._channel_ids[channel] = str(conv["id"])
                        return str(conv["id"])
                cursor = (resp.get("response_metadata") or {}).get("next_cursor")
                if not cursor:
                    break
        except Exception as exc:  # slack_sdk raises several types; _classify sorts them
            raise _classify(exc) from exc
        raise DeliveryError(f"slack: no channel named {clean(channel, limit=80)!r} is visible "
                            "to the bot; invite it or use the channel id", retryable=False)

    async def _put(self, session: aiohttp.ClientSession, url: str, file: SlackFile) -> None:
        try:
            async with session.post(url, data=file.content, headers={
                    "Content-Type": "application/octet-stream"}) as resp:
                if resp.status != 200:
                    detail = clean(await resp.text(errors="replace"), limit=200)
                    raise classify_http("slack upload", resp.status, detail,
                                        resp.headers.get("Retry-After"))
        except DeliveryError:
            raise
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise classify_exception("slack upload", exc) from exc

    async def upload(self, channel: str, files: Sequence[SlackFile], *,
                     comment: str) -> Receipt:
        """Share ``files`` in ``channel`` as one message introduced by ``comment`` (mrkdwn,
        already escaped by the caller). The receipt's external id is ``'<channel id>/<file
        ids>'``."""
        if not files or len(files) > _MAX_FILES:
            raise DeliveryError(f"slack: between 1 and {_MAX_FILES} files per message, got "
                                f"{len(files)}", retryable=False)
        channel_id = await self.channel_id(channel)
        ids: list[dict[str, str]] = []
        try:
            async with aiohttp.ClientSession(timeout=self._timeout) as session:
                for f in files:
                    got = await self._client.files_getUploadURLExternal(
                        filename=f.filename, length=len(f.content), alt_txt=f.alt_text)
                    url, file_id = got.get("upload_url"), got.get("file_id")
                    if not isinstance(url, str) or not isinstance(file_id, str):
                        raise DeliveryError("slack: getUploadURLExternal answered no "
                                            "upload_url/file_id", retryable=True)
                    await self._put(session, url, f)
                    ids.append({"id": file_id, "title": clean(f.title, limit=250)})
            done = await self._client.files_completeUploadExternal(
                files=ids, channel_id=channel_id,  # type: ignore[arg-type]
                initial_comment=truncate(comment, _COMMENT_LIMIT))
        except DeliveryError:
            raise
        except Exception as exc:  # slack_sdk raises several types; _classify sorts them
            raise _classify(exc) from exc
        shared = [str(f.get("id")) for f in done.get("files") or [] if isinstance(f, dict)]
        return Receipt(external_id=f"{channel_id}/{','.join(shared or [i['id'] for i in ids])}",
                       detail=f"uploaded {len(ids)} file(s) to {channel_id}")

    async def close(self) -> None:
        return None  # a session per upload: nothing held open
