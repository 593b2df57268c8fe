"""Rebuild the store from the enriched topic: every record written again, idempotently.

Writing is idempotent by mention key, so a rebuild over a live store only adds what it is
missing (mentions let go while the database was down, a store started after the topic); with
a cleared store it makes the whole store again, as far back as the topic's retention reaches
(``kafka.stream_retention_days``). The records come from any async source (the CLI reads the
topic from its beginning); records that are not enriched mentions are counted, not stored
(detect dead-lettered them when they first arrived), and rows the store refuses are reported.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from agents.store.store import MentionStore
from streams.core.records import EnrichedMention, RecordError, parse

__all__ = ["RebuildReport", "rebuild"]


@dataclass
class RebuildReport:
    read: int = 0  # records read from the topic
    stored: int = 0  # mentions new to the store
    not_enriched: int = 0  # records that are not enriched mentions
    refused: list[str] = field(default_factory=list)  # the store's reasons, one per record
    seconds: float = 0.0


async def rebuild(records: AsyncIterator[bytes], store: MentionStore, *, batch: int = 1000,
                  progress: Callable[[RebuildReport], None] = lambda _r: None
                  ) -> RebuildReport:
    report = RebuildReport()
    began = time.perf_counter()
    pending: list[EnrichedMention] = []

    async def flush() -> None:
        result = await asyncio.to_thread(store.write, pending)
        report.stored += result.stored
        report.refused += [f"{pending[i].mention.key}: {reason}" for i, reason in result.rejected]
        pending.clear()
        progress(report)

    async for raw in records:
        report.read += 1
        try:
            pending.append(parse(EnrichedMention, raw))
        except RecordError:
            report.not_enriched += 1
            continue
        if len(pending) >= batch:
            await flush()
    if pending:
        await flush()
    report.seconds = time.perf_counter() - began
    return report
