"""Configuration of who gets told, how, and when: routes, policies, schedules, silences.

Alertmanager's routing tree picks escalation policies for an incident; each policy is a list
of levels (targets + an acknowledgement timeout), PagerDuty-style. Part of ``Settings``
(``escalation:``); cross-references (policy ids, schedule ids, services) are checked there.
"""

from __future__ import annotations

from datetime import date, datetime, time
from typing import TYPE_CHECKING, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, create_model, field_validator, model_validator

from notifiers import registry
from streams.core.silences import MATCH_LABELS, compile_matcher

__all__ = ["EscalationSettings", "InhibitRule", "Level", "Member", "Override", "Policy",
           "QuietHours", "Route", "Schedule", "SilenceSpec", "TargetSpec", "MATCH_LABELS"]



class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


def _zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {value!r} (use an IANA name like "
                         "'Europe/Madrid')") from exc
    return value


TARGET_KEYS: tuple[str, ...] = (*registry.names, "schedule")
if TYPE_CHECKING:
    _Personal = str
else:  # a channel an on-call member can be reached on
    _Personal = Literal[registry.personal]


class _Target(_Section):
    """Exactly one of the keys: where one notification goes.

    One key per channel in ``notifiers/registry.py`` (``slack``, ``email``, …) is added to this
    base by :data:`TargetSpec`; ``schedule`` sends to whoever is on call, reached ``via``
    their contacts.
    """

    schedule: str | None = Field(default=None, description="Whoever is on call in a schedule.")
    via: list[_Personal] = Field(
        default_factory=lambda: ["slack"],
        description="For schedule targets: how to reach the person on call.")

    @model_validator(mode="after")
    def _exactly_one(self) -> _Target:
        keys = [k for k in TARGET_KEYS if getattr(self, k) not in (None, False, [])]
        if len(keys) != 1:
            raise ValueError(f"a target needs exactly one of {', '.join(TARGET_KEYS)} "
                             f"(got {keys or 'none'})")
        return self

    @property
    def kind(self) -> str:
        for k in TARGET_KEYS:
            if getattr(self, k) not in (None, False, []):
                return k
        raise AssertionError("validated to have one")  # pragma: no cover


#: The target model: :class:`_Target` plus one optional key per channel.
if TYPE_CHECKING:  # built at run time: to mypy its channel keys are Any
    TargetSpec = Any
else:
    TargetSpec = create_model("TargetSpec", __base__=_Target, **{
        c.name: (c.target_type | None, Field(default=None, description=c.target_help))
        for c in registry.CHANNELS})


class QuietHours(_Section):
    """A daily window in which a level is not disturbed: its notification waits for the end.

    A level entered (or reminded) in its quiet hours is notified when they end, and its
    acknowledgement timeout starts then; escalation does not jump over it to the next level.
    Severities in ``except_severity`` break through at once.
    """

    start: time = Field(description="Local start, e.g. '22:00'.")
    end: time = Field(description="Local end, e.g. '07:00' (may wrap past midnight).")
    timezone: str = Field(default="UTC", description="IANA time zone of start/end.")
    days: list[int] = Field(default_factory=lambda: list(range(7)),
                            description="Weekdays it applies to, 0 = Monday; a window "
                                        "belongs to the day it starts on.")
    except_severity: list[Literal["info", "warning", "critical"]] = Field(
        default_factory=lambda: ["critical"],  # type: ignore[arg-type]
        description="Severities that are never held back by these quiet hours.")

    _tz = field_validator("timezone")(_zone)

    @field_validator("days")
    @classmethod
    def _weekdays(cls, value: list[int]) -> list[int]:
        bad = sorted({d for d in value if not 0 <= d <= 6})
        if bad:
            raise ValueError(f"days {bad} are not weekdays: use 0 (Monday) to 6 (Sunday)")
        return value

    @model_validator(mode="after")
    def _ends(self) -> QuietHours:
        # Held notifications wait for the end: a window that never ends would hold them forever.
        if self.start == self.end and set(self.days) >= set(range(7)):
            raise ValueError(f"quiet hours from {self.start} to {self.end} every day never "
                             "end, so this level would never be notified: list fewer days, "
                             "or remove the level")
        return self


class Level(_Section):
    targets: list[TargetSpec] = Field(min_length=1)
    timeout_s: int = Field(default=300, ge=10, description="Time to acknowledge before the "
                           "next level is notified.")
    quiet_hours: QuietHours | None = None


