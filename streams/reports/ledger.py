"""What was sent, and what is due: the ledger on escucha.reports and the scheduling rule.

Each delivery of a report to one channel (pdf, email, slack) for one slot is recorded as a
:class:`LedgerEntry`; the scheduler reads them all back at start (streams.runtime.views
ReportLedgerView), so a restart neither repeats a recorded slot nor skips the latest one:

* the slot that is due is the schedule's latest firing time at or before now; older missed
  slots are never sent (after a week down, one report, not seven);
* a report with no scheduled entry yet starts with its *next* slot: the current one is
  recorded as skipped, so adding a report does not mail last week's at once;
* a channel is sent once per slot: a channel that failed retryably is tried again on the next
  tick until ``RETRY_FOR`` has passed since its first try, then recorded as failed; one that
  failed for good is recorded at once;
* entries are written after the delivery (at-least-once): a crash between the two repeats
  that one delivery after the restart. Email Message-IDs derive from (report, slot), so a
  mail client recognises the repeat.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from streams.config.reports import ReportSettings

__all__ = ["RETRY_FOR", "LedgerEntry", "Plan", "entry_key", "plan"]

#: How long after its first try a retryably failing channel is still retried.
RETRY_FOR = timedelta(hours=6)
Outcome = Literal["delivered", "failed", "skipped"]


def _utc(t: datetime) -> datetime:
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


def entry_key(report_id: str, slot: datetime, channel: str) -> str:
    return f"{report_id}|{_utc(slot).isoformat()}|{channel}"


class LedgerEntry(BaseModel):
    """One channel's outcome for one slot of one report (the record on escucha.reports)."""

    model_config = ConfigDict(frozen=True, extra="ignore")
    v: int = Field(default=1, ge=1, le=1, description="Schema version.")
    report_id: str
    slot: datetime = Field(description="The schedule time it ran for (or --end of a manual "
                           "send), UTC.")
    channel: str = Field(description="pdf, email, slack, or '*' for a skipped slot.")
    outcome: Outcome
    trigger: Literal["schedule", "manual"] = "schedule"
    period_start: datetime | None = None
    period_end: datetime | None = None
    detail: str = ""
    at: datetime

    _norm = field_validator("slot", "at")(_utc)

    @property
    def key(self) -> str:
        return entry_key(self.report_id, self.slot, self.channel)


@dataclass(frozen=True)
class Plan:
    """What the scheduler should do now for one report."""

    slot: datetime
    channels: tuple[str, ...]  # to deliver now; empty with skip=True
    skip: bool = False  # record the slot as skipped (a report seen for the first time)


def plan(report: ReportSettings, entries: Iterable[LedgerEntry], now: datetime) -> Plan | None:
    """The rule in the module docstring, as a pure function of the ledger and the time."""
    now = _utc(now)
    slot = report.cron.prev_fire(now)
    if slot is None:
        return None
    slot = slot.astimezone(UTC)
    mine = [e for e in entries if e.report_id == report.id]
    scheduled = [e for e in mine if e.trigger == "schedule"]
    if not scheduled:
        return Plan(slot=slot, channels=(), skip=True)
    if max(e.slot for e in scheduled) > slot:
        return None  # the clock went back, or another worker's is ahead: nothing is due
    # A manual send for exactly this slot counts too (`escucha report send ID --end SLOT`).
    done = {e.channel for e in mine if e.slot == slot}
    if "*" in done:
        return None
    todo = tuple(c for c in report.channels if c not in done)
    return Plan(slot=slot, channels=todo) if todo else None
