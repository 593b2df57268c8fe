"""The protocol every channel implements, and the shared receipt.

A notifier sends one notification once and reports how it went. It never loops, sleeps or
retries: that is ``notifiers.retry``'s job, so every channel gets the same backoff rules.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from streams.records import Notification

__all__ = ["Notifier", "Receipt"]


@dataclass(frozen=True, kw_only=True)
class Receipt:
    external_id: str | None = None  # the channel's own id for what was sent (Slack ts, ...)
    detail: str = ""


@runtime_checkable
class Notifier(Protocol):
    channel: str

    async def send(self, notification: Notification) -> Receipt:
        """Deliver once; raise ``DeliveryError`` on failure."""
        ...

    async def find_sent(self, notification: Notification) -> Receipt | None:
        """If the channel can tell, the receipt of an earlier send of this notification.

        Called only when a previous attempt may have succeeded without being recorded
        (a worker killed mid-send), so it may be slow. ``None``: not sent, or cannot tell.
        """
        ...

    async def close(self) -> None: ...
