"""Report settings and periods: validation with clear messages, calendar-correct windows."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from streams.config.reports import Period, ReportSettings
from streams.config.settings import ConfigError, load_settings

MADRID = ZoneInfo("Europe/Madrid")
BASE = {"id": "weekly", "schedule": "0 8 * * 1", "timezone": "Europe/Madrid",
        "watches": ["acme"], "pdf_dir": "reports"}


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=MADRID)


def test_defaults_and_derived_values() -> None:
    r = ReportSettings(**BASE)
    assert r.period == "7d" and r.title == "Weekly" and r.channels == ["pdf"]
    assert r.pdf_dir == Path("reports")
    r = ReportSettings(**{**BASE, "email": ["a@example.com"], "slack": "#brand"})
    assert r.channels == ["pdf", "email", "slack"]


@pytest.mark.parametrize(("change", "says"), [
    ({"schedule": "0 0 30 2 *"}, "schedule: '0 0 30 2 \\*' never fires: day 30"),
    ({"timezone": "Europe/Atlantis"}, "unknown time zone 'Europe/Atlantis'"),
    ({"period": "fortnight"}, "use e.g. '24h', '1d', '7d', '2w' or 'month'"),
    ({"period": "0d"}, "is empty"),
    ({"id": "Weekly Report"}, "lowercase letters"),
    ({"email": ["not an address"]}, "not plain addresses"),
    ({"slack": "#Not A Channel"}, "a channel name like"),
    ({"pdf_dir": None}, "set at least one of email, slack or pdf_dir"),
    ({"watches": []}, "at least 1 item"),
])
def test_invalid_reports_say_why(change: dict[str, object], says: str) -> None:
    with pytest.raises(ValidationError, match=says):
        ReportSettings(**{**BASE, **change})


def _settings(**extra: object) -> None:
    load_settings(None, watches=[{"id": "acme", "name": "Acme", "terms": ["acme"]}], **extra)


def test_settings_check_watches_channels_and_ids_all_at_once() -> None:
    with pytest.raises(ConfigError) as err:
        _settings(reports=[{**BASE, "watches": ["acme", "globex"], "email": ["a@example.com"],
                            "slack": "#brand"}, BASE])
    text = str(err.value)
    assert "reports.0.watches.1: no watch with id 'globex' (configured: acme)" in text
    assert "reports.0.email: needs notifiers.email" in text
    assert "reports.0.slack: needs notifiers.slack.token" in text
    assert "reports.1.id: report id 'weekly' is used twice" in text


def test_settings_path_of_a_bad_schedule() -> None:
    with pytest.raises(ConfigError, match=r"reports\.0: .*never fires"):
        _settings(reports=[{**BASE, "schedule": "0 0 31 11 *"}])


def test_a_good_report_loads() -> None:
    s = load_settings(None, watches=[{"id": "acme", "name": "Acme", "terms": ["acme"]}],
                      notifiers={"email": {"host": "127.0.0.1"}},
                      reports=[{**BASE, "email": ["board@example.com"]}])
    assert s.reports[0].cron.hours == {8}


# -- periods ------------------------------------------------------------------------------------

def test_a_week_is_seven_calendar_days_even_across_spring_forward() -> None:
    p = Period("1w")
    slot = local(2026, 3, 30, 8)  # Monday after the change
    end = p.align(slot, MADRID)
    start, end2 = p.window(end, MADRID)
    assert end == end2 == local(2026, 3, 30, 0)
    assert start == local(2026, 3, 23, 0)
    # Python subtracts two times of one zone by wall clock: compare real time in UTC.
    assert (end.astimezone(UTC) - start.astimezone(UTC)).total_seconds() == 167 * 3600


def test_days_hours_and_months() -> None:
    assert Period("24h").align(local(2026, 5, 5, 9, 41), MADRID) == local(2026, 5, 5, 9)
    assert Period("24h").window(local(2026, 5, 5, 9), MADRID)[0] == local(2026, 5, 4, 9)
    assert Period("24h").step == "h" and Period("7d").step == "d"
    month = Period("month")
    end = month.align(local(2026, 3, 2, 8), MADRID)
    assert end == local(2026, 3, 1)
    assert month.window(end, MADRID) == (local(2026, 2, 1), local(2026, 3, 1))
    assert month.window(local(2026, 1, 1), MADRID)[0] == local(2025, 12, 1)
    # A month counted back from the 31st lands on the last day of a shorter month.
    assert month.window(local(2026, 3, 31), MADRID)[0] == local(2026, 2, 28)


def test_hours_are_real_hours_across_a_change() -> None:
    start, end = Period("24h").window(local(2026, 3, 30, 1), MADRID)
    assert (end.astimezone(UTC) - start.astimezone(UTC)).total_seconds() == 24 * 3600
    assert start == local(2026, 3, 29, 0)  # 00:00 CET is 24 real hours before 01:00 CEST


def test_end_is_converted_from_any_zone() -> None:
    start, end = Period("1d").window(datetime(2026, 6, 1, 22, tzinfo=UTC), MADRID)
    assert end == local(2026, 6, 2, 0) and start == local(2026, 6, 1, 0)
