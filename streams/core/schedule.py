"""Five-field cron schedules evaluated in an IANA time zone, daylight-saving changes included.

``minute hour day-of-month month day-of-week``, as in crontab(5): ``*``, lists (``1,15``),
ranges (``1-5``), steps (``*/15``, ``8-18/2``), month and weekday names (``jan``, ``mon``),
weekday 0 or 7 for Sunday. When both day fields are restricted a day matches either (cron's
rule). Slots are wall-clock times in the schedule's zone; across a daylight-saving change:

* a slot in the spring-forward gap (02:30 on a night that skips 02:00-03:00) does not exist,
  so it fires once, at the first instant after the gap (03:00 new time); several slots in one
  gap still fire once between them;
* a slot in the fall-back overlap (01:30 on a night that repeats 01:00-02:00) fires once, at
  its first occurrence; the repeated hour fires nothing.

Written here rather than taken from croniter so that these two rules are ours, stated and
tested, instead of whatever a library's version does.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = ["Cron", "ScheduleError", "parse_cron", "wall_time", "zone"]

_MONTHS = {name.lower(): i for names in (calendar.month_abbr, calendar.month_name)
           for i, name in enumerate(names) if name}
_DAYS = {name: i for i, day in enumerate(("sunday", "monday", "tuesday", "wednesday",
                                          "thursday", "friday", "saturday"))
         for name in (day[:3], day)}
_FIELDS: tuple[tuple[str, int, int, dict[str, int]], ...] = (
    ("minute", 0, 59, {}), ("hour", 0, 23, {}), ("day of month", 1, 31, {}),
    ("month", 1, 12, _MONTHS), ("day of week", 0, 7, _DAYS))
_MACROS = {"@hourly": "0 * * * *", "@daily": "0 0 * * *", "@midnight": "0 0 * * *",
           "@weekly": "0 0 * * 0", "@monthly": "0 0 1 * *", "@yearly": "0 0 1 1 *",
           "@annually": "0 0 1 1 *"}
_TERM = re.compile(r"^(\*|[a-z0-9]+(?:-[a-z0-9]+)?)(?:/(\d+))?$")
# Feb 29 comes round within 8 years (1900-style century gaps aside): a bound for the search.
_SEARCH_DAYS = 366 * 9
_MAX_DAYS = {1: 31, 2: 29, 3: 31, 4: 30, 5: 31, 6: 30, 7: 31, 8: 31, 9: 30, 10: 31, 11: 30,
             12: 31}


class ScheduleError(ValueError):
    """A schedule or time zone that cannot be used; the message says how to fix it."""


def zone(name: str) -> ZoneInfo:
    """The IANA zone ``name`` (e.g. 'Europe/Madrid'), or ScheduleError."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ScheduleError(f"unknown time zone {name!r}; use an IANA name such as "
                            "'Europe/Madrid', 'America/New_York' or 'UTC'") from exc


def _value(token: str, lo: int, hi: int, names: dict[str, int], what: str) -> int:
    if token.isdigit():
        value = int(token)
    elif token in names:
        value = names[token]
    else:
        raise ScheduleError(f"{what}: {token!r} is not a number"
                            + (" or a name like " + ", ".join(list(names)[:3]) if names else ""))
    if not lo <= value <= hi:
        raise ScheduleError(f"{what}: {value} is outside {lo}-{hi}")
    return value


def _field(text: str, lo: int, hi: int, names: dict[str, int], what: str) -> frozenset[int]:
    out: set[int] = set()
    for part in text.lower().split(","):
        m = _TERM.match(part)
        if not m:
            raise ScheduleError(f"{what}: cannot read {part!r} (use *, 5, 1-5, */15 or 1,15)")
        span, step_s = m.group(1), m.group(2)
        step = int(step_s) if step_s else 1
        if step < 1:
            raise ScheduleError(f"{what}: a step must be at least 1")
        if span == "*":
            first, last = lo, hi
        elif "-" in span:
            a, b = span.split("-", 1)
            first, last = _value(a, lo, hi, names, what), _value(b, lo, hi, names, what)
            if first > last:
                raise ScheduleError(f"{what}: range {span!r} runs backwards")
        else:
            first = _value(span, lo, hi, names, what)
            last = hi if step_s else first  # "5/10" means from 5 every 10, as in cron
        out.update(range(first, last + 1, step))
    return frozenset(out)


