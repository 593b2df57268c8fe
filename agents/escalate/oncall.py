"""Who is on call, whether quiet hours hold, and where a target leads — at a given instant.

Pure: nothing here reads the clock; every function takes ``at`` (timezone-aware, normally UTC)
so escalation can be replayed and tested at any instant, DST changes included.

Rotations hand off at the same *local* time every turn. Turn boundaries are therefore built as
local wall-clock times in the schedule's zone (``zoneinfo``) and only then turned into UTC
instants; stepping 7 days of 24 h in UTC would move the hand-off by an hour at every DST change.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from notifiers import registry
from streams.config.escalation import Member, Override, QuietHours, Schedule, TargetSpec

__all__ = ["in_quiet_hours", "on_call", "quiet_until", "resolve_targets"]


def on_call(schedule: Schedule, at: datetime) -> Member:
    """The member on call in ``schedule`` at ``at``.

    An override covering ``at`` wins over the rotation; when several do, the one that started
    last wins (a short swap inside a week-long cover is the more specific intent). Before the
    schedule's first hand-off the first member is on call, so a schedule that starts next week
    still reaches someone today.
    """
    instant = _utc(at)
    tz = ZoneInfo(schedule.timezone)
    override = _override_at(schedule.overrides, tz, instant)
    if override is not None:
        return _member(schedule, override.member)
    turn = _turn(schedule, tz, instant)
    return schedule.members[turn % len(schedule.members)]


def in_quiet_hours(q: QuietHours, at: datetime, severity: str) -> bool:
    """Whether ``at`` falls in the quiet window ``[start, end)`` of ``q`` for ``severity``.

    A window whose end is not after its start wraps past midnight (22:00-07:00) and belongs to
    the day it started on for the ``days`` check: Friday night's window still holds at 06:00 on
    Saturday even if Saturday is not listed. ``start == end`` means the whole day.

    A window runs from the first instant the local clock reads ``start`` to the first instant
    it reads ``end``, so it follows the wall clock across DST changes: a start or end inside
    the spring-forward gap is reached at the jump, and one inside the hour repeated in autumn
    at its first reading (the window neither reopens nor runs on when the hour repeats).
    """
    if severity in q.except_severity:
        return False
    return _window_end(q, ZoneInfo(q.timezone), _utc(at)) is not None


def quiet_until(q: QuietHours, at: datetime, severity: str) -> datetime | None:
    """When the quiet hours holding ``at`` are over (UTC); ``None`` if they do not hold it.

    The first instant from which :func:`in_quiet_hours` is false: the end of the window
    holding ``at``, read on the local wall clock (a 22:00-07:00 window in Europe/Madrid ends
    at 06:00 UTC in winter and 05:00 UTC in summer, whichever offset was in force when it
    began). Whole-day windows (``start == end``) on consecutive listed days touch, so the
    quiet stretch runs on to the end of the last one.
    """
    if severity in q.except_severity:
        return None
    tz = ZoneInfo(q.timezone)
    end: datetime | None = None
    instant = _utc(at)
    # Each window ends a day after the last at least; a week of touching windows is refused
    # by QuietHours, so this ends.
    for _ in range(8):
        nxt = _window_end(q, tz, instant)
        if nxt is None:
            return end
        end = instant = nxt
    raise ValueError(f"quiet hours {q.start}-{q.end} on days {q.days} never end; "
                     "QuietHours refuses such a window")


def resolve_targets(target: TargetSpec, schedules: Mapping[str, Schedule],
                    at: datetime) -> list[tuple[str, str]]:
    """The concrete ``(channel, target)`` pairs ``target`` means at ``at``.

    A schedule target yields the on-call member's contact for each channel in ``via`` (in that
    order, duplicates dropped), skipping channels the member has no contact for. When none is
    left the result is ``[]``: the caller logs it and uses the fallback targets, since only it
    knows which incident went unrouted. An unknown schedule id raises ``KeyError`` (the settings
    check cross-references, so that is a programming error, not bad config).
    """
    for channel in registry.CHANNELS:
        value = getattr(target, channel.name)
        if value not in (None, False, []):
            return [(channel.name, channel.address(value))]
    if target.schedule is None:  # pragma: no cover - TargetSpec validates exactly one key
        raise ValueError("target has no destination")
    schedule = schedules.get(target.schedule)
    if schedule is None:
        raise KeyError(f"no schedule {target.schedule!r}; known: {sorted(schedules)}")
    member = on_call(schedule, at)
    pairs: list[tuple[str, str]] = []
    for channel in dict.fromkeys(target.via):
        contact: str | None = getattr(member, channel)
        if contact:
            pairs.append((channel, contact))
    return pairs


def _utc(at: datetime) -> datetime:
    # A naive datetime here is a bug upstream (datetime.now() without a zone); guessing its zone
    # would page the wrong person for an hour twice a year, so refuse it loudly.
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"'at' must be timezone-aware, got naive {at.isoformat()}; "
                         "use datetime.now(UTC)")
    return at.astimezone(UTC)


def _naive(t: time) -> time:
    # Config times may carry an offset ("22:00+01:00"); the zone field is what counts.
    return t.replace(tzinfo=None)


def _window_end(q: QuietHours, tz: ZoneInfo, instant: datetime) -> datetime | None:
    """The end (UTC) of the window of ``q`` holding ``instant``; ``None`` outside every one."""
    start, end = _naive(q.start), _naive(q.end)
    today = instant.astimezone(tz).date()
    # A window starts on its own day and lasts at most a day: yesterday's or today's.
    for day in (today - timedelta(days=1), today):
        if day.weekday() not in q.days:
            continue
        last = day if start < end else day + timedelta(days=1)
        opens, closes = _first_reading(tz, day, start), _first_reading(tz, last, end)
        if opens <= instant < closes:
            return closes
    return None


def _first_reading(tz: ZoneInfo, day: date, wall: time) -> datetime:
    """The first instant (UTC) at which ``tz``'s clock reads ``wall`` or later on ``day``."""
    naive = datetime.combine(day, wall)
    first = naive.replace(tzinfo=tz).astimezone(UTC)            # fold=0: the earlier offset
    second = naive.replace(tzinfo=tz, fold=1).astimezone(UTC)   # fold=1: the later offset
    if second < first:
        # ``wall`` does not exist that day (spring forward): the clock first reads past it
        # at the jump, which lies between the two instants PEP 495 gives.
        return _jump(tz, second, first)
    return first  # a time that happens twice (fall back) is first read with fold=0


