"""One scheduled report's settings (``reports:`` in escucha.yaml), and report periods.

A period is what a report covers, counted back from its end:

* ``"<N>h"``: N hours, ending on the hour;
* ``"<N>d"`` / ``"<N>w"``: N calendar days / weeks in the report's time zone, ending at local
  midnight (a week across a daylight-saving change is 167 or 169 hours, as people count it);
* ``"month"``: the calendar month before the one the report runs in.

A scheduled report ends at its slot floored to that unit (a Monday 08:00 weekly "7d" report
covers Monday 00:00 to Monday 00:00: last week), and compares with the same length before.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from streams.core.schedule import Cron, ScheduleError, parse_cron, wall_time, zone
from streams.i18n import check_locale

__all__ = ["Period", "ReportSettings", "parse_period"]

_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_PERIOD = re.compile(r"^(?:(\d{1,4})([hdw])|month)$")
_ADDRESS = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}@[A-Za-z0-9.-]{1,253}$")
_CHANNEL = re.compile(r"^#?[a-z0-9][a-z0-9._-]{0,79}$|^[CGD][A-Z0-9]{2,}$")


class Period:
    """A report length: hours, days, or the calendar month (see the module docstring)."""

    def __init__(self, text: str) -> None:
        m = _PERIOD.match(text.strip().lower())
        if not m:
            raise ValueError(f"period {text!r}: use e.g. '24h', '1d', '7d', '2w' or 'month'")
        self.text = text.strip().lower()
        self.unit = "month" if m.group(0) == "month" else m.group(2)
        self.count = 1 if self.unit == "month" else int(m.group(1))
        if self.count < 1:
            raise ValueError(f"period {text!r} is empty; use at least 1")
        if self.unit == "w":
            self.unit, self.count = "d", self.count * 7

    def __repr__(self) -> str:
        return f"Period({self.text!r})"

    def align(self, at: datetime, tz: ZoneInfo) -> datetime:
        """``at`` floored to the period's unit in ``tz``: the end of a scheduled report."""
        local = _aware(at).astimezone(tz)
        if self.unit == "h":
            return local.replace(minute=0, second=0, microsecond=0)
        floor = local.replace(hour=0, minute=0, second=0, microsecond=0, tzinfo=None)
        if self.unit == "month":
            floor = floor.replace(day=1)
        return wall_time(floor, tz)

    def window(self, end: datetime, tz: ZoneInfo) -> tuple[datetime, datetime]:
        """``(start, end)`` of the period ending at ``end``, counted in ``tz``'s calendar."""
        end = _aware(end).astimezone(tz)
        if self.unit == "h":  # real hours: arithmetic in one zone would count wall hours
            return (end.astimezone(UTC) - timedelta(hours=self.count)).astimezone(tz), end
        local = end.replace(tzinfo=None)
        if self.unit == "d":
            start = local - timedelta(days=self.count)
        else:
            year, month = (local.year, local.month - 1) if local.month > 1 else (
                local.year - 1, 12)
            start = local.replace(year=year, month=month, day=min(local.day, _days_in(
                year, month)))
        return wall_time(start, tz), end

    @property
    def step(self) -> str:
        """The chart step that fits the period: hours up to two days, days beyond."""
        return "h" if self.unit == "h" and self.count <= 48 else "d"


def _days_in(year: int, month: int) -> int:
    nxt = datetime(year + (month == 12), month % 12 + 1, 1)
    return (nxt - timedelta(days=1)).day


def _aware(t: datetime) -> datetime:
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t


def parse_period(text: str) -> Period:
    return Period(text)


class ReportSettings(BaseModel):
    """One scheduled report: who reads it, when, about which watches, and where it goes."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(description="Stable slug, e.g. 'weekly-board': the ledger key; changing it "
                    "starts the report afresh.")
    name: str = Field(default="", max_length=200,
                      description="Title, e.g. 'Weekly brand report'; default: from the id.")
    audience: str = Field(default="", max_length=200,
                          description="Who it is for, shown under the title, e.g. 'Board'.")
    schedule: str = Field(description="Five-field cron in `timezone`, e.g. '0 8 * * 1' "
                          "(Mondays 08:00); DST-safe: see streams/core/schedule.py.")
    timezone: str = Field(default="UTC", description="IANA zone of the schedule and of the "
                          "report's days, e.g. 'Europe/Madrid'.")
    period: str = Field(default="7d", description="What it covers, ending at the run: "
                        "'<N>h', '<N>d', '<N>w' or 'month' (the previous calendar month).")
    watches: list[str] = Field(min_length=1, description="Watch ids, each a section; share "
                               "of voice compares each with its `competitors`.")
    email: list[str] | None = Field(default=None, description="Addresses for an HTML email "
                                    "with inline charts (needs notifiers.email).")
    slack: str | None = Field(default=None, description="Channel ('#brand-reports' or an id) "
                              "for a message with the chart uploaded (needs a Slack token "
                              "with files:write).")
    pdf_dir: Path | None = Field(default=None, description="Directory to write "
                                 "<id>-<end date>.pdf into.")
    attach_pdf: bool = Field(default=True, description="Attach the PDF to the email too.")
    top_mentions: int = Field(default=5, ge=0, le=50,
                              description="Highest-priority mentions listed per watch.")
    top_terms: int = Field(default=10, ge=0, le=50, description="Terms listed per watch.")
    locale: str = Field(default="en", description="Language and number/date style of the "
                        "PDF, e.g. 'es' or 'es_AR'; mention text stays as written.")

    @field_validator("locale")
    @classmethod
    def _locale(cls, value: str) -> str:
        return check_locale(value)

    @field_validator("id")
    @classmethod
    def _slug(cls, value: str) -> str:
        if not _ID.match(value):
            raise ValueError("use lowercase letters, digits, '-' or '_' (max 64), e.g. 'weekly'")
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        zone(value)  # ScheduleError is a ValueError: reported with the field's path
        return value

    @field_validator("period")
    @classmethod
    def _period(cls, value: str) -> str:
        return Period(value).text

    @field_validator("email")
    @classmethod
    def _addresses(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        bad = [a for a in value if not _ADDRESS.match(a)]
        if bad or not value:
            raise ValueError(f"not plain addresses: {bad}" if bad else "list at least one "
                             "address, or leave email unset")
        return value

    @field_validator("slack")
    @classmethod
    def _channel(cls, value: str | None) -> str | None:
        if value is not None and not _CHANNEL.match(value):
            raise ValueError("a channel name like '#brand-reports' or an id like 'C0123ABC'")
        return value

    @model_validator(mode="after")
    def _schedule_and_channels(self) -> ReportSettings:
        try:
            parse_cron(self.schedule, self.timezone)
        except ScheduleError as exc:
            raise ValueError(f"schedule: {exc}") from exc
        if self.email is None and self.slack is None and self.pdf_dir is None:
            raise ValueError("set at least one of email, slack or pdf_dir, or the report "
                             "goes nowhere")
        return self

    @property
    def cron(self) -> Cron:
        return parse_cron(self.schedule, self.timezone)

    @property
    def tz(self) -> ZoneInfo:
        return zone(self.timezone)

    @property
    def length(self) -> Period:
        return Period(self.period)

    @property
    def title(self) -> str:
        return self.name or self.id.replace("-", " ").replace("_", " ").capitalize()

    @property
    def channels(self) -> list[str]:
        """Where it goes, in delivery order: the file first, so a failed send has a copy."""
        return [c for c, on in (("pdf", self.pdf_dir is not None),
                                ("email", self.email is not None),
                                ("slack", self.slack is not None)) if on]
