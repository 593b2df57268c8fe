"""The one exception a notifier raises, and how to read it."""

from __future__ import annotations

__all__ = ["DeliveryError", "NotifierError"]


class NotifierError(Exception):
    """Base of every notifier exception."""


class DeliveryError(NotifierError):
    """A delivery failed.

    ``retryable`` says whether trying again can help (rate limit, 5xx, timeout) or not
    (unknown channel, bad token, message rejected); ``retry_after`` is the delay in seconds
    the service asked for, if it asked. The reason must never contain a secret.
    """

    def __init__(self, reason: str, *, retryable: bool, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable
        self.retry_after = retry_after