def _jump(tz: ZoneInfo, before: datetime, after: datetime) -> datetime:
    """The instant in ``(before, after]`` at which ``tz``'s UTC offset changes, to the second."""
    offset = before.astimezone(tz).utcoffset()
    lo, hi = before, after
    while hi - lo > timedelta(seconds=1):
        mid = lo + (hi - lo) / 2
        if mid.astimezone(tz).utcoffset() == offset:
            lo = mid
        else:
            hi = mid
    # Offsets change on whole seconds, and (lo, hi] is at most a second long: the one whole
    # second in it is hi's.
    return hi.replace(microsecond=0)


def _handoff(schedule: Schedule, tz: ZoneInfo, turn: int) -> datetime:
    """The UTC instant turn number ``turn`` begins.

    A hand-off time that does not exist that day (the spring-forward gap) takes the offset in
    force before the change (PEP 495, fold=0): 02:30 on the gap day happens at 03:30 local.
    """
    day: date = schedule.start + timedelta(days=turn * schedule.rotation_days)
    return datetime.combine(day, _naive(schedule.handoff), tzinfo=tz).astimezone(UTC)


def _turn(schedule: Schedule, tz: ZoneInfo, instant: datetime) -> int:
    """Index of the turn in progress at ``instant``; 0 before the schedule starts."""
    if instant < _handoff(schedule, tz, 0):
        return 0
    # Estimate on the wall clock (exact except within an hour of a DST change), then settle the
    # estimate against the real instants so hand-offs land exactly on the boundary.
    local = instant.astimezone(tz).replace(tzinfo=None)
    epoch = datetime.combine(schedule.start, _naive(schedule.handoff))
    turn = max(0, (local - epoch) // timedelta(days=schedule.rotation_days))
    while turn > 0 and _handoff(schedule, tz, turn) > instant:
        turn -= 1
    while _handoff(schedule, tz, turn + 1) <= instant:
        turn += 1
    return turn


def _override_at(overrides: list[Override], tz: ZoneInfo, instant: datetime) -> Override | None:
    best: tuple[datetime, Override] | None = None
    for override in overrides:
        start, end = _in_zone(override.start, tz), _in_zone(override.end, tz)
        if not start <= instant < end:
            continue
        # ">=": on equal starts the later entry wins; it was most likely added to correct one.
        if best is None or start >= best[0]:
            best = (start, override)
    return None if best is None else best[1]


def _in_zone(value: datetime, tz: ZoneInfo) -> datetime:
    # People write overrides in the team's local time; a naive one means the schedule's zone.
    if value.tzinfo is None or value.utcoffset() is None:
        value = value.replace(tzinfo=tz)
    return value.astimezone(UTC)


def _member(schedule: Schedule, name: str) -> Member:
    for member in schedule.members:
        if member.name == name:
            return member
    # Schedule validates override names; reaching here means a hand-built, unvalidated model.
    raise KeyError(f"override names {name!r}, who is not a member of schedule {schedule.id!r}")
