"""Hand-made mentions, bucket snapshots and incidents for the report tests."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from agents.aggregate.builder import BucketBuilder
from streams.config.reports import ReportSettings
from streams.config.settings import Watch
from streams.core.buckets import Bucket
from streams.core.records import (
    Author,
    Engagement,
    EnrichedMention,
    Incident,
    Mention,
    ModelInfo,
    Sentiment,
)

MADRID = ZoneInfo("Europe/Madrid")
# The week of Monday 23 March 2026 in Madrid; clocks spring forward on Sunday the 29th.
START = datetime(2026, 3, 23, tzinfo=MADRID)
END = datetime(2026, 3, 30, tzinfo=MADRID)
WATCHES = {"acme": Watch(id="acme", name="Acme", terms=["acme"], competitors=["globex"]),
           "globex": Watch(id="globex", name="Globex", terms=["globex"])}
REPORT = ReportSettings(id="weekly", schedule="0 8 * * 1", timezone="Europe/Madrid",
                        period="7d", watches=["acme"], pdf_dir="out", top_mentions=2)
_ids = itertools.count()


def em(at: datetime, label: str = "neutral", *, watch: str = "acme", followers: int = 0,
       likes: int = 0, priority: int = 10, text: str = "acme order") -> EnrichedMention:
    m = Mention(source="sim", id=str(next(_ids)), author=Author(handle="ana", followers=followers),
                text=text, created_at=at, engagement=Engagement(likes=likes))
    return EnrichedMention(mention=m, watch_id=watch, watch_ids=[watch],
                           sentiment=Sentiment(label=label, scores={label: 1.0}),  # type: ignore[arg-type]
                           priority=priority, model=ModelInfo(id="t", version="1"),
                           classified_at=at)


class Source:
    def __init__(self, mentions: list[EnrichedMention]) -> None:
        b = BucketBuilder(size_s=300, watch_terms={"acme": ["acme"], "globex": ["globex"]})
        for offset, m in enumerate(mentions):
            b.add(m, position="t:0", offset=offset)
        self.all = [b.snapshot(k) for k in b.dirty()]

    def buckets(self, watch_id: str, since: datetime, until: datetime) -> list[Bucket]:
        return sorted((x for x in self.all if x.watch_id == watch_id and since <= x.start < until),
                      key=lambda x: x.start)


def incident(opened: datetime, *, watch: str = "acme", ack_min: float | None = None,
             resolve_min: float | None = None) -> Incident:
    return Incident(
        id=f"{watch}.{opened:%d%H%M}", fingerprint="f", watch_id=watch, detector="volume_spike",
        severity="critical", opened_at=opened, updated_at=opened, summary="spike",
        state="resolved" if resolve_min else "acknowledged" if ack_min else "open",
        # Naive, as the record may hold them: read as UTC.
        acked_at=None if ack_min is None else
        (opened.astimezone(UTC) + timedelta(minutes=ack_min)).replace(tzinfo=None),
        resolved_at=None if resolve_min is None else
        opened.astimezone(UTC) + timedelta(minutes=resolve_min))
