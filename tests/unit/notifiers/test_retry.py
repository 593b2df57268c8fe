"""send_with_retry: Retry-After, jittered backoff, permanent errors and deadlines."""

from __future__ import annotations

import logging
import random
from datetime import UTC, datetime

import pytest

from notifiers.base import Notifier, Receipt
from notifiers.errors import DeliveryError
from notifiers.retry import RetryPolicy, send_with_retry
from streams.core.records import Incident, Notification

NOW = datetime(2024, 5, 1, 12, tzinfo=UTC)
NOTE = Notification(
    id="inc1:L1:scripted:#alerts:open:warning",
    incident=Incident(id="inc1", fingerprint="acme:negative_spike", watch_id="acme",
                      detector="negative_spike", severity="warning", opened_at=NOW,
                      updated_at=NOW, summary="spike"),
    level=1, channel="scripted", target="#alerts", created_at=NOW,
)


class ScriptedNotifier:
    """Raises the scripted errors in order, then delivers."""

    channel = "scripted"

    def __init__(self, *errors: DeliveryError | Exception) -> None:
        self.errors = list(errors)
        self.attempts = 0

    async def send(self, notification: Notification) -> Receipt:
        self.attempts += 1
        if self.errors:
            raise self.errors.pop(0)
        return Receipt(external_id=f"sent-{self.attempts}", detail=notification.id)

    async def find_sent(self, notification: Notification) -> Receipt | None:
        return None

    async def close(self) -> None:
        return None


class VirtualTime:
    """A clock that moves only when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def transient(retry_after: float | None = None) -> DeliveryError:
    return DeliveryError("service busy", retryable=True, retry_after=retry_after)


async def run(notifier: ScriptedNotifier, policy: RetryPolicy | None = None,
              time: VirtualTime | None = None, **kw: object) -> Receipt:
    time = time or VirtualTime()
    return await send_with_retry(
        notifier, NOTE, policy=policy or RetryPolicy(), sleep=time.sleep, clock=time.clock,
        rng=random.Random(0), **kw,  # type: ignore[arg-type]
    )


def test_scripted_notifier_implements_the_protocol() -> None:
    assert isinstance(ScriptedNotifier(), Notifier)


async def test_first_success_needs_no_sleep() -> None:
    time = VirtualTime()
    receipt = await run(ScriptedNotifier(), time=time)
    assert receipt.external_id == "sent-1"
    assert time.sleeps == []


async def test_retry_after_is_honoured_exactly() -> None:
    time = VirtualTime()
    notifier = ScriptedNotifier(transient(7), transient(0.25), transient(30))
    receipt = await run(notifier, time=time)
    assert receipt.external_id == "sent-4"
    assert time.sleeps == [7, 0.25, 30]


async def test_backoff_is_exponential_with_jitter_within_bounds() -> None:
    policy = RetryPolicy(first_delay_s=1, max_delay_s=20, multiplier=2, deadline_s=10_000)
    for seed in range(20):
        time = VirtualTime()
        notifier = ScriptedNotifier(*(transient() for _ in range(8)))
        await send_with_retry(notifier, NOTE, policy=policy, sleep=time.sleep,
                              clock=time.clock, rng=random.Random(seed))
        assert notifier.attempts == 9
        caps = [1, 2, 4, 8, 16, 20, 20, 20]
        assert len(time.sleeps) == len(caps)
        for delay, cap in zip(time.sleeps, caps, strict=True):
            assert cap / 2 <= delay <= cap
    # Jitter: different seeds do not all wait the same.
    firsts = set()
    for seed in range(5):
        time = VirtualTime()
        await send_with_retry(ScriptedNotifier(transient()), NOTE, policy=policy,
                              sleep=time.sleep, clock=time.clock, rng=random.Random(seed))
        firsts.add(time.sleeps[0])
    assert len(firsts) > 1


def test_backoff_function_bounds() -> None:
    policy = RetryPolicy(first_delay_s=0.5, max_delay_s=10, multiplier=3)
    rng = random.Random(1)
    for attempt in range(1, 12):
        cap = min(10, 0.5 * 3 ** (attempt - 1))
        for _ in range(50):
            assert cap / 2 <= policy.backoff(attempt, rng) <= cap


async def test_non_retryable_is_raised_at_once() -> None:
    time = VirtualTime()
    error = DeliveryError("channel_not_found", retryable=False)
    notifier = ScriptedNotifier(error)
    with pytest.raises(DeliveryError) as info:
        await run(notifier, time=time)
    assert info.value is error
    assert notifier.attempts == 1 and time.sleeps == []


async def test_other_exceptions_are_not_retried() -> None:
    time = VirtualTime()
    notifier = ScriptedNotifier(KeyError("bug"))
    with pytest.raises(KeyError):
        await run(notifier, time=time)
    assert notifier.attempts == 1 and time.sleeps == []


async def test_deadline_gives_up_as_not_retryable() -> None:
    policy = RetryPolicy(first_delay_s=10, max_delay_s=10, deadline_s=60)
    time = VirtualTime()
    notifier = ScriptedNotifier(*(transient() for _ in range(100)))
    with pytest.raises(DeliveryError) as info:
        await run(notifier, policy=policy, time=time)
    assert info.value.retryable is False
    assert "still failing" in info.value.reason and "service busy" in info.value.reason
    assert isinstance(info.value.__cause__, DeliveryError)
    assert sum(time.sleeps) <= 60  # never slept past the deadline
    assert notifier.attempts == len(time.sleeps) + 1
    assert notifier.attempts < 100


async def test_retry_after_that_would_cross_the_deadline_gives_up_without_waiting() -> None:
    policy = RetryPolicy(deadline_s=60, max_retry_after_s=300)
    time = VirtualTime()
    notifier = ScriptedNotifier(transient(50), transient(50))
    with pytest.raises(DeliveryError) as info:
        await run(notifier, policy=policy, time=time)
    assert info.value.retryable is False
    assert time.sleeps == [50]


async def test_too_long_retry_after_is_refused() -> None:
    policy = RetryPolicy(max_retry_after_s=120, deadline_s=10_000)
    time = VirtualTime()
    notifier = ScriptedNotifier(transient(121))
    with pytest.raises(DeliveryError) as info:
        await run(notifier, policy=policy, time=time)
    assert info.value.retryable is False
    assert "121s" in info.value.reason
    assert time.sleeps == [] and notifier.attempts == 1


async def test_on_retry_sees_every_transient_error(caplog: pytest.LogCaptureFixture) -> None:
    seen: list[DeliveryError] = []
    errors = [transient(1), transient(2)]
    caplog.set_level(logging.WARNING, logger="notifiers.retry")
    await run(ScriptedNotifier(*errors), on_retry=seen.append)
    assert seen == errors
    assert len([r for r in caplog.records if NOTE.id in r.getMessage()]) == 2


def test_backoff_does_not_overflow_after_thousands_of_attempts() -> None:
    import random as _random

    from notifiers.retry import RetryPolicy as _Policy

    policy = _Policy(first_delay_s=1.0, max_delay_s=30.0)
    assert 15.0 <= policy.backoff(5000, _random.Random(1)) <= 30.0
