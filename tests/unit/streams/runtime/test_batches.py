"""handle_batch: nothing acknowledged that was not handled or dead-lettered."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

import pytest

from streams.runtime.batches import BatchPolicy, handle_batch


class Log:
    def __init__(self) -> None:
        self.acked: list[int] = []
        self.rejected: list[tuple[int, str]] = []
        self.handled: list[list[int]] = []
        self.slept: list[float] = []
        self.retries = 0

    async def ack(self, event: int) -> None:
        self.acked.append(event)

    async def reject(self, event: int, reason: str) -> None:
        self.rejected.append((event, reason))

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)

    def retried(self) -> None:
        self.retries += 1


Handler = Callable[[Sequence[int]], Awaitable[None]]


def failing(log: Log, *, poison: frozenset[int] = frozenset(), times: int = 0) -> Handler:
    """A handler that raises on any batch holding a poison event, and on the first
    ``times`` calls whatever it holds."""
    calls = [0]

    async def handle(events: Sequence[int]) -> None:
        calls[0] += 1
        log.handled.append(list(events))
        if calls[0] <= times:
            raise ConnectionError("producer: broker not available")
        bad = poison & set(events)
        if bad:
            raise ValueError(f"model cannot take {sorted(bad)}")
    return handle


async def run(log: Log, events: list[int], handle: Handler, policy: BatchPolicy) -> int:
    return await handle_batch(events, handle, ack=log.ack, reject=log.reject, stage="t",
                              policy=policy, on_retry=log.retried, sleep=log.sleep)


async def test_a_batch_that_succeeds_is_acked_whole() -> None:
    log = Log()
    assert await run(log, [1, 2, 3], failing(log), BatchPolicy()) == 0
    assert log.acked == [1, 2, 3] and log.handled == [[1, 2, 3]] and log.retries == 0


async def test_a_send_that_fails_once_is_retried_and_nothing_is_lost() -> None:
    log = Log()
    assert await run(log, [1, 2, 3], failing(log, times=1), BatchPolicy(3, 0.5)) == 0
    assert log.handled == [[1, 2, 3], [1, 2, 3]]
    assert log.acked == [1, 2, 3] and log.rejected == []
    assert log.slept == [0.5] and log.retries == 1


async def test_a_poison_record_is_dead_lettered_after_n_attempts_and_the_rest_go_on() -> None:
    log = Log()
    handler = failing(log, poison=frozenset({3}))
    assert await run(log, [1, 2, 3, 4], handler, BatchPolicy(3, 1.0)) == 1
    # Three tries of the batch, with doubling waits, then each record alone: 3 fails 3 times.
    assert log.handled[:3] == [[1, 2, 3, 4]] * 3
    assert log.handled[3:] == [[1], [2], [3], [3], [3], [4]]
    assert log.slept == [1.0, 2.0, 1.0, 2.0]
    assert [e for e, _ in log.rejected] == [3]
    reason = log.rejected[0][1]
    assert "3 times" in reason and "ValueError" in reason and "[3]" in reason
    assert sorted(log.acked) == [1, 2, 3, 4]  # the partition moves on


async def test_attempts_is_the_number_of_tries() -> None:
    log = Log()
    await run(log, [7], failing(log, poison=frozenset({7})), BatchPolicy(attempts=1))
    assert log.handled == [[7]] and log.slept == []
    assert [e for e, _ in log.rejected] == [7] and log.acked == [7]
    log = Log()
    await run(log, [7], failing(log, poison=frozenset({7})), BatchPolicy(attempts=4, backoff_s=0.1))
    assert len(log.handled) == 4 and log.slept == [0.1, 0.2, 0.4]


async def test_a_stop_during_the_handler_acknowledges_nothing() -> None:
    log = Log()
    started = asyncio.Event()

    async def slow(events: Sequence[int]) -> None:
        started.set()
        await asyncio.sleep(60)

    task = asyncio.create_task(run(log, [1, 2], slow, BatchPolicy()))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert log.acked == [] and log.rejected == []


async def test_a_dead_letter_that_cannot_be_sent_acknowledges_nothing_more() -> None:
    log = Log()

    async def broken(event: int, reason: str) -> None:
        raise ConnectionError("dlq unreachable")

    with pytest.raises(ConnectionError):
        await handle_batch([5], failing(log, poison=frozenset({5})), ack=log.ack, reject=broken,
                           stage="t", policy=BatchPolicy(1), sleep=log.sleep)
    assert log.acked == []


def test_the_policy_refuses_nonsense() -> None:
    with pytest.raises(ValueError):
        BatchPolicy(attempts=0)
    with pytest.raises(ValueError):
        BatchPolicy(backoff_s=-1)
