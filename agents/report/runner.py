"""The pure part of report: build and send one report, and decide which are due (no Faust)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime

from notifiers.errors import DeliveryError
from streams.config.reports import ReportSettings
from streams.core.records import Incident
from streams.reports.data import BucketSource, WatchInfo, build_report
from streams.reports.deliver import ReportSender, render
from streams.reports.ledger import RETRY_FOR, LedgerEntry, plan

__all__ = ["INTERVAL_S", "Record", "ReportRunner", "run_report"]

log = logging.getLogger(__name__)
INTERVAL_S = 30.0  # how often the schedule is looked at

Record = Callable[[LedgerEntry], Awaitable[None]]


async def run_report(report: ReportSettings, *, slot: datetime, end: datetime | None = None,
                     channels: Sequence[str], watches: Mapping[str, WatchInfo],
                     source: BucketSource, incidents: Sequence[Incident],
                     sender: ReportSender, trigger: str = "schedule",
                     now: datetime | None = None,
                     ) -> tuple[list[LedgerEntry], dict[str, DeliveryError]]:
    """Render the report for the period ending at ``end`` (default: ``slot`` aligned to the
    period, as the schedule does) and send it to ``channels``; return the entries to record
    and the retryable failures (not recorded: the scheduler tries them again)."""
    now = now or datetime.now(UTC)
    end = end or report.length.align(slot, report.tz)
    data = build_report(report, watches=watches, source=source, incidents=incidents, end=end,
                        now=now)
    rendered = await asyncio.to_thread(render, data)
    entries, retry = [], {}
    for channel in channels:
        try:
            receipt = await sender.send(report, rendered, channel)
            outcome, detail = "delivered", receipt.detail
        except DeliveryError as exc:
            if exc.retryable:
                retry[channel] = exc
                continue
            outcome, detail = "failed", exc.reason
        entries.append(LedgerEntry(report_id=report.id, slot=slot, channel=channel,
                                   outcome=outcome, trigger=trigger,  # type: ignore[arg-type]
                                   period_start=data.start, period_end=data.end,
                                   detail=detail, at=datetime.now(UTC)))
    return entries, retry


class ReportRunner:
    """One tick of the schedule over every report: plan, run, record (testable without Kafka)."""

    def __init__(self, *, reports: Sequence[ReportSettings], watches: Mapping[str, WatchInfo],
                 sender: ReportSender, record: Record) -> None:
        self._reports = list(reports)
        self._watches = watches
        self._sender = sender
        self._record = record
        self._first_try: dict[tuple[str, datetime, str], datetime] = {}

    async def tick(self, *, now: datetime, ledger: Sequence[LedgerEntry],
                   source: BucketSource, incidents: Sequence[Incident]) -> list[LedgerEntry]:
        written: list[LedgerEntry] = []
        for report in self._reports:
            todo = plan(report, ledger, now)
            if todo is None:
                continue
            if todo.skip:
                entry = LedgerEntry(report_id=report.id, slot=todo.slot, channel="*",
                                    outcome="skipped", at=now,
                                    detail="report first seen after this slot; it starts "
                                    "with the next one")
                log.info("report %s: starts with the slot after %s", report.id, todo.slot)
                await self._record(entry)
                written.append(entry)
                continue
            try:
                entries, retry = await run_report(
                    report, slot=todo.slot, channels=todo.channels, watches=self._watches,
                    source=source, incidents=incidents, sender=self._sender, now=now)
            except Exception:  # a rendering bug must not stop the other reports
                log.exception("report %s for %s could not be produced", report.id, todo.slot)
                continue
            for channel, exc in retry.items():
                first = self._first_try.setdefault((report.id, todo.slot, channel), now)
                if now - first < RETRY_FOR:
                    log.warning("report %s to %s failed (%s); retrying in %.0fs", report.id,
                                channel, exc.reason, INTERVAL_S)
                    continue
                entries.append(LedgerEntry(
                    report_id=report.id, slot=todo.slot, channel=channel, outcome="failed",
                    detail=f"{exc.reason} (still failing after {RETRY_FOR})", at=now))
            for entry in entries:
                log.log(logging.INFO if entry.outcome == "delivered" else logging.ERROR,
                        "report %s %s to %s: %s", report.id, entry.outcome, entry.channel,
                        entry.detail)
                await self._record(entry)
                written.append(entry)
        return written

