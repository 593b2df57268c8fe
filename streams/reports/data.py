"""The numbers of one report, from the stored aggregates and the incidents, free of Kafka.

Every count comes from the bucket snapshots on escucha.aggregates (streams/core/buckets.py)
through :func:`summarize`, :func:`series` and :func:`share_of_voice`, so a report can be
produced for any period the topic still retains, and it shows what the console shows.
Buckets count by their start: a period's edges are exact when they fall on bucket
boundaries (any whole hour or local midnight with 5-minute buckets).
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field

from notifiers.stories import summary_for
from streams.config.reports import Period, ReportSettings
from streams.core.buckets import Bucket, Summary, series, share_of_voice, summarize
from streams.core.records import Incident
from streams.core.schedule import wall_time
from streams.i18n import Lang

__all__ = ["BucketSource", "IncidentRow", "ReportData", "SeriesPoint", "WatchInfo",
           "WatchReport", "build_report", "change_pct"]


class BucketSource(Protocol):
    """Where bucket snapshots come from: streams.runtime.views.AggregateView, or a list in tests."""

    def buckets(self, watch_id: str, since: datetime, until: datetime) -> list[Bucket]: ...


class WatchInfo(Protocol):
    """What a report needs of a configured watch (streams.config.settings.Watch has it)."""

    @property
    def id(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def competitors(self) -> list[str]: ...


class SeriesPoint(BaseModel):
    """One day (or hour) of a watch's chart."""

    model_config = ConfigDict(frozen=True)
    start: datetime
    label: str = Field(description="As the chart shows it, in the report's time zone.")
    count: int
    negative: int

    @property
    def negative_share(self) -> float:
        return self.negative / self.count if self.count else 0.0


class IncidentRow(BaseModel):
    model_config = ConfigDict(frozen=True)
    id: str
    watch_id: str
    severity: str
    state: str
    detector: str
    summary: str
    opened_at: datetime
    time_to_ack_s: float | None = Field(description="Opened to acknowledged; None if not yet.")
    time_to_resolve_s: float | None = Field(description="Opened to resolved; None if open.")


class WatchReport(BaseModel):
    """One watch's section: this period against the previous one, and its competitors."""

    model_config = ConfigDict(frozen=True)
    watch_id: str
    name: str
    current: Summary
    previous: Summary
    share_of_voice: dict[str, float] = Field(description="Percent per watch id, this one first.")
    sov_counts: dict[str, int]
    names: dict[str, str] = Field(description="Display names of the watches compared.")
    series: list[SeriesPoint]
    incidents: list[IncidentRow]

    @property
    def change_pct(self) -> float | None:
        return change_pct(self.current.count, self.previous.count)

    @property
    def negative_share_change_pts(self) -> float:
        """Change of the negative share, in percentage points."""
        return 100.0 * (self.current.sentiment_share["negative"]
                        - self.previous.sentiment_share["negative"])

    def median_time_to_ack_s(self) -> float | None:
        return _median([i.time_to_ack_s for i in self.incidents])

    def median_time_to_resolve_s(self) -> float | None:
        return _median([i.time_to_resolve_s for i in self.incidents])


class ReportData(BaseModel):
    """Everything a rendering needs; no I/O happens after this is built."""

    model_config = ConfigDict(frozen=True)
    report_id: str
    title: str
    audience: str
    timezone: str
    period: str
    start: datetime
    end: datetime
    previous_start: datetime
    generated_at: datetime
    step: str = Field(description="'d' or 'h': what one point of the series is.")
    watches: list[WatchReport]
    locale: str = "en"

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def local(self, t: datetime) -> datetime:
        return t.astimezone(self.tz)

    @property
    def span(self) -> str:
        """'2026-03-02 to 2026-03-08 (Europe/Madrid)': the period as people read it."""
        start, last = self.local(self.start), self.local(self.end - timedelta(seconds=1))
        if self.step == "h":
            return f"{start:%Y-%m-%d %H:%M} to {self.local(self.end):%Y-%m-%d %H:%M} " \
                   f"({self.timezone})"
        if start.date() == last.date():
            return f"{start:%Y-%m-%d} ({self.timezone})"
        return f"{start:%Y-%m-%d} to {last:%Y-%m-%d} ({self.timezone})"


def change_pct(now: int, before: int) -> float | None:
    """Percent change; None when there is nothing to compare with."""
    return None if before == 0 else 100.0 * (now - before) / before