class Policy(_Section):
    id: str = Field(min_length=1)
    levels: list[Level] = Field(min_length=1)
    repeat: int = Field(default=0, ge=0, le=10,
                        description="Times to start again at level 1 after the last level.")


class Route(_Section):
    """A node of the routing tree (Alertmanager semantics)."""

    match: dict[str, str | list[str]] = Field(
        default_factory=dict, description=(
            f"Labels that must all match: {', '.join(MATCH_LABELS)}. Each value is a matcher as "
            "in silences: 'acme' (equal), '!=acme', '~re' or '=~re' (a fully anchored regex), "
            "'!~re', '*'; a list matches when any of its matchers does."))
    policy: str | None = Field(default=None, description="Policy id; inherited when unset.")
    continue_: bool = Field(default=False, alias="continue",
                            description="Keep looking at later siblings after this one matches.")
    routes: list[Route] = Field(default_factory=list)

    @field_validator("match")
    @classmethod
    def _labels(cls, value: dict[str, str | list[str]]) -> dict[str, str | list[str]]:
        problems = []
        bad = [k for k in value if k not in MATCH_LABELS]
        if bad:
            problems.append(f"unknown label(s) {bad}; use {', '.join(MATCH_LABELS)}")
        # Compiled here, so a bad regex stops start-up with its path instead of failing (or,
        # worse, matching nothing) when the first incident is routed.
        for label, wanted in value.items():
            options = [(label, wanted)] if isinstance(wanted, str) else [
                (f"{label}.{i}", v) for i, v in enumerate(wanted)]
            for where, matcher in options:
                try:
                    compile_matcher(matcher)
                except ValueError as exc:
                    problems.append(f"{where}: {exc}")
        if problems:
            raise ValueError("; ".join(problems))
        return value


class _Member(_Section):
    name: str = Field(min_length=1)


#: An on-call member: a name and one optional contact per personal channel (registry).
if TYPE_CHECKING:
    Member = Any
else:
    Member = create_model("Member", __base__=_Member, **{
        c.name: (str | None, Field(default=None, description=c.personal_help or None))
        for c in registry.CHANNELS if c.personal})


class Override(_Section):
    start: datetime
    end: datetime
    member: str

    @model_validator(mode="after")
    def _order(self) -> Override:
        if self.end <= self.start:
            raise ValueError("an override must end after it starts")
        return self


class Schedule(_Section):
    """A rotation: members take turns of ``rotation_days``, handing off at a local time."""

    id: str = Field(min_length=1)
    timezone: str = "UTC"
    members: list[Member] = Field(min_length=1)
    start: date = Field(description="The local date the first member's first turn begins.")
    handoff: time = Field(default=time(9, 0), description="Local hand-off time.")
    rotation_days: int = Field(default=7, ge=1, le=366)
    overrides: list[Override] = Field(default_factory=list)

    _tz = field_validator("timezone")(_zone)

    @model_validator(mode="after")
    def _override_members(self) -> Schedule:
        names = {m.name for m in self.members}
        for o in self.overrides:
            if o.member not in names:
                raise ValueError(f"override names {o.member!r}, who is not a member")
        return self


class SilenceSpec(_Section):
    matchers: dict[str, str] = Field(min_length=1)
    ends_at: datetime
    starts_at: datetime | None = None
    comment: str = ""
    created_by: str = "config"
    all: bool = Field(default=False, description="Must be true when the matchers silence "
                      "every incident (e.g. {watch: '*'}): so it is never done by a slip.")


def _matchers(value: dict[str, str], *, side: str) -> dict[str, str]:
    """Labels known and every matcher compiled, so a typo stops start-up with its path."""
    if not value:
        raise ValueError(f"give at least one matcher: an empty {side} matches every incident")
    problems = []
    bad = [k for k in value if k not in MATCH_LABELS]
    if bad:
        problems.append(f"unknown label(s) {bad}; use {', '.join(MATCH_LABELS)}")
    for label, matcher in value.items():
        try:
            compile_matcher(matcher)
        except ValueError as exc:
            problems.append(f"{label}: {exc}")
    if problems:
        raise ValueError("; ".join(problems))
    return value


