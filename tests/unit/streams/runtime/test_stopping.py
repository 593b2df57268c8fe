"""A stopping worker finishes the work in hand (bounded) before its agent stops."""

from __future__ import annotations

import asyncio

import pytest

from streams.runtime.stopping import finish_in_hand


async def test_a_cancelled_agent_lets_its_work_finish_then_stops() -> None:
    done: list[str] = []
    started = asyncio.Event()

    async def batch() -> str:
        started.set()
        await asyncio.sleep(0.3)  # the model call and the sends
        done.append("sent")
        return "ok"

    agent = asyncio.ensure_future(finish_in_hand(batch(), what="a batch"))
    await started.wait()
    agent.cancel()  # what Faust does to an agent when the worker stops
    with pytest.raises(asyncio.CancelledError):
        await agent
    assert done == ["sent"]


async def test_work_that_does_not_finish_in_time_is_cut_and_the_stop_goes_on() -> None:
    cut = asyncio.Event()

    async def stuck() -> None:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cut.set()
            raise

    agent = asyncio.ensure_future(finish_in_hand(stuck(), what="a delivery", drain_s=0.2))
    await asyncio.sleep(0)
    agent.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(agent, timeout=5)
    assert cut.is_set()


async def test_without_a_stop_it_is_just_the_work() -> None:
    async def work() -> int:
        return 7

    assert await finish_in_hand(work(), what="x") == 7

    async def broken() -> None:
        raise ValueError("bad record")

    with pytest.raises(ValueError, match="bad record"):
        await finish_in_hand(broken(), what="x")