@dataclass(frozen=True)
class Cron:
    """A parsed schedule in one zone; see the module docstring for the DST rules."""

    expression: str
    tz: ZoneInfo
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday
    any_day: bool  # day of month was '*'
    any_weekday: bool  # day of week was '*'

    def _day_matches(self, d: date) -> bool:
        if d.month not in self.months:
            return False
        dom = d.day in self.days
        dow = (d.isoweekday() % 7) in self.weekdays
        if self.any_day or self.any_weekday:
            return dom and dow
        return dom or dow  # both restricted: cron fires on either

    def _slots(self, d: date) -> list[datetime]:
        """The day's firing instants (aware, in the zone), in order, gaps moved, folds first."""
        if not self._day_matches(d):
            return []
        out: list[datetime] = []
        for h in sorted(self.hours):
            for m in sorted(self.minutes):
                when = wall_time(datetime.combine(d, time(h, m)), self.tz)
                if not out or _utc(when) > _utc(out[-1]):  # gap slots collapse onto one
                    out.append(when)
        return out

    def next_fire(self, after: datetime) -> datetime:
        """The first firing instant strictly after ``after`` (aware), in the schedule's zone."""
        # Instants compare in UTC: Python compares two times of one zone by wall clock,
        # which puts the repeated hour's second pass before its first.
        limit = _utc(after)
        day = limit.astimezone(self.tz).date() - timedelta(days=1)  # gaps push slots forward
        for _ in range(_SEARCH_DAYS):
            for when in self._slots(day):
                if _utc(when) > limit:
                    return when
            day += timedelta(days=1)
        raise ScheduleError(f"{self.expression!r} never fires")  # excluded by parse_cron

    def prev_fire(self, at: datetime) -> datetime | None:
        """The latest firing instant at or before ``at``; None if none in the last 9 years."""
        limit = _utc(at)
        day = limit.astimezone(self.tz).date() + timedelta(days=1)
        for _ in range(_SEARCH_DAYS):
            found = [w for w in self._slots(day) if _utc(w) <= limit]
            if found:
                return found[-1]
            day -= timedelta(days=1)
        return None


def _utc(t: datetime) -> datetime:
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


def wall_time(local: datetime, tz: ZoneInfo) -> datetime:
    """A naive wall-clock time in ``tz`` as an instant: the first occurrence if the clocks
    repeat it, the end of the gap if they skip it."""
    when = local.replace(tzinfo=tz, fold=0)
    if when.astimezone(UTC).astimezone(tz).replace(tzinfo=None) == local:
        return when
    # Skipped: walk the wall clock forward to the first minute that exists (the moment the
    # clocks changed). Gaps are an hour, rarely 30 minutes or two hours; bounded at a day.
    probe = local
    for _ in range(24 * 60):
        probe += timedelta(minutes=1)
        candidate = probe.replace(tzinfo=tz, fold=0)
        if candidate.astimezone(UTC).astimezone(tz).replace(tzinfo=None) == probe:
            return candidate
    return when  # pragma: no cover - no zone skips a whole day of minutes


def _possible(days: frozenset[int], months: frozenset[int]) -> bool:
    return any(d <= _MAX_DAYS[m] for m in months for d in days)


def parse_cron(expression: str, tz: str | ZoneInfo = "UTC") -> Cron:
    """Parse ``expression`` (5 fields or an @macro) for zone ``tz``; ScheduleError says why not.

    A schedule that can never fire, like ``0 0 30 2 *`` (30 February), is refused here rather
    than silently never sending its report.
    """
    tzinfo = tz if isinstance(tz, ZoneInfo) else zone(tz)
    text = _MACROS.get(expression.strip().lower(), expression)
    parts = text.split()
    if len(parts) != 5:
        raise ScheduleError(f"{expression!r} has {len(parts)} fields; a schedule has 5: "
                            "minute hour day-of-month month day-of-week, e.g. '0 8 * * 1'")
    sets = [_field(p, lo, hi, names, what) for p, (what, lo, hi, names) in zip(parts, _FIELDS,
                                                                            strict=True)]
    minutes, hours, days, months, weekdays = sets
    weekdays = frozenset(d % 7 for d in weekdays)  # 7 is Sunday too
    any_day, any_weekday = parts[2] == "*", parts[4] == "*"
    # With a weekday restricted too, cron fires on either field, and every weekday occurs.
    if any_weekday and not _possible(days, months):
        shown = " or ".join(calendar.month_name[m] for m in sorted(months))
        raise ScheduleError(f"{expression!r} never fires: day {min(days)} does not occur in "
                            f"{shown}; pick a day of month that exists (at most 28 fires in "
                            "every month)")
    return Cron(expression=expression, tz=tzinfo, minutes=minutes, hours=hours, days=days,
                months=months, weekdays=weekdays, any_day=any_day, any_weekday=any_weekday)
