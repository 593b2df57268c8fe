"""The watch overview's numbers, from the stored per-watch aggregates (streams/core/buckets.py)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from streams.config.settings import Settings
from streams.core.buckets import Summary, share_of_voice
from streams.web.console.render import WatchCard

__all__ = ["watch_cards"]


def _floor(now: datetime, step_s: int) -> datetime:
    seconds = int(now.timestamp()) // step_s * step_s
    return datetime.fromtimestamp(seconds, now.tzinfo)


def _numbers(s: Summary) -> dict[str, Any]:
    return {"count": s.count, "negative_pct": round(100 * s.sentiment_share["negative"], 1),
            "reach": s.reach, "engagement": s.engagement,
            "mean_priority": round(s.mean_priority, 1)}


def watch_cards(settings: Settings, view: Any, *, now: datetime) -> list[WatchCard]:
    """One card per watch: 24 h by hour, 7 days by day, share of voice against competitors.

    Periods end at the next whole hour (day) so the newest partial step is included.
    """
    names = {w.id: w.name for w in settings.watches}
    day_end = _floor(now, 3600) + timedelta(hours=1)
    week_end = _floor(now, 86400) + timedelta(days=1)
    day_start, week_start = day_end - timedelta(hours=24), week_end - timedelta(days=7)
    cards = []
    for watch in settings.watches:
        if view is None:
            empty = {"count": 0, "negative_pct": 0, "reach": 0}
            cards.append(WatchCard(id=watch.id, name=watch.name, day=empty, week=empty,
                                   day_series=[], week_series=[], share_of_voice={}, top=[]))
            continue
        day = view.summary(watch.id, since=day_start, until=day_end)
        week = view.summary(watch.id, since=week_start, until=week_end)
        sov: dict[str, float] = {}
        if watch.competitors:
            rivals = {c: view.summary(c, since=week_start, until=week_end)
                      for c in watch.competitors}
            sov = {names.get(k, k): v for k, v in
                   share_of_voice({watch.id: week, **rivals}).items()}
        cards.append(WatchCard(
            id=watch.id, name=watch.name, day=_numbers(day), week=_numbers(week),
            day_series=[(p.start, p.count, p.negative) for p in
                        view.series(watch.id, since=day_start, until=day_end, step_s=3600)],
            week_series=[(p.start, p.count, p.negative) for p in
                         view.series(watch.id, since=week_start, until=week_end,
                                     step_s=86400)],
            share_of_voice=sov,
            top=[t.model_dump(mode="json") for t in day.top]))
    return cards
