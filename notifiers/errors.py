"""The one exception a notifier raises, and the one place failures are classified."""

from __future__ import annotations

import asyncio

from streams.core.http import parse_retry_after

__all__ = ["DeliveryError", "NotifierError", "classify_exception", "classify_http",
           "parse_retry_after"]

#: Statuses worth another try: the request may succeed later unchanged.
_RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


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


def classify_http(channel: str, status: int, detail: str = "",
                  retry_after: str | None = None) -> DeliveryError:
    """A failed HTTP answer as a DeliveryError: 408/425/429/5xx retryable, other 4xx not."""
    reason = f"{channel}: HTTP {status}" + (f" ({detail[:200]})" if detail else "")
    return DeliveryError(reason, retryable=status in _RETRYABLE_STATUS or status >= 500,
                         retry_after=parse_retry_after(retry_after))


def classify_exception(channel: str, exc: BaseException) -> DeliveryError:
    """A transport failure (refused, reset, timeout, DNS) is retryable; say which it was."""
    transient = isinstance(exc, OSError | asyncio.TimeoutError | ConnectionError)
    try:
        import aiohttp

        transient = transient or isinstance(exc, aiohttp.ClientError)
    except ImportError:  # pragma: no cover - aiohttp is a dependency
        pass
    return DeliveryError(f"{channel}: {type(exc).__name__}: {str(exc)[:200]}",
                         retryable=transient)
