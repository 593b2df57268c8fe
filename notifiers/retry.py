"""Retries, backoff, Retry-After and deadlines: the only place a delivery is repeated.

Only ``DeliveryError(retryable=True)`` is retried. Anything else a notifier raises is a bug
or a permanent failure and goes straight to the caller.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from notifiers.base import Notifier, Receipt
from notifiers.errors import DeliveryError
from streams.core.records import Notification

__all__ = ["RetryPolicy", "send_with_retry"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    first_delay_s: float = 1.0
    max_delay_s: float = 30.0  # an outage is noticed within 30 s of its end
    multiplier: float = 2.0
    deadline_s: float = 600.0   # give up (and fall back) after this long
    max_retry_after_s: float = 300.0  # a Retry-After longer than this is not waited for

    def backoff(self, attempt: int, rng: random.Random) -> float:
        """Full-jitter exponential backoff for the n-th retry (1-based)."""
        # The exponent is capped: past ~1000 attempts a float power overflows.
        cap = min(self.max_delay_s,
                  self.first_delay_s * self.multiplier ** min(attempt - 1, 64))
        return rng.uniform(cap / 2, cap)


async def send_with_retry(
    notifier: Notifier,
    notification: Notification,
    *,
    policy: RetryPolicy,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    clock: Callable[[], float] = time.monotonic,
    rng: random.Random | None = None,
    on_retry: Callable[[DeliveryError], None] | None = None,
) -> Receipt:
    """Send, retrying transient failures until success or the deadline; raise the last error."""
    rng = rng or random.Random()
    started = clock()
    attempt = 0
    while True:
        attempt += 1
        try:
            return await notifier.send(notification)
        except DeliveryError as exc:
            if not exc.retryable:
                raise
            delay = exc.retry_after if exc.retry_after is not None else policy.backoff(attempt, rng)
            if exc.retry_after is not None and exc.retry_after > policy.max_retry_after_s:
                raise DeliveryError(
                    f"{exc.reason} (asked to wait {exc.retry_after:.0f}s, more than allowed)",
                    retryable=False,
                ) from exc
            if clock() - started + delay > policy.deadline_s:
                raise DeliveryError(
                    f"{exc.reason} (still failing after {attempt} attempts, "
                    f"{clock() - started:.0f}s)", retryable=False,
                ) from exc
            log.warning(
                "%s delivery of %s failed (%s); retry %d in %.1fs",
                notifier.channel, notification.id, exc.reason, attempt, delay,
            )
            if on_retry is not None:
                on_retry(exc)
            await sleep(delay)
