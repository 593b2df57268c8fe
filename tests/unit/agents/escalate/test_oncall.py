"""on_call, in_quiet_hours, quiet_until, resolve_targets: rotations, overrides, quiet windows,
DST.

Europe/Madrid changes to summer time on Sunday 2026-03-29 (02:00 CET -> 03:00 CEST) and back
on Sunday 2026-10-25 (03:00 CEST -> 02:00 CET). 09:00 local is 08:00 UTC in winter and
07:00 UTC in summer.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from agents.escalate.oncall import in_quiet_hours, on_call, quiet_until, resolve_targets
from streams.config.escalation import Member, Override, QuietHours, Schedule, TargetSpec

MADRID = ZoneInfo("Europe/Madrid")
ALICE = Member(name="alice", slack="U1", email="alice@example.com", push="alice-phone")
BOB = Member(name="bob", slack="U2")
CAROL = Member(name="carol")  # no contact at all


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# Weekly, Monday 2026-03-02 09:00 CET (08:00 UTC) onwards: alice, bob, carol, alice, ...
WEEKLY = Schedule(id="primary", timezone="Europe/Madrid", members=[ALICE, BOB, CAROL],
                  start=date(2026, 3, 2), handoff=time(9, 0), rotation_days=7)


@pytest.mark.parametrize(("at", "expected"), [
    ("2025-12-01T12:00", "alice"),              # long before the start: the first member
    ("2026-03-02T07:59:59", "alice"),           # just before the first hand-off
    ("2026-03-02T08:00", "alice"),
    ("2026-03-09T07:59:59.999999", "alice"),    # the boundary is exact ...
    ("2026-03-09T08:00", "bob"),                # ... and the hand-off instant belongs to the next
    ("2026-03-12T03:00", "bob"),
    ("2026-03-16T08:00", "carol"),
    ("2026-03-23T08:00", "alice"),              # the rotation cycles
    # After spring-forward, 09:00 local is 07:00 UTC: the hand-off moves in UTC, not locally.
    ("2026-03-30T06:59:59", "alice"),
    ("2026-03-30T07:00", "bob"),
    ("2026-03-30T07:30", "bob"),
    # Turn 33 starts Monday 2026-10-19 09:00 CEST (07:00 UTC) ...
    ("2026-10-19T06:59", "carol"),
    ("2026-10-19T07:00", "alice"),
    # ... and after fall-back turn 34 starts 2026-10-26 09:00 CET, 08:00 UTC.
    ("2026-10-26T07:00", "alice"),
    ("2026-10-26T07:59:59", "alice"),
    ("2026-10-26T08:00", "bob"),
])
def test_weekly_rotation(at: str, expected: str) -> None:
    assert on_call(WEEKLY, utc(at)).name == expected


@pytest.mark.parametrize(("at", "expected"), [
    # Daily turns alice, bob, alice, bob from Friday 2026-03-27; the Sunday turn starts on the
    # day of the change itself, at 09:00 CEST.
    ("2026-03-28T07:59", "alice"),
    ("2026-03-28T08:00", "bob"),    # 09:00 CET
    ("2026-03-29T06:59", "bob"),
    ("2026-03-29T07:00", "alice"),  # 09:00 CEST
    # 2026-10-24 is 211 days on, an odd turn, from 09:00 CEST: no drift in seven months.
    ("2026-10-24T06:59", "alice"),
    ("2026-10-24T07:00", "bob"),
    ("2026-10-25T07:59", "bob"),
    ("2026-10-25T08:00", "alice"),  # 09:00 CET, the day summer time ends
])
def test_daily_rotation_hands_off_at_the_local_time_on_the_day_of_the_change(
        at: str, expected: str) -> None:
    schedule = Schedule(id="daily", timezone="Europe/Madrid", members=[ALICE, BOB],
                        start=date(2026, 3, 27), rotation_days=1)
    assert on_call(schedule, utc(at)).name == expected


def test_a_hand_off_time_inside_the_spring_forward_gap_happens_an_hour_later_locally() -> None:
    # 02:30 doesn't exist in Madrid on 2026-03-29; PEP 495 (fold=0) reads it with the winter
    # offset, i.e. 01:30 UTC, which is 03:30 CEST.
    schedule = Schedule(id="night", timezone="Europe/Madrid", members=[ALICE, BOB],
                        start=date(2026, 3, 28), handoff=time(2, 30), rotation_days=1)
    assert on_call(schedule, utc("2026-03-28T01:30")).name == "alice"   # 02:30 CET
    assert on_call(schedule, utc("2026-03-29T01:29")).name == "alice"
    assert on_call(schedule, utc("2026-03-29T01:30")).name == "bob"
    assert on_call(schedule, utc("2026-03-30T00:29")).name == "bob"
    assert on_call(schedule, utc("2026-03-30T00:30")).name == "alice"   # 02:30 CEST


@pytest.mark.parametrize("zone", ["Europe/Madrid", "America/New_York", "Australia/Sydney",
                                  "UTC"])
@pytest.mark.parametrize("rotation_days", [1, 3, 7, 14])
def test_every_hour_of_a_year_agrees_with_the_local_wall_clock(
        zone: str, rotation_days: int) -> None:
    # Reference computed a different way: on the local calendar, which is what people read.
    tz = ZoneInfo(zone)
    schedule = Schedule(id="s", timezone=zone, members=[ALICE, BOB, CAROL],
                        start=date(2026, 1, 5), handoff=time(9, 0), rotation_days=rotation_days)
    at = utc("2025-12-25T00:00")
    while at < utc("2027-01-10T00:00"):
        local = at.astimezone(tz)
        day = local.date() - timedelta(days=1 if local.time() < time(9, 0) else 0)
        turn = max(0, (day - schedule.start).days // rotation_days)
        assert on_call(schedule, at) == schedule.members[turn % 3], at
        at += timedelta(hours=1)


# Overrides during bob's week (2026-03-09 08:00 UTC to 2026-03-16 08:00 UTC), plus one before
# the schedule starts. The inner override is listed first: the start time decides, not order.
OVERRIDDEN = WEEKLY.model_copy(update={"overrides": [
    # Naive: Madrid time (CET), so 17:00-07:00 UTC.
    Override(start=datetime(2026, 3, 10, 18, 0), end=datetime(2026, 3, 11, 8, 0),
             member="carol"),
    # Aware, in another zone: 17:00-19:00 UTC.
    Override(start=datetime.fromisoformat("2026-03-12T12:00:00-05:00"),
             end=datetime.fromisoformat("2026-03-12T14:00:00-05:00"), member="alice"),
    # Nested: carol covers two hours inside alice's cover.
    Override(start=utc("2026-03-14T10:00"), end=utc("2026-03-14T12:00"), member="carol"),
    Override(start=utc("2026-03-13T00:00"), end=utc("2026-03-15T00:00"), member="alice"),
    # Before the rotation starts.
    Override(start=utc("2026-02-01T00:00"), end=utc("2026-02-02T00:00"), member="bob"),
]})


@pytest.mark.parametrize(("at", "expected"), [
    ("2026-03-10T16:59", "bob"),
    ("2026-03-10T17:00", "carol"),   # 18:00 Madrid
    ("2026-03-11T06:59", "carol"),
    ("2026-03-11T07:00", "bob"),     # end is exclusive
    ("2026-03-12T16:59", "bob"),
    ("2026-03-12T17:00", "alice"),   # 12:00 in New York
    ("2026-03-12T19:00", "bob"),
    ("2026-03-13T00:00", "alice"),   # outer override
    ("2026-03-14T09:59", "alice"),
    ("2026-03-14T10:00", "carol"),   # inner override started later: it wins
    ("2026-03-14T11:59", "carol"),
    ("2026-03-14T12:00", "alice"),   # back to the outer one
    ("2026-03-15T00:00", "bob"),     # back to the rotation
    ("2026-02-01T12:00", "bob"),     # an override before the start still wins
    ("2026-02-02T12:00", "alice"),   # before the start: the first member
])
def test_overrides(at: str, expected: str) -> None:
    assert on_call(OVERRIDDEN, utc(at)).name == expected


def test_overrides_starting_together_go_to_the_later_entry() -> None:
    schedule = WEEKLY.model_copy(update={"overrides": [
        Override(start=utc("2026-03-10T00:00"), end=utc("2026-03-12T00:00"), member="alice"),
        Override(start=utc("2026-03-10T00:00"), end=utc("2026-03-11T00:00"), member="carol"),
    ]})
    assert on_call(schedule, utc("2026-03-10T12:00")).name == "carol"
    assert on_call(schedule, utc("2026-03-11T12:00")).name == "alice"


def test_at_in_another_zone_is_the_same_instant() -> None:
    at = datetime(2026, 3, 30, 9, 0, tzinfo=MADRID)  # 07:00 UTC, the hand-off
    assert on_call(WEEKLY, at).name == "bob"
    assert on_call(WEEKLY, at - timedelta(microseconds=1)).name == "alice"


def test_naive_at_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        on_call(WEEKLY, datetime(2026, 3, 10, 12, 0))
    with pytest.raises(ValueError, match="timezone-aware"):
        in_quiet_hours(QuietHours(start=time(22), end=time(7)), datetime(2026, 3, 10), "info")


# Quiet hours ---------------------------------------------------------------------------------

# Weeknights in Madrid: Monday to Friday nights, the window belonging to the day it starts.
WEEKNIGHTS = QuietHours(start=time(22, 0), end=time(7, 0), timezone="Europe/Madrid",
                        days=[0, 1, 2, 3, 4])
EVERY_NIGHT = QuietHours(start=time(22, 0), end=time(7, 0), timezone="Europe/Madrid")


@pytest.mark.parametrize(("q", "at", "severity", "expected"), [
    (WEEKNIGHTS, "2026-03-02T20:59", "warning", False),  # Mon 21:59
    (WEEKNIGHTS, "2026-03-02T21:00", "warning", True),   # Mon 22:00, start inclusive
    (WEEKNIGHTS, "2026-03-03T05:59", "warning", True),   # Tue 06:59, Monday's night
    (WEEKNIGHTS, "2026-03-03T06:00", "warning", False),  # Tue 07:00, end exclusive
    (WEEKNIGHTS, "2026-03-03T12:00", "warning", False),  # Tue midday
    (WEEKNIGHTS, "2026-03-07T05:00", "warning", True),   # Sat 06:00: Friday's night
    (WEEKNIGHTS, "2026-03-07T22:00", "warning", False),  # Sat 23:00: Saturday not listed
    (WEEKNIGHTS, "2026-03-08T05:00", "warning", False),  # Sun 06:00: Saturday's night
    (WEEKNIGHTS, "2026-03-08T22:00", "warning", False),  # Sun 23:00
    (WEEKNIGHTS, "2026-03-09T05:00", "warning", False),  # Mon 06:00: Sunday's night
    (WEEKNIGHTS, "2026-03-09T21:30", "warning", True),   # Mon 22:30
    (WEEKNIGHTS, "2026-03-09T21:30", "info", True),
    (WEEKNIGHTS, "2026-03-09T21:30", "critical", False),  # except_severity defaults to critical
    # DST: the window follows the wall clock.
    (EVERY_NIGHT, "2026-03-28T05:30", "warning", True),   # 06:30 CET
    (EVERY_NIGHT, "2026-03-29T04:59", "warning", True),   # 06:59 CEST
    (EVERY_NIGHT, "2026-03-29T05:30", "warning", False),  # 07:30 CEST
    (EVERY_NIGHT, "2026-03-28T21:00", "warning", True),   # 22:00 CET
    (EVERY_NIGHT, "2026-03-29T19:59", "warning", False),  # 21:59 CEST
    (EVERY_NIGHT, "2026-03-29T20:00", "warning", True),   # 22:00 CEST
    (EVERY_NIGHT, "2026-10-24T05:30", "warning", False),  # 07:30 CEST
    (EVERY_NIGHT, "2026-10-25T05:30", "warning", True),   # 06:30 CET
    (EVERY_NIGHT, "2026-10-25T06:00", "warning", False),  # 07:00 CET
])
def test_quiet_hours(q: QuietHours, at: str, severity: str, expected: bool) -> None:
    assert in_quiet_hours(q, utc(at), severity) is expected


@pytest.mark.parametrize(("at", "expected"), [
    ("2026-03-06T13:00", False),  # Friday
    ("2026-03-07T11:59", False),
    ("2026-03-07T12:00", True),   # Saturday
    ("2026-03-08T13:59", True),   # Sunday
    ("2026-03-08T14:00", False),
])
def test_quiet_hours_within_one_day(at: str, expected: bool) -> None:
    weekend_lunch = QuietHours(start=time(12), end=time(14), days=[5, 6])
    assert in_quiet_hours(weekend_lunch, utc(at), "warning") is expected


def test_start_equal_to_end_is_a_whole_day_from_start() -> None:
    monday = QuietHours(start=time(9), end=time(9), days=[0])
    assert in_quiet_hours(monday, utc("2026-03-02T08:59"), "info") is False  # Sunday's
    assert in_quiet_hours(monday, utc("2026-03-02T09:00"), "info") is True
    assert in_quiet_hours(monday, utc("2026-03-03T08:59"), "info") is True   # Monday's
    assert in_quiet_hours(monday, utc("2026-03-03T09:00"), "info") is False


def test_no_exempt_severity_holds_back_critical_too() -> None:
    q = QuietHours(start=time(0), end=time(23, 59), except_severity=[])
    assert in_quiet_hours(q, utc("2026-03-02T12:00"), "critical") is True


# When quiet hours end ----------------------------------------------------------------------

# 00:30-02:30 in Madrid: its end falls in the spring-forward gap (02:00 CET -> 03:00 CEST on
# 2026-03-29) and happens twice on 2026-10-25 (03:00 CEST -> 02:00 CET).
SMALL_HOURS = QuietHours(start=time(0, 30), end=time(2, 30), timezone="Europe/Madrid")
WEEKEND = QuietHours(start=time(9), end=time(9), timezone="Europe/Madrid", days=[5, 6])


@pytest.mark.parametrize(("q", "at", "until"), [
    # Saturday 23:00 CET: the night ends at 07:00 on Sunday, which is summer time by then.
    (EVERY_NIGHT, "2026-03-28T22:00", "2026-03-29T05:00"),
    (EVERY_NIGHT, "2026-03-29T04:59:59", "2026-03-29T05:00"),
    (EVERY_NIGHT, "2026-03-29T20:00", "2026-03-30T05:00"),   # 22:00 CEST
    # Saturday 23:00 CEST: 07:00 on Sunday is winter time, 06:00 UTC.
    (EVERY_NIGHT, "2026-10-24T21:00", "2026-10-25T06:00"),
    (EVERY_NIGHT, "2026-10-25T05:59", "2026-10-25T06:00"),
    (EVERY_NIGHT, "2026-10-25T06:00", None),                  # 07:00 CET: over
    (EVERY_NIGHT, "2026-10-25T12:00", None),
    # Friday's night ends on Saturday morning though Saturday is not listed; Saturday's none.
    (WEEKNIGHTS, "2026-03-06T22:00", "2026-03-07T06:00"),     # Fri 23:00 CET
    (WEEKNIGHTS, "2026-03-07T22:00", None),                   # Sat 23:00
    # 02:30 does not exist on 2026-03-29: quiet ends at the jump, 01:00 UTC.
    (SMALL_HOURS, "2026-03-28T23:40", "2026-03-29T01:00"),
    (SMALL_HOURS, "2026-03-29T00:59:59", "2026-03-29T01:00"),
    (SMALL_HOURS, "2026-03-29T01:00", None),                  # 03:00 CEST
    # 02:30 happens twice on 2026-10-25: first at 00:30 UTC (CEST) ...
    (SMALL_HOURS, "2026-10-24T23:00", "2026-10-25T00:30"),
    (SMALL_HOURS, "2026-10-25T00:30", None),                  # 02:30 CEST
    # ... and does not reopen when the clock reads 02:00-02:30 again (CET).
    (SMALL_HOURS, "2026-10-25T01:10", None),
    # Whole-day windows on Saturday and Sunday touch: quiet until Monday 09:00.
    (WEEKEND, "2026-03-28T08:00", "2026-03-30T07:00"),        # Sat 09:00 CET
    (WEEKEND, "2026-03-29T12:00", "2026-03-30T07:00"),        # Sun, after the change
    (WEEKEND, "2026-03-28T07:59", None),                      # Sat 08:59: Friday's? no
    (WEEKEND, "2026-10-24T07:00", "2026-10-26T08:00"),        # Sat 09:00 CEST → Mon CET
])
def test_quiet_until_is_the_end_of_the_quiet_hours_on_the_wall_clock(
        q: QuietHours, at: str, until: str | None) -> None:
    assert quiet_until(q, utc(at), "warning") == (None if until is None else utc(until))


def test_quiet_until_is_none_for_an_exempt_severity_and_refuses_naive_times() -> None:
    assert quiet_until(EVERY_NIGHT, utc("2026-03-28T22:00"), "critical") is None
    assert quiet_until(EVERY_NIGHT, utc("2026-03-28T22:00"), "info") == utc("2026-03-29T05:00")
    with pytest.raises(ValueError, match="timezone-aware"):
        quiet_until(EVERY_NIGHT, datetime(2026, 3, 28, 23), "info")


@pytest.mark.parametrize("q", [EVERY_NIGHT, WEEKNIGHTS, SMALL_HOURS, WEEKEND,
                               QuietHours(start=time(2, 15), end=time(9), days=[6],
                                          timezone="Europe/Madrid"),
                               # Inside the gap in March: that Sunday it never happens.
                               QuietHours(start=time(2, 10), end=time(2, 40), days=[6],
                                          timezone="Europe/Madrid"),
                               QuietHours(start=time(12), end=time(14))])
@pytest.mark.parametrize("week", ["2026-03-25T00:00", "2026-10-21T00:00"])
def test_the_dst_weeks_against_the_local_clock_read_forward(
        q: QuietHours, week: str) -> None:
    # The reference reads the clock forward five minutes at a time (every start and end here
    # is on the grid): a window opens at the first reading past its start, and closes at the
    # first past its end.
    tz = ZoneInfo(q.timezone)
    per_day = 24 * 60 // 5
    minutes = [utc(week) + timedelta(minutes=5 * m) for m in range(9 * per_day)]
    walls = [t.astimezone(tz).replace(tzinfo=None) for t in minutes]

    def first(day: date, wall: time) -> int:
        target = datetime.combine(day, wall)
        return next(i for i, w in enumerate(walls) if w >= target)

    spans = []
    for n in range(-1, 8):  # from the day before: its window may reach into the first day
        day = walls[0].date() + timedelta(days=n)
        if day.weekday() in q.days:
            last = day + timedelta(days=0 if q.start < q.end else 1)
            spans.append((first(day, q.start), first(last, q.end)))
    quiet = [any(a <= i < b for a, b in spans) for i in range(len(minutes))]
    end: datetime | None = None
    for i in range(len(minutes) - 1, -1, -1):  # backwards: the next minute that is not quiet
        if not quiet[i]:
            end = minutes[i]
        if i > 7 * per_day or end is None:
            continue  # the last two days only serve to find the ends
        assert in_quiet_hours(q, minutes[i], "warning") is quiet[i], minutes[i]
        assert quiet_until(q, minutes[i], "warning") == (end if quiet[i] else None), minutes[i]


def test_a_window_that_never_ends_or_names_no_weekday_is_refused() -> None:
    with pytest.raises(ValueError, match="never end"):
        QuietHours(start=time(9), end=time(9))
    with pytest.raises(ValueError, match=r"days \[7\] are not weekdays"):
        QuietHours(start=time(22), end=time(7), days=[0, 7])
    assert QuietHours(start=time(9), end=time(9), days=[0, 1, 2, 3, 4, 5]).days  # six: fine


# Targets ------------------------------------------------------------------------------------

SCHEDULES = {"primary": OVERRIDDEN}
ALICE_WEEK, BOB_WEEK, CAROL_WEEK = (utc("2026-03-03T12:00"), utc("2026-03-10T12:00"),
                                    utc("2026-03-17T12:00"))


@pytest.mark.parametrize(("spec", "expected"), [
    ({"slack": "#crisis"}, [("slack", "#crisis")]),
    ({"email": ["a@example.com", "b@example.com"]},
     [("email", "a@example.com,b@example.com")]),
    ({"push": "escucha-crisis"}, [("push", "escucha-crisis")]),
    ({"pagerduty": "comms"}, [("pagerduty", "comms")]),
    ({"webhook": "statuspage"}, [("webhook", "statuspage")]),
    ({"console": True}, [("console", "stdout")]),
    ({"schedule": "primary"}, [("slack", "U1")]),  # via defaults to slack
    ({"schedule": "primary", "via": ["slack", "email", "push"]},
     [("slack", "U1"), ("email", "alice@example.com"), ("push", "alice-phone")]),
    ({"schedule": "primary", "via": ["push", "slack", "push"]},
     [("push", "alice-phone"), ("slack", "U1")]),
])
def test_resolve_targets(spec: dict[str, object], expected: list[tuple[str, str]]) -> None:
    target = TargetSpec.model_validate(spec)
    assert resolve_targets(target, SCHEDULES, ALICE_WEEK) == expected


def test_schedule_target_skips_channels_the_member_lacks() -> None:
    target = TargetSpec(schedule="primary", via=["email", "slack", "push"])
    assert resolve_targets(target, SCHEDULES, BOB_WEEK) == [("slack", "U2")]


def test_schedule_target_with_no_usable_contact_is_empty_for_the_caller_to_fall_back() -> None:
    target = TargetSpec(schedule="primary", via=["slack", "email", "push"])
    assert resolve_targets(target, SCHEDULES, CAROL_WEEK) == []


def test_schedule_target_follows_overrides() -> None:
    target = TargetSpec(schedule="primary", via=["slack"])
    assert resolve_targets(target, SCHEDULES, utc("2026-03-13T12:00")) == [("slack", "U1")]
    assert resolve_targets(target, SCHEDULES, utc("2026-03-14T11:00")) == []  # carol


def test_unknown_schedule_is_a_key_error() -> None:
    with pytest.raises(KeyError, match="no schedule 'backup'"):
        resolve_targets(TargetSpec(schedule="backup"), SCHEDULES, ALICE_WEEK)