def _median(values: Iterable[float | None]) -> float | None:
    found = [v for v in values if v is not None]
    return statistics.median(found) if found else None


def _utc(t: datetime) -> datetime:
    # acked_at/resolved_at are not normalised by the record: naive means UTC.
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


def _slices(start: datetime, end: datetime, step: str, tz: ZoneInfo
            ) -> list[tuple[datetime, datetime, str]]:
    """Chart steps over [start, end): local calendar days (23 or 25 hours across DST) or
    hours; the last one is cut at ``end``."""
    out: list[tuple[datetime, datetime, str]] = []
    cursor = start
    while cursor < end:
        local = cursor.astimezone(tz)
        if step == "h":
            nxt = cursor + timedelta(hours=1)
            label = f"{local:%a %H:%M}"
        else:
            midnight = local.replace(hour=0, minute=0, second=0, microsecond=0, tzinfo=None)
            nxt = wall_time(midnight + timedelta(days=1), tz)
            label = f"{local:%a %d %b}"
        nxt = min(nxt, end)
        out.append((cursor, nxt, label))
        cursor = nxt
    return out


def _incident_row(inc: Incident, lang: Lang) -> IncidentRow:
    opened = _utc(inc.opened_at)
    ack = (_utc(inc.acked_at) - opened).total_seconds() if inc.acked_at else None
    res = (_utc(inc.resolved_at) - opened).total_seconds() if inc.resolved_at else None
    return IncidentRow(id=inc.id, watch_id=inc.watch_id, severity=inc.severity,
                       state=inc.state, detector=inc.detector,
                       # The detector's words in the report's language and zone, as the
                       # alerts said them (notifiers/stories.py); the English text otherwise.
                       summary=summary_for(inc, lang),
                       opened_at=opened, time_to_ack_s=None if ack is None else max(0.0, ack),
                       time_to_resolve_s=None if res is None else max(0.0, res))


def build_report(report: ReportSettings, *, watches: Mapping[str, WatchInfo],
                 source: BucketSource, incidents: Sequence[Incident], end: datetime,
                 now: datetime | None = None, period: Period | None = None) -> ReportData:
    """The report's numbers for the period ending at ``end`` (exclusive).

    ``watches`` holds every configured watch (competitors included); a report watch that is
    not in it raises KeyError, which settings validation excludes.
    """
    tz = report.tz
    lang = Lang(report.locale, report.timezone)
    length = period or report.length
    start, end = length.window(end, tz)
    previous_start, _ = length.window(start, tz)
    start, end, previous_start = (t.astimezone(UTC) for t in (start, end, previous_start))
    step = length.step
    slices = _slices(start, end, step, tz)
    sections = []
    for wid in report.watches:
        watch = watches[wid]
        current_buckets = source.buckets(wid, start, end)
        current = summarize(current_buckets, since=start, until=end,
                            top_terms=report.top_terms, top_mentions=report.top_mentions)
        previous = summarize(source.buckets(wid, previous_start, start), since=previous_start,
                             until=start, top_terms=report.top_terms,
                             top_mentions=report.top_mentions)
        compared = {wid: current}
        for other in watch.competitors:
            compared[other] = summarize(source.buckets(other, start, end), since=start,
                                        until=end, top_terms=0, top_mentions=0, top_authors=0)
        points = []
        for a, b, label in slices:
            # One step per slice: local days are not all 24 hours long.
            step_s = max(1, int((b - a).total_seconds()))
            p = series(current_buckets, since=a, until=b, step_s=step_s)[0]
            points.append(SeriesPoint(start=a, label=label, count=p.count,
                                      negative=p.negative))
        rows = sorted((_incident_row(i, lang) for i in incidents
                       if i.watch_id == wid and start <= _utc(i.opened_at) < end),
                      key=lambda r: r.opened_at)
        sections.append(WatchReport(
            watch_id=wid, name=watch.name, current=current, previous=previous,
            share_of_voice=share_of_voice(compared),
            sov_counts={w: s.count for w, s in compared.items()},
            names={w: (watches[w].name if w in watches else w) for w in compared},
            series=points, incidents=rows))
    return ReportData(report_id=report.id, title=report.title, audience=report.audience,
                      timezone=report.timezone, period=length.text, start=start, end=end,
                      previous_start=previous_start, generated_at=now or datetime.now(UTC),
                      step=step, watches=sections, locale=report.locale)
