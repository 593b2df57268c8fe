"""Inhibition with Alertmanager's semantics: an open incident holds back lesser ones.

A rule (``escalation.inhibit_rules``, streams/config/escalation.py) has ``source_match``,
``target_match`` and ``equal``. An incident whose labels match the target matchers is
*inhibited* while another incident that is not resolved matches the source matchers and has
the same value for every label in ``equal`` (a label missing on both reads as ``""`` on both,
so it counts as equal, as in Alertmanager). Labels are those of routes and silences
(``labels_of``: watch, severity, detector, language); matchers use their syntax
(``compile_matcher``).

Two of Alertmanager's guards against an incident silencing itself or its peers:

* an incident never inhibits itself;
* an incident that matches both sides of a rule cannot be inhibited by another that also
  matches both (two warnings under ``{severity: "~warning|critical"}`` on both sides would
  otherwise mute each other and nobody would be told of either).

Pure: the caller passes the candidate sources (every worker's incidents view, so a critical
on one watch can inhibit a warning on another wherever their partitions live).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from agents.escalate.levels import log
from agents.escalate.routing import labels_of
from streams.config.escalation import InhibitRule
from streams.core.records import Incident, PhraseParam
from streams.core.silences import compile_matcher
from streams.i18n.timeline import english

__all__ = ["Inhibition", "Inhibitor", "hold", "incident_labels", "note_inhibits"]


def incident_labels(inc: Incident) -> dict[str, str]:
    return labels_of(inc.watch_id, inc.severity, inc.detector, inc.language)


@dataclass(frozen=True)
class Inhibition:
    """Why an incident is held back: ``source`` matched rule number ``rule``."""

    source: Incident
    rule: int

    def params(self) -> dict[str, PhraseParam]:
        """What the timeline says of it (streams/i18n/timeline.py ``inhibited_by``)."""
        s = self.source
        return {"source": s.id, "severity": s.severity, "detector": s.detector,
                "watch": s.watch_id, "rule": self.rule}


@dataclass(frozen=True)
class _Rule:
    source: tuple[tuple[str, Callable[[str], bool]], ...]
    target: tuple[tuple[str, Callable[[str], bool]], ...]
    equal: tuple[str, ...]

    @staticmethod
    def _compile(match: Mapping[str, str]) -> tuple[tuple[str, Callable[[str], bool]], ...]:
        return tuple((label, compile_matcher(value)) for label, value in match.items())

    @classmethod
    def of(cls, rule: InhibitRule) -> _Rule:
        return cls(source=cls._compile(rule.source_match),
                   target=cls._compile(rule.target_match), equal=tuple(rule.equal))

    @staticmethod
    def _all(tests: tuple[tuple[str, Callable[[str], bool]], ...],
             labels: Mapping[str, str]) -> bool:
        return all(test(labels.get(label, "")) for label, test in tests)

    def is_source(self, labels: Mapping[str, str]) -> bool:
        return self._all(self.source, labels)

    def is_target(self, labels: Mapping[str, str]) -> bool:
        return self._all(self.target, labels)

    def same(self, a: Mapping[str, str], b: Mapping[str, str]) -> bool:
        return all(a.get(label, "") == b.get(label, "") for label in self.equal)


class Inhibitor:
    """The configured rules, compiled once (validated at load, so compiling cannot fail)."""

    def __init__(self, rules: Sequence[InhibitRule]) -> None:
        self._rules = [_Rule.of(r) for r in rules]

    def __bool__(self) -> bool:
        return bool(self._rules)

    def find(self, target: Incident, candidates: Iterable[Incident]) -> Inhibition | None:
        """The first rule and source that inhibit ``target``; None when nothing does.

        Sources are tried oldest first (then by id), so every worker and every re-delivery
        names the same one.
        """
        if not self._rules:
            return None
        labels = incident_labels(target)
        rules = [(i, r) for i, r in enumerate(self._rules) if r.is_target(labels)]
        if not rules:
            return None
        sources = sorted((c for c in candidates if c.id != target.id and c.state != "resolved"),
                         key=lambda c: (c.opened_at, c.id))
        for i, rule in rules:
            both = rule.is_source(labels)
            for source in sources:
                theirs = incident_labels(source)
                if not rule.is_source(theirs) or not rule.same(labels, theirs):
                    continue
                if both and rule.is_target(theirs):
                    continue  # peers matching both sides never mute each other
                return Inhibition(source=source, rule=i)
        return None


def hold(entry: dict[str, Any], found: Inhibition, now: datetime) -> None:
    """Mark an engine entry inhibited by ``found.source``; a new source goes on the timeline
    and into ``esc["tell"]``, which the engine's ``Decision`` hands to the stage to send."""
    esc = entry["esc"]
    if esc.get("inhibited") != found.source.id:
        esc["tell"] = [*esc.get("tell", []), found.source.id]
        log(entry["incident"], now, "inhibited", "inhibited_by", found.params())
    esc["inhibited"] = found.source.id


def note_inhibits(entry: dict[str, Any], target_id: str, now: datetime) -> bool:
    """The source's side: "inhibits <target>" on its timeline, once (notes are re-delivered
    at least once). Whether anything changed."""
    text = english("inhibits", {"target": target_id})
    if any(t["kind"] == "inhibited" and t["text"] == text
           for t in entry["incident"].get("timeline", [])):
        return False
    log(entry["incident"], now, "inhibited", "inhibits", {"target": target_id})
    return True