class InhibitRule(_Section):
    """Alertmanager's inhibition: while an open incident matches ``source_match``, incidents
    matching ``target_match`` with the same values of the ``equal`` labels are not notified
    (agents/escalate/inhibit.py). Matchers use the syntax of silences and routes."""

    source_match: dict[str, str] = Field(
        description="Matchers the inhibiting incident must satisfy, e.g. {severity: critical}.")
    target_match: dict[str, str] = Field(
        description="Matchers of the incidents it holds back, e.g. {severity: warning}.")
    equal: list[str] = Field(
        default_factory=list, description=f"Labels ({', '.join(MATCH_LABELS)}) that must "
        "have the same value on both; a label missing on both counts as equal ('').")

    @field_validator("source_match")
    @classmethod
    def _source(cls, value: dict[str, str]) -> dict[str, str]:
        return _matchers(value, side="source_match")

    @field_validator("target_match")
    @classmethod
    def _target(cls, value: dict[str, str]) -> dict[str, str]:
        return _matchers(value, side="target_match")

    @field_validator("equal")
    @classmethod
    def _equal(cls, value: list[str]) -> list[str]:
        bad = [k for k in value if k not in MATCH_LABELS]
        if bad:
            raise ValueError(f"unknown label(s) {bad}; use {', '.join(MATCH_LABELS)}")
        if len(set(value)) != len(value):
            raise ValueError("labels must be unique")
        return value


def _default_policies() -> list[Policy]:
    return [Policy(id="default", levels=[Level(targets=[TargetSpec(console=True)])])]


class EscalationSettings(_Section):
    group_by: list[Literal["watch", "detector", "severity"]] = Field(
        default_factory=lambda: ["watch"],  # type: ignore[arg-type]
        description="What makes signals one incident (Alertmanager's group_by). By watch: one "
                    "crisis is one incident, whichever detectors see it; add 'detector' to "
                    "page separately per detector.")
    group_wait_s: int = Field(default=0, ge=0, le=3600, description="Hold a new incident's "
                              "first notification this long, so signals that arrive together "
                              "go out as one alert. 0: alert at once (a crisis will not wait).")
    story_wait_s: int = Field(default=15, ge=0, le=600, description="Hold a new incident "
                              "that one story dominates (a copy-paste storm) at least this "
                              "long, even with group_wait_s 0: the same storm on another "
                              "watch then joins it and pages nobody twice. Incidents without "
                              "such a story page at once. 0: no hold.")
    group_interval_s: int = Field(default=300, ge=0, description="Least time between update "
                                  "notifications for one incident (new signals joining it).")
    repeat_interval_s: int = Field(default=3600, ge=60, description="Reminder interval while an "
                                   "incident stays unacknowledged after its last level.")
    resolve_after_s: int = Field(default=1800, ge=60, description="Auto-resolve after this long "
                                 "without a new signal.")
    reopen_within_s: int = Field(default=3600, ge=0, description="A signal this soon after "
                                 "resolution reopens the incident instead of opening a new one.")
    route: Route = Field(default_factory=lambda: Route(policy="default"))
    policies: list[Policy] = Field(default_factory=_default_policies)
    schedules: list[Schedule] = Field(default_factory=list)
    silences: list[SilenceSpec] = Field(default_factory=list)
    inhibit_rules: list[InhibitRule] = Field(
        default_factory=list, description="Alertmanager inhibit rules: an open critical "
        "incident holds back the notifications of matching lesser ones.")
    fallback: list[TargetSpec] = Field(default_factory=list, description="Where a notification "
                                       "goes when its channel fails permanently, or when the "
                                       "person on call has no contact at all for it.")
    rate_limit_per_min: int = Field(default=20, ge=1, description="Per target; the excess is "
                                    "rolled into one digest instead of being dropped.")

    @model_validator(mode="after")
    def _references(self) -> EscalationSettings:
        policies = {p.id for p in self.policies}
        schedules = {s.id for s in self.schedules}
        problems = []

        def walk(node: Route, path: str) -> None:
            if node.policy is not None and node.policy not in policies:
                problems.append(f"{path}.policy: no policy {node.policy!r}")
            for i, child in enumerate(node.routes):
                walk(child, f"{path}.routes.{i}")

        if self.route.policy is None:
            problems.append("route.policy: the root route needs a policy")
        walk(self.route, "route")
        for p in self.policies:
            for li, level in enumerate(p.levels):
                for ti, t in enumerate(level.targets):
                    if t.schedule is not None and t.schedule not in schedules:
                        problems.append(f"policies[{p.id}].levels.{li}.targets.{ti}: "
                                        f"no schedule {t.schedule!r}")
        if len(policies) != len(self.policies):
            problems.append("policies: ids must be unique")
        if problems:
            raise ValueError("; ".join(problems))
        return self
