"""Cron schedules in a time zone: parsing, errors, and both daylight-saving changes."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from streams.core.schedule import ScheduleError, parse_cron

MADRID, NEW_YORK = "Europe/Madrid", "America/New_York"
# 2026: Europe springs forward on 29 March (02:00 -> 03:00) and falls back on 25 October
# (03:00 -> 02:00); the US on 8 March (02:00 -> 03:00) and 1 November (02:00 -> 01:00).


def fires(expr: str, tz: str, start: datetime, n: int) -> list[datetime]:
    cron, out, t = parse_cron(expr, tz), [], start
    for _ in range(n):
        t = cron.next_fire(t)
        out.append(t)
    return out


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# -- parsing ------------------------------------------------------------------------------------

def test_fields_names_steps_ranges_and_macros() -> None:
    c = parse_cron("*/15 8-18/5 1,15 jan-mar mon-fri", "UTC")
    assert c.minutes == {0, 15, 30, 45}
    assert c.hours == {8, 13, 18}
    assert c.days == {1, 15} and c.months == {1, 2, 3} and c.weekdays == {1, 2, 3, 4, 5}
    assert parse_cron("0 0 * * 7").weekdays == {0}  # 7 is Sunday too
    assert parse_cron("0 0 * * sunday").weekdays == {0}
    assert parse_cron("@weekly").weekdays == {0} and parse_cron("@daily").hours == {0}
    assert parse_cron("5/20 * * * *").minutes == {5, 25, 45}


@pytest.mark.parametrize(("expr", "says"), [
    ("0 8 * *", "has 4 fields"),
    ("60 8 * * *", "minute: 60 is outside 0-59"),
    ("0 24 * * *", "hour: 24 is outside 0-23"),
    ("0 8 * * funday", "day of week: 'funday' is not a number"),
    ("0 8 5-1 * *", "runs backwards"),
    ("0 8 */0 * *", "step must be at least 1"),
    ("0 8 ? * *", "cannot read '?'"),
])
def test_bad_expressions_say_what_is_wrong(expr: str, says: str) -> None:
    with pytest.raises(ScheduleError, match=says):
        parse_cron(expr)


@pytest.mark.parametrize("expr", ["0 0 30 2 *", "0 0 31 4,6,9,11 *", "0 0 31 feb *"])
def test_a_day_that_never_exists_is_refused_with_a_clear_message(expr: str) -> None:
    with pytest.raises(ScheduleError, match=r"never fires: day 3\d does not occur in"):
        parse_cron(expr)


def test_29_february_is_rare_but_possible_and_either_day_field_may_match() -> None:
    assert parse_cron("0 0 29 2 *").next_fire(utc(2026, 1, 1)) == utc(2028, 2, 29)
    # Both day fields restricted: cron fires on either (here the Mondays of February).
    assert parse_cron("0 0 30 2 mon").next_fire(utc(2026, 1, 1)) == utc(2026, 2, 2)


def test_unknown_time_zone() -> None:
    with pytest.raises(ScheduleError, match="unknown time zone 'Mars/Olympus'"):
        parse_cron("0 8 * * 1", "Mars/Olympus")


# -- plain firing -------------------------------------------------------------------------------

def test_weekly_report_keeps_its_local_time_across_both_changes() -> None:
    got = fires("0 8 * * 1", MADRID, utc(2026, 3, 20), 2) + \
        fires("0 8 * * 1", MADRID, utc(2026, 10, 20), 2)
    assert [t.astimezone(UTC) for t in got] == [
        utc(2026, 3, 23, 7), utc(2026, 3, 30, 6),    # CET, then CEST
        utc(2026, 10, 26, 7), utc(2026, 11, 2, 7)]    # CET again after 25 October
    assert all(t.hour == 8 and t.weekday() == 0 for t in got)


def test_next_is_strictly_after_and_prev_is_at_or_before() -> None:
    cron = parse_cron("0 8 * * 1", MADRID)
    slot = cron.next_fire(utc(2026, 3, 1))
    assert cron.next_fire(slot) == slot + timedelta(days=7)
    assert cron.prev_fire(slot) == slot
    assert cron.prev_fire(slot - timedelta(seconds=1)) == slot - timedelta(days=7)
    for t in (utc(2026, 3, 29, 0, 59), utc(2026, 10, 25, 0, 30), utc(2026, 6, 1, 12)):
        assert cron.prev_fire(cron.next_fire(t)) == cron.next_fire(t)


# -- spring forward: the slot does not exist, it fires once after the gap ---------------------

def test_spring_forward_slot_in_the_gap_fires_once_at_the_end_of_the_gap() -> None:
    got = fires("30 2 * * *", MADRID, utc(2026, 3, 28, 12), 3)
    assert [t.astimezone(UTC) for t in got] == [
        utc(2026, 3, 29, 1, 0),     # 02:30 does not exist: 03:00 CEST, the first instant after
        utc(2026, 3, 30, 0, 30),    # 02:30 CEST
        utc(2026, 3, 31, 0, 30)]


def test_several_slots_in_one_gap_fire_once_between_them() -> None:
    got = fires("*/15 2 * * *", MADRID, utc(2026, 3, 28, 12), 3)
    assert got[0].astimezone(UTC) == utc(2026, 3, 29, 1, 0)
    assert got[1].astimezone(UTC) == utc(2026, 3, 30, 0, 0)  # the next night, at 02:00 CEST
    got = fires("30 2 * * *", NEW_YORK, utc(2026, 3, 7, 12), 2)
    assert [t.astimezone(UTC) for t in got] == [utc(2026, 3, 8, 7, 0), utc(2026, 3, 9, 6, 30)]


# -- fall back: the slot happens twice, it fires once, the first time ---------------------------

def test_fall_back_slot_in_the_overlap_fires_once_at_its_first_occurrence() -> None:
    got = fires("30 2 * * *", MADRID, utc(2026, 10, 24, 12), 2)
    assert [t.astimezone(UTC) for t in got] == [
        utc(2026, 10, 25, 0, 30),   # 02:30 CEST; 02:30 CET an hour later does not fire
        utc(2026, 10, 26, 1, 30)]   # 02:30 CET
    got = fires("30 1 * * *", NEW_YORK, utc(2026, 10, 31, 12), 2)
    assert [t.astimezone(UTC) for t in got] == [utc(2026, 11, 1, 5, 30),
                                                utc(2026, 11, 2, 6, 30)]


def test_asking_during_the_repeated_hour_never_answers_the_past() -> None:
    cron = parse_cron("30 2 * * *", MADRID)
    # 01:15 UTC is 02:15 CET, the second pass of the hour: 02:30 CEST (00:30 UTC) is past.
    assert cron.next_fire(utc(2026, 10, 25, 1, 15)).astimezone(UTC) == utc(2026, 10, 26, 1, 30)
    assert cron.prev_fire(utc(2026, 10, 25, 1, 15)).astimezone(UTC) == utc(2026, 10, 25, 0, 30)


def test_hourly_across_fall_back_does_not_repeat_the_wall_clock_hour() -> None:
    got = fires("0 * * * *", MADRID, utc(2026, 10, 24, 22, 30), 5)
    # Local 01:00 CEST, 02:00 CEST, (02:00 CET is skipped), 03:00 CET, 04:00 CET
    assert [f"{t:%H:%M%z}" for t in got] == ["01:00+0200", "02:00+0200", "03:00+0100",
                                             "04:00+0100", "05:00+0100"]


def test_a_year_of_a_daily_slot_fires_once_per_day() -> None:
    got = fires("30 2 * * *", MADRID, utc(2025, 12, 31, 12), 365)
    assert len({t.date() for t in got}) == 365
    assert got[-1].date() == datetime(2026, 12, 31).date()
    assert all(b > a for a, b in itertools.pairwise(got))
