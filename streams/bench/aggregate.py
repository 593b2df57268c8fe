"""``escucha bench aggregate``: the aggregate stage's flush ticks during a back-fill.

Days of simulator history (a few watches, ``created_at`` spread over ``days``) are fed to the
aggregate stage (agents/aggregate/stage.py) the way one worker meets them in a replay: one
second of classifier output (``rate`` mentions) per 1 s flush tick, with, once, the backlog of
``pause_s`` seconds arriving at once (the classifier's output after any stall upstream: a
rebalance, a slow fetch). Each tick's flush is timed, building snapshots and serialising them
to JSON as the worker does, but with no producer and no other task on the event loop: in a
worker on a broker a snapshot cost ~0.7 ms of flush time against ~0.1 ms here (issue 22), so
this is the stage's own share, a lower bound.

Both ways in one run, on the same mentions: every changed bucket each tick (the stage before
issue 22) and the timer's bounded flush (``limit`` snapshots a tick, the rest the next).
"""

from __future__ import annotations

import asyncio
import gc
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from agents.aggregate.builder import BucketBuilder
from agents.aggregate.stage import AggregateStage
from streams.connectors.simulate import SimBrand, simulate
from streams.core.records import EnrichedMention, ModelInfo, Sentiment

__all__ = ["bench_aggregate", "format_report"]

_BRANDS = [SimBrand(name="Acme", terms=("Acme", "AcmePhone")),
           SimBrand(name="Globex", terms=("Globex", "GlobexPay")),
           SimBrand(name="Initech", terms=("Initech",))]
_MODEL = ModelInfo(id="bench", version="1")
_LABELS = ("negative", "neutral", "positive")


def _history(mentions: int, days: float, seed: int) -> list[EnrichedMention]:
    minutes = days * 24 * 60
    start = datetime(2026, 1, 1, tzinfo=UTC)
    out = []
    for i, m in enumerate(simulate(brands=_BRANDS, start=start, duration=timedelta(days=days),
                                   rate_per_min=mentions / len(_BRANDS) / minutes, seed=seed)):
        watch = next((b.name.lower() for b in _BRANDS if b.name.lower() in m.text.lower()),
                     _BRANDS[i % len(_BRANDS)].name.lower())
        label = _LABELS[i % 3]
        out.append(EnrichedMention(
            mention=m, watch_id=watch, watch_ids=[watch],
            sentiment=Sentiment(label=label, scores={label: 1.0}),  # type: ignore[arg-type]
            priority=10 + i % 50, model=_MODEL, classified_at=m.created_at))
    return out


async def _replay(history: list[EnrichedMention], *, rate: int, pause_s: float,
                  limit: int | None) -> dict[str, Any]:
    builder = BucketBuilder(size_s=300, watch_terms={b.name.lower(): b.terms for b in _BRANDS})
    stage = AggregateStage(builder=builder, watches={b.name.lower() for b in _BRANDS},
                           stored=lambda _id: None)
    snapshots = 0

    async def send(key: bytes, value: bytes) -> None:
        nonlocal snapshots
        snapshots += 1

    acked = 0

    async def ack(token: Any) -> None:
        nonlocal acked
        acked += 1

    # Tick sizes: the backlog of pause_s seconds arrives a third of the way in.
    ticks: list[int] = []
    left, n = len(history), 0
    while left > 0:
        size = rate * (int(pause_s) + 1) if n == 3 and pause_s > 0 else rate
        ticks.append(min(size, left))
        left -= ticks[-1]
        n += 1
    took: list[float] = []
    offset = 0
    began = time.perf_counter()
    for size in [*ticks, *([0] * 10_000)]:
        for em in history[offset:offset + size]:
            stage.add(em, position="enriched:0", offset=offset, token=offset)
            offset += 1
        t0 = time.perf_counter()
        await stage.flush(send, ack, limit=limit)
        took.append(time.perf_counter() - t0)
        if offset >= len(history) and not builder.dirty():
            break
    total = time.perf_counter() - began
    assert acked == len(history), (acked, len(history))
    ordered = sorted(took)
    return {"ticks": len(took), "snapshots": snapshots,
            "flush_max_s": round(ordered[-1], 3),
            "flush_p99_s": round(ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))], 3),
            "ticks_over_half_s": sum(t > 0.5 for t in took),
            "stage_s": round(total, 2),
            "drain_ticks_after_last_mention": len(took) - len(ticks)}


def bench_aggregate(*, mentions: int = 15_000, days: float = 8.0, rate: int = 220,
                    pause_s: float = 15.0, limit: int = 400, seed: int = 1) -> dict[str, Any]:
    history = _history(mentions, days, seed)
    gc.collect()  # the first run's garbage would land in the second run's ticks
    unbounded = asyncio.run(_replay(history, rate=rate, pause_s=pause_s, limit=None))
    gc.collect()
    bounded = asyncio.run(_replay(history, rate=rate, pause_s=pause_s, limit=limit))
    return {"mentions": len(history), "days": days, "rate_per_tick": rate, "pause_s": pause_s,
            "limit": limit, "unbounded": unbounded, "bounded": bounded}


def format_report(r: dict[str, Any]) -> list[str]:
    lines = [f"{r['mentions']} mentions over {r['days']:g} days, {r['rate_per_tick']} a 1 s tick, "
             f"one backlog of {r['pause_s']:g} s; flush without a producer (a lower bound)"]
    for name, label in (("unbounded", "every changed bucket a tick"),
                        ("bounded", f"at most {r['limit']} a tick")):
        f = r[name]
        lines.append(f"{label:<28}: max {f['flush_max_s']:.3f}s  p99 {f['flush_p99_s']:.3f}s  "
                     f"ticks>0.5s {f['ticks_over_half_s']}  snapshots {f['snapshots']:,}  "
                     f"ticks {f['ticks']} (+{f['drain_ticks_after_last_mention']} to drain)")
    return lines
