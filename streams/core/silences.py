"""Silences: label matchers with a time window that hold notifications back.

Pure: nothing here reads the clock; callers pass ``at``. A silence created from an incident
("silence this") carries ``incident_id`` and stops applying once that incident resolves; the
caller knows which incidents are resolved and passes their ids to ``first_match``.

Matcher values (per label in ``MATCH_LABELS``; a label the incident lacks reads as ``""``):

* ``"acme"``     equal to ``acme``;
* ``"*"``        anything, including a missing label;
* ``"!=acme"``   anything but ``acme``;
* ``"~acme-.*"`` a full match of the regular expression (anchored at both ends, as
  Alertmanager anchors its own); ``"=~acme-.*"`` is the same, spelled as in Alertmanager;
* ``"!~re"``     anything that doesn't fully match;
* ``"=…"``       literal equality with the rest, to match a value that starts with ``!``/``=``
  or is ``*`` itself (a literal leading ``~`` is the regex ``~\\~…``).

Routes (``agents/escalate/routing.py``) match with the same syntax through
:func:`compile_matcher`: one parser, so a matcher means the same in a route and a silence.

A silence is **expired** (Alertmanager's word) by publishing it again with ``ends_at`` set to
the moment and who did it (:meth:`Silence.expire`): it stays listed, as expired, and every
worker's view of the silences topic sees the new record in place of the old one.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

__all__ = ["CONFIG_PREFIX", "MATCH_LABELS", "Silence", "SilenceState", "compile_matcher",
           "first_match", "from_spec", "is_configured", "matches_every_incident"]

#: What routes and silences can match on.
MATCH_LABELS = ("watch", "severity", "detector", "language")

# Patterns come from operators, not from mention text, but a silence is also created from
# Slack/HTTP requests; a length cap keeps an accidental paste from becoming a slow regex.
_MAX_PATTERN = 256

_Test = Callable[[str], bool]
SilenceState = Literal["pending", "active", "expired"]

#: Ids of the silences written in escucha.yaml (``config-<index>``, streams/runtime/pipeline.py).
#: They are rebuilt from the file at every start, so a record on the topic cannot change them.
CONFIG_PREFIX = "config-"


def is_configured(silence_id: str) -> bool:
    """Whether ``silence_id`` names a silence from escucha.yaml rather than one made at run time
    (API, console, CLI: ``s-<hash>``)."""
    return silence_id.startswith(CONFIG_PREFIX)


class SilenceSpec(Protocol):
    """A silence as configured (streams.config.escalation.SilenceSpec has these fields)."""

    @property
    def matchers(self) -> Mapping[str, str]: ...
    @property
    def starts_at(self) -> datetime | None: ...
    @property
    def ends_at(self) -> datetime: ...
    @property
    def created_by(self) -> str: ...
    @property
    def comment(self) -> str: ...
    @property
    def all(self) -> bool: ...


@dataclass(frozen=True, kw_only=True)
class Silence:
    """A window ``[starts_at, ends_at)`` in which incidents whose labels match are silenced.

    Raises ``ValueError`` on construction for no matchers, a label outside ``MATCH_LABELS``
    (a typo would otherwise silence nothing, or with ``!=`` everything), an invalid or too long
    regular expression, or a naive datetime. A silence that ends before it starts is allowed
    and simply never active, so an expired entry left in the config doesn't stop start-up.
    """

    id: str
    matchers: dict[str, str]
    starts_at: datetime
    ends_at: datetime
    created_by: str
    comment: str = ""
    incident_id: str | None = None
    #: Said on purpose: its matchers silence every incident (``matches_every_incident``).
    all: bool = False
    #: Who expired it early and when (``expire``); None while it runs its course.
    expired_by: str | None = None
    expired_at: datetime | None = None
    _tests: tuple[tuple[str, _Test], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.matchers:
            raise ValueError(f"silence {self.id!r} has no matchers; it would silence everything")
        unknown = sorted(set(self.matchers) - set(MATCH_LABELS))
        if unknown:
            raise ValueError(f"silence {self.id!r}: unknown label(s) {unknown}; "
                             f"use {', '.join(MATCH_LABELS)}")
        tests = tuple((label, _compile(self.id, label, value))
                      for label, value in self.matchers.items())
        # Frozen, yet the dict passed in stays the caller's: copy it so it can't change later.
        object.__setattr__(self, "matchers", dict(self.matchers))
        object.__setattr__(self, "starts_at", _aware(self.starts_at, "starts_at"))
        object.__setattr__(self, "ends_at", _aware(self.ends_at, "ends_at"))
        if self.expired_at is not None:
            object.__setattr__(self, "expired_at", _aware(self.expired_at, "expired_at"))
        object.__setattr__(self, "_tests", tests)

    def active(self, at: datetime) -> bool:
        """Whether ``at`` lies in ``[starts_at, ends_at)``."""
        return self.starts_at <= _aware(at, "at") < self.ends_at

    def state(self, at: datetime) -> SilenceState:
        """``pending`` before ``starts_at``, ``active`` inside the window, ``expired`` after it
        (or for an empty window, which never becomes active)."""
        at = _aware(at, "at")
        if at >= self.ends_at or self.ends_at <= self.starts_at:
            return "expired"
        return "pending" if at < self.starts_at else "active"

    def expire(self, *, by: str, at: datetime) -> Silence:
        """This silence ended at ``at`` by ``by``, as Alertmanager expires one: ``ends_at``
        becomes ``at`` (and a pending one's ``starts_at`` too, so it never starts).

        Idempotent: an already expired silence comes back unchanged (the same object), so the
        caller can tell there is nothing to publish and the first expiry's record stands.
        """
        at = _aware(at, "at")
        if self.state(at) == "expired":
            return self
        return replace(self, starts_at=min(self.starts_at, at), ends_at=at, expired_by=by,
                       expired_at=at)

    def _tests_label(self, label: str, value: str) -> bool:
        return all(test(value) for name, test in self._tests if name == label)

    def matches(self, labels: Mapping[str, str], at: datetime) -> bool:
        """Whether this silence is active at ``at`` and every matcher accepts ``labels``."""
        return self.active(at) and all(test(labels.get(label, ""))
                                       for label, test in self._tests)

    @classmethod
    def from_spec(cls, spec: SilenceSpec, *, id: str, now: datetime) -> Silence:
        """A silence from config; one without ``starts_at`` starts ``now``.

        Config datetimes without an offset are taken as UTC (the pipeline's zone).
        """
        starts_at = spec.starts_at if spec.starts_at is not None else now
        return cls(id=id, matchers=dict(spec.matchers), starts_at=_assume_utc(starts_at),
                   ends_at=_assume_utc(spec.ends_at), created_by=spec.created_by,
                   comment=spec.comment, all=spec.all)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict (datetimes as ISO 8601 with offset); ``from_dict`` reverses it."""
        return {
            "id": self.id,
            "matchers": dict(self.matchers),
            "starts_at": self.starts_at.isoformat(),
            "ends_at": self.ends_at.isoformat(),
            "created_by": self.created_by,
            "comment": self.comment,
            "incident_id": self.incident_id,
            "all": self.all,
            "expired_by": self.expired_by,
            "expired_at": None if self.expired_at is None else self.expired_at.isoformat(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Silence:
        """The silence ``to_dict`` produced; ``ValueError`` for a malformed record."""
        try:
            matchers = data["matchers"]
            if not isinstance(matchers, Mapping) or not all(
                    isinstance(k, str) and isinstance(v, str) for k, v in matchers.items()):
                raise ValueError("'matchers' must map label names to strings")
            incident_id = data.get("incident_id")
            # Absent from records written before silences could be expired.
            expired_by, expired_at = data.get("expired_by"), data.get("expired_at")
            return cls(
                id=str(data["id"]), matchers=dict(matchers),
                starts_at=datetime.fromisoformat(data["starts_at"]),
                ends_at=datetime.fromisoformat(data["ends_at"]),
                created_by=str(data["created_by"]), comment=str(data.get("comment", "")),
                incident_id=None if incident_id is None else str(incident_id),
                all=data.get("all") is True,
                expired_by=None if expired_by is None else str(expired_by),
                expired_at=None if expired_at is None else datetime.fromisoformat(expired_at),
            )
        except KeyError as exc:
            raise ValueError(f"silence record lacks {exc.args[0]!r}") from exc
        except TypeError as exc:
            raise ValueError(f"malformed silence record: {exc}") from exc


#: Module-level spelling of ``Silence.from_spec``.
from_spec = Silence.from_spec


def first_match(silences: Iterable[Silence], labels: Mapping[str, str], at: datetime, *,
                resolved: Collection[str] = ()) -> Silence | None:
    """The first silence, in order, that silences ``labels`` at ``at``; ``None`` if none does.

    Silences bound to an incident in ``resolved`` are skipped: "silence this incident" must not
    swallow the next, unrelated incident that happens to carry the same labels.
    """
    for silence in silences:
        if silence.incident_id is not None and silence.incident_id in resolved:
            continue
        if silence.matches(labels, at):
            return silence
    return None


#: Label values no incident is likely to carry, tried beside the real ones: a matcher that
#: accepts these too accepts whatever comes.
_PROBES = ("", "zz-unseen-0", "Unseen_1")
_SEVERITIES = ("info", "warning", "critical")


def matches_every_incident(matchers: Mapping[str, str], *, watches: Iterable[str],
                           detectors: Iterable[str] = ()) -> bool:
    """Whether a silence with ``matchers`` would hold back every incident: every configured
    watch, every severity, and any detector or language, seen or not (``{"watch": "*"}``,
    ``~.*``, ``!=`` a value nothing has, a regex naming every watch). Such a silence must
    be asked for with ``all: true``, so nobody silences everything by a slip."""
    silence = Silence(id="probe", matchers=dict(matchers), starts_at=_EPOCH, ends_at=_END,
                      created_by="probe")
    values = {
        "watch": (*watches, *_PROBES),
        "severity": _SEVERITIES,
        "detector": (*detectors, *_PROBES),
        "language": ("en", "es", *_PROBES),
    }
    # Labels are tested independently (each matcher reads one label), so checking each
    # label's values alone covers every combination of them.
    return all(silence._tests_label(label, value)
               for label in MATCH_LABELS for value in values[label])


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_END = datetime(1970, 1, 2, tzinfo=UTC)


def compile_matcher(value: str) -> Callable[[str], bool]:
    """One matcher value (the syntax in this module's docstring) as a test of a label value.

    Raises ``ValueError`` saying what is wrong: not a string, an invalid regular expression, or
    one longer than 256 characters.
    """
    if not isinstance(value, str):
        raise ValueError(f"must be a string, got {type(value).__name__}")
    if value == "*":
        return lambda _: True
    # "=~" before "=": it is Alertmanager's regex operator, not a literal "~…".
    for prefix, negate in (("!~", True), ("=~", False), ("~", False)):
        if value.startswith(prefix):
            pattern = _regex(value[len(prefix):])
            if negate:
                return lambda v: pattern.fullmatch(v) is None
            return lambda v: pattern.fullmatch(v) is not None
    if value.startswith("!="):
        other = value[2:]
        return lambda v: v != other
    literal = value[1:] if value.startswith("=") else value
    return lambda v: v == literal


def _compile(silence_id: str, label: str, value: str) -> _Test:
    try:
        return compile_matcher(value)
    except ValueError as exc:
        raise ValueError(f"silence {silence_id!r}: matcher {label!r}: {exc}") from exc


def _regex(source: str) -> re.Pattern[str]:
    if len(source) > _MAX_PATTERN:
        raise ValueError(f"regex is longer than {_MAX_PATTERN} characters; simplify it")
    try:
        return re.compile(source)
    # OverflowError/RecursionError: huge repeat counts or deep nesting, which re reports so.
    except (re.error, OverflowError, RecursionError) as exc:
        raise ValueError(f"invalid regex {source!r}: {exc}") from exc


def _aware(value: datetime, name: str) -> datetime:
    if not isinstance(value, datetime):
        raise ValueError(f"{name} must be a datetime, got {type(value).__name__}")
    # Naive datetimes compare wrongly (or raise) against aware ones; refuse rather than guess.
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got naive {value.isoformat()}")
    return value.astimezone(UTC)


def _assume_utc(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        return value.replace(tzinfo=UTC)
    return value
