"""One escalation policy of one incident: its levels, timeouts, repeats, reminders, quiet hours.

State per policy lives in the incident's table entry (``entry["esc"]["policies"][pid]``)::

    {"level": i, "round": r, "done": bool, "since": iso, "reminded": iso,
     "deferred_until": iso, "deferred_kind": kind}

Quiet hours *defer*: a level (or a reminder) that falls in them is notified when they end,
and its acknowledgement timeout counts from then, as PagerDuty's support hours hold a
notification. Escalation does not jump over a quiet level to the next one: level 2 means
"level 1 did not answer", which a level nobody has told yet cannot have done. A policy that
must reach someone at night either lists that person without quiet hours or is a second
policy (``continue: true`` in the routing tree); critical incidents break through by default.

A schedule target whose on-call member lacks a contact for a ``via`` channel goes to the
member's other contacts, then to ``escalation.fallback``; the timeline says which.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from agents.escalate.oncall import on_call, quiet_until, resolve_targets
from notifiers import registry
from streams.config.escalation import Level, Policy, Schedule, TargetSpec
from streams.core.records import (
    Incident,
    Notification,
    NotificationKind,
    Phrase,
    PhraseParam,
    TimelineEntry,
    parse,
)
from streams.i18n.timeline import english

__all__ = ["Levels", "Reach", "log", "notify", "reach"]

_TIMELINE_MAX = 200


def _iso(t: datetime) -> str:
    return t.isoformat()


def _dt(s: str) -> datetime:
    return datetime.fromisoformat(s)


Params = Mapping[str, PhraseParam]


def log(inc: dict[str, Any], now: datetime, kind: str, key: str, params: Params | None = None,
        *, by: str | None = None, parts: Sequence[Phrase] = ()) -> None:
    """Append to an incident's timeline (the last 200 entries are kept): ``key`` and
    ``params`` said by streams/i18n/timeline.py, stored as data for each reader's language
    and in English as ``text``; ``parts``: the clauses of a detector summary it quotes."""
    values = dict(params or {})
    entry = TimelineEntry(at=now, kind=kind, text=english(key, values, parts),  # type: ignore[arg-type]
                          by=by, phrase=Phrase(key=key, params=values),
                          summary_parts=list(parts))
    timeline = inc.setdefault("timeline", [])
    timeline.append(entry.model_dump(mode="json"))
    del timeline[:-_TIMELINE_MAX]


def notify(entry: dict[str, Any], targets: list[tuple[str, str]], kind: NotificationKind,
           level: int, now: datetime) -> list[Notification]:
    """One notification per target, with ids that repeat when the same event is replayed."""
    esc = entry["esc"]
    incident = parse(Incident, entry["incident"])
    out = []
    for channel, target in targets:
        esc["seq"] = esc.get("seq", 0) + 1
        out.append(Notification(
            id=f"{incident.id}:{esc['seq']}:{channel}:{target}:{kind}",
            incident=incident, level=level, channel=channel, target=target,
            created_at=now, kind=kind))
        if [channel, target] not in esc["notified"]:
            esc["notified"].append([channel, target])
    if out:
        names = ", ".join(sorted({f"{c} {t}" for c, t in targets}))
        log(entry["incident"], now, "notification", "notification",
            {"kind": kind, "level": level, "names": names})
    return out


@dataclass(frozen=True)
class Reach:
    """Where a target leads now, and what the timeline should say about how: each note a
    timeline key and its values (streams/i18n/timeline.py), less the policy and level."""

    pairs: list[tuple[str, str]]
    notes: list[tuple[str, dict[str, PhraseParam]]] = field(default_factory=list)


def reach(target: TargetSpec, schedules: Mapping[str, Schedule], at: datetime,
          fallback: Sequence[TargetSpec] = ()) -> Reach:
    """``resolve_targets`` without silent drops.

    For a schedule target, each ``via`` channel the on-call member has no contact for is
    replaced by the member's first other contact not already used (registry order); a
    member with no contact at all is replaced by the ``fallback`` targets. Other targets
    resolve as they are.
    """
    if target.schedule is None:
        return Reach(resolve_targets(target, schedules, at))
    pairs = resolve_targets(target, schedules, at)
    member = on_call(schedules[target.schedule], at)
    missing = [c for c in dict.fromkeys(target.via) if not getattr(member, c)]
    if not missing:
        return Reach(pairs)
    spare = [(c, getattr(member, c)) for c in registry.personal
             if getattr(member, c) and (c, getattr(member, c)) not in pairs]
    notes: list[tuple[str, dict[str, PhraseParam]]] = []
    for channel in missing:
        if spare:
            pairs.append(spare.pop(0))
            notes.append(("fallback_instead", {"member": member.name, "channel": channel,
                                               "instead": pairs[-1][0]}))
        elif pairs:
            used = ", ".join(dict.fromkeys(c for c, _ in pairs))
            notes.append(("fallback_only", {"member": member.name, "channel": channel,
                                            "used": used}))
    if pairs:
        return Reach(pairs, notes)
    backup = list(dict.fromkeys(p for spec in fallback
                                for p in resolve_targets(spec, schedules, at)))
    who: dict[str, PhraseParam] = {"member": member.name, "schedule": target.schedule}
    if backup:
        names = ", ".join(f"{c} {t}" for c, t in backup)
        return Reach(backup, [("fallback_to", {**who, "names": names})])
    return Reach([], [("fallback_none", who)])


class Levels:
    """Moves one policy of one incident along; the engine calls it per policy."""

    def __init__(self, *, policies: Mapping[str, Policy], schedules: Mapping[str, Schedule],
                 fallback: Sequence[TargetSpec], repeat_interval_s: int) -> None:
        self.policies = policies
        self.schedules = schedules
        self.fallback = list(fallback)
        self.repeat = timedelta(seconds=repeat_interval_s)

    def targets(self, entry: dict[str, Any], level: Level, now: datetime,
                where: Params) -> list[tuple[str, str]]:
        """The level's concrete targets now, each substitution said on the timeline
        (``where``: the policy and level number)."""
        pairs: list[tuple[str, str]] = []
        for spec in level.targets:
            found = reach(spec, self.schedules, now, self.fallback)
            pairs += found.pairs
            for key, values in found.notes:
                log(entry["incident"], now, "fallback", key, {**where, **values})
        return list(dict.fromkeys(pairs))  # a fallback may repeat another target of the level

    def _hold(self, entry: dict[str, Any], state: dict[str, Any], level: Level, now: datetime,
              kind: NotificationKind, where: Params, said: str = "deferred") -> bool:
        """Defer the notification of ``where`` (policy and level number) if ``level`` is in
        quiet hours now; whether it was."""
        q = level.quiet_hours
        until = quiet_until(q, now, entry["incident"]["severity"]) if q else None
        if until is None or q is None:
            state.pop("deferred_until", None)
            state.pop("deferred_kind", None)
            return False
        if state.get("deferred_until") != _iso(until):  # said once, not at every re-check
            log(entry["incident"], now, "deferred", said,
                {**where, "until": _iso(until), "zone": q.timezone, "at": _iso(now)})
        state.update(deferred_until=_iso(until), deferred_kind=kind)
        return True

    def enter(self, entry: dict[str, Any], pid: str, idx: int, now: datetime,
              kind: NotificationKind) -> list[Notification]:
        """Notify level ``idx`` of policy ``pid`` now, or when its quiet hours end."""
        policy, state = self.policies[pid], entry["esc"]["policies"][pid]
        level = policy.levels[idx]
        # The acknowledgement timeout counts from the notification, deferred or not.
        state.update(level=idx, since=_iso(now))
        where: Params = {"policy": pid, "level": idx + 1}
        if self._hold(entry, state, level, now, kind, where):
            return []
        entry["incident"]["level"] = idx + 1
        # Someone has been told: from now on auto-resolve may run (incidents.py).
        entry["esc"]["notified_wall"] = entry["esc"].get("notified_wall") or _iso(now)
        targets = self.targets(entry, level, now, where)
        if not targets:
            log(entry["incident"], now, "skipped", "skipped", where)
        return notify(entry, targets, kind, idx + 1, now)

    def deferred(self, entry: dict[str, Any]) -> bool:
        """Whether a notification of this incident is waiting for quiet hours to end."""
        return any(st.get("deferred_until") for st in entry["esc"]["policies"].values())

    def due(self, pid: str, state: dict[str, Any]) -> datetime:
        """When policy ``pid`` next has something to do."""
        if state.get("deferred_until"):
            return _dt(state["deferred_until"])
        if state.get("done"):
            return _dt(state["reminded"]) + self.repeat
        level = self.policies[pid].levels[state["level"]]
        return _dt(state["since"]) + timedelta(seconds=level.timeout_s)

    def recheck(self, entry: dict[str, Any], pid: str, now: datetime) -> list[Notification]:
        """A deferred notification, sent now if its quiet hours no longer hold (a warning
        turned critical, or they ended)."""
        state = entry["esc"]["policies"][pid]
        kind: NotificationKind = state.get("deferred_kind", "trigger")
        if state.get("done"):
            return self._remind(entry, pid, now)
        return self.enter(entry, pid, state["level"], now, kind)

    def step(self, entry: dict[str, Any], pid: str, now: datetime
             ) -> tuple[list[Notification], list[str]]:
        """What policy ``pid`` does at ``now``: notifications, and events for the metrics."""
        state = entry["esc"]["policies"][pid]
        if now < self.due(pid, state):
            return [], []
        if state.get("deferred_until"):
            return self.recheck(entry, pid, now), []
        if state.get("done"):
            return self._remind(entry, pid, now), []
        policy = self.policies[pid]
        level = policy.levels[state["level"]]
        nxt = state["level"] + 1
        if nxt >= len(policy.levels) and state["round"] < policy.repeat:
            state["round"] += 1
            nxt = 0
        if nxt >= len(policy.levels):
            state.update(done=True, reminded=_iso(now))
            return [], []
        log(entry["incident"], now, "escalate", "escalate",
            {"policy": pid, "timeout": level.timeout_s, "level": nxt + 1})
        earlier = [(c, t) for c, t in entry["esc"]["notified"] if c in registry.UPDATABLE]
        paged = self.enter(entry, pid, nxt, now, "escalate")
        # Who an earlier level reached hears that it went on (Opsgenie and PagerDuty tell
        # earlier responders too), as an update: a reply, an edit, a replaced phone
        # notification, never a second page; the new level's own targets already have their
        # page and hear nothing twice. A level held by quiet hours has paged nobody yet.
        told = {(n.channel, n.target) for n in paged}
        earlier = [pair for pair in earlier if pair not in told] if paged else []
        update = notify(entry, earlier, "update", entry["incident"]["level"], now)
        return paged + update, [f"escalated:{nxt + 1}"]

    def _remind(self, entry: dict[str, Any], pid: str, now: datetime) -> list[Notification]:
        policy, state = self.policies[pid], entry["esc"]["policies"][pid]
        last = policy.levels[-1]
        n = len(policy.levels)
        where: Params = {"policy": pid, "level": n}
        if self._hold(entry, state, last, now, "reminder", where, said="deferred_reminder"):
            return []
        state["reminded"] = _iso(now)
        return notify(entry, self.targets(entry, last, now, where), "reminder", n, now)
