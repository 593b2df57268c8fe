"""Incidents and their escalation, free of Kafka: events in, new state and notifications out.

One table entry per incident: ``{"incident": <Incident JSON>, "esc": <escalation state>}``.
Every function takes ``now`` (wall clock: escalation timeouts are about people, not event
time) and is deterministic for it, so re-delivered events (at-least-once) produce the same
notification ids and the deliver stage drops the repeats.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from agents.escalate.inhibit import Inhibition, Inhibitor, hold, note_inhibits
from agents.escalate.levels import Levels, log, notify
from agents.escalate.merge import find_target, forming, join, note_joined, quote, release, story_of
from agents.escalate.routing import labels_of, route
from notifiers import registry
from streams.config.escalation import EscalationSettings, Policy, Schedule
from streams.config.playbooks import Playbook, match_playbook
from streams.core.records import (
    Ack,
    Evidence,
    Incident,
    Notification,
    NotificationKind,
    PhraseParam,
    Signal,
    parse,
    stable_id,
)
from streams.core.silences import Silence, first_match

__all__ = ["Decision", "EscalationEngine", "UPDATABLE_CHANNELS"]

_RANK = {"info": 0, "warning": 1, "critical": 2}
#: Channels told what became of what they were sent (acknowledged, escalated, resolved): a
#: Slack message edited in place, a PagerDuty alert acknowledged, an email reply in the same
#: thread, an ntfy notification replaced, a webhook event.
UPDATABLE_CHANNELS = registry.UPDATABLE
_EVIDENCE_MAX = 50
#: Characters of a channel's delivery detail (an error text) the timeline keeps.
_DETAIL_CHARS = 240
_HOLD_MAX_MIN = 360  # the longest a long-window signal keeps its incident open without news


@dataclass
class Decision:
    entry: dict[str, Any] | None            # the new table value; None: nothing changed
    notifications: list[Notification] = field(default_factory=list)
    events: list[str] = field(default_factory=list)  # for metrics: opened, acked, escalated:2…
    #: The ``Ack.source`` behind an acked/resolved event when the engine made the ack itself
    #: ("auto"); None: it came from the ack record, which the caller holds.
    source: str | None = None
    #: Incidents to tell, on their own timeline, that they inhibit this one: their entries
    #: may live in another partition, so the stage sends them a note (``on_inhibits``).
    inhibits: list[str] = field(default_factory=list)
    #: Incidents this one joined (same story), with its story's count: their timelines
    #: say so, wherever their partitions live (``on_joined``).
    joins: list[tuple[str, int]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.entry is not None:
            self.inhibits += self.entry["esc"].pop("tell", [])
            self.joins += [(t, int(n)) for t, n in self.entry["esc"].pop("tell_join", [])]

    @property
    def incident(self) -> Incident | None:
        return parse(Incident, self.entry["incident"]) if self.entry else None


def _iso(t: datetime) -> str:
    return t.isoformat()


def _dt(s: str) -> datetime:
    return datetime.fromisoformat(s)


def _said(signal: Signal) -> dict[str, PhraseParam]:
    """A signal's summary for a timeline entry: its clauses say it (``parts``), the English
    text itself only for a signal without them (stored once, not twice)."""
    return {} if signal.summary_parts else {"summary": signal.summary}


def _parts(signal: Signal) -> list[dict[str, Any]]:
    # Always with its summary: parts from an older signal beside a newer English text would
    # tell Spanish readers something else than the webhook says.
    return [p.model_dump(mode="json") for p in signal.summary_parts]


def _keep_story(inc: dict[str, Any], signal: Signal) -> None:
    """The first story that dominated a signal stays the incident's (its identity)."""
    story = story_of(signal)
    if inc.get("story") is None and story is not None:
        inc["story"] = story.model_dump(mode="json")


def _add_evidence(inc: dict[str, Any], signal: Signal) -> None:
    evidence = inc.setdefault("evidence", [])
    evidence.append(Evidence.of(signal).model_dump(mode="json"))
    del evidence[:-_EVIDENCE_MAX]


class EscalationEngine:
    def __init__(
        self,
        *,
        settings: EscalationSettings,
        policies: Sequence[Policy],
        schedules: Mapping[str, Schedule],
        silences: Callable[[], list[Silence]] = list,
        resolved_ids: Callable[[], set[str]] = set,
        playbooks: Sequence[Playbook] = (),
        incidents: Callable[[], Iterable[Incident]] = list,
    ) -> None:
        self.cfg = settings
        self.playbooks = list(playbooks)
        self.policies = {p.id: p for p in policies}
        self.schedules = dict(schedules)
        self._silences = silences
        self._resolved = resolved_ids
        #: Every worker's incidents (the view): the sources an inhibit rule may find.
        self._incidents = incidents
        self._inhibitor = Inhibitor(settings.inhibit_rules)
        self.levels = Levels(policies=self.policies, schedules=self.schedules,
                             fallback=settings.fallback,
                             repeat_interval_s=settings.repeat_interval_s)

    # -- helpers --------------------------------------------------------------------------
    def fingerprint(self, signal: Signal) -> str:
        """Signals with the same fingerprint join one incident (``group_by``)."""
        parts = {"detector": signal.detector, "severity": signal.severity}
        # The watch is always part of it: incident ids and their partition follow the watch.
        extra = [parts[label] for label in self.cfg.group_by if label != "watch"]
        return ":".join([signal.watch_id, *extra])

    def _labels(self, inc: Incident) -> dict[str, str]:
        return labels_of(inc.watch_id, inc.severity, inc.detector, inc.language)

    def _silence(self, inc: Incident, now: datetime) -> Silence | None:
        return first_match(self._silences(), self._labels(inc), now, resolved=self._resolved())

    def _inhibition(self, inc: Incident) -> Inhibition | None:
        return self._inhibitor.find(inc, self._incidents()) if self._inhibitor else None

    def _inhibition_over(self, source_id: str) -> bool:
        """Whether the incident inhibiting another, or joined by it, is resolved (or gone
        from the view)."""
        return not any(i.id == source_id and i.state != "resolved" for i in self._incidents())

    def _silence_end(self, silence_id: str, overdue: datetime) -> datetime:
        """When silence ``silence_id`` stops holding an incident; ``overdue`` if it already has."""
        resolved = self._resolved()
        for s in self._silences():
            if s.id == silence_id and not (s.incident_id and s.incident_id in resolved):
                return s.ends_at
        return overdue

    def _hold(self, esc: dict[str, Any], signal: Signal) -> None:
        """How long without a signal before auto-resolve: ``resolve_after_s``, or longer for
        evidence over a long window. A surge judged on 6 h of counts sends its next update
        only when the episode grows (hours later); resolving it after 30 min of no news
        would page everyone again at the next update."""
        scale = min(signal.scale_min or 0, _HOLD_MAX_MIN) * 60
        esc["hold_s"] = max(self.cfg.resolve_after_s, scale)

    def _quiet_s(self, esc: dict[str, Any]) -> int:
        return int(esc.get("hold_s", self.cfg.resolve_after_s))

    @staticmethod
    def _notify(entry: dict[str, Any], targets: list[tuple[str, str]],
                kind: NotificationKind, level: int, now: datetime) -> list[Notification]:
        return notify(entry, targets, kind, level, now)

    def _resolve_at(self, entry: dict[str, Any]) -> datetime | None:
        """When auto-resolve is due; None while it may not happen at all.

        Not before ``resolve_after_s`` after the first notification: an incident whose every
        notification waits for quiet hours to end would otherwise resolve before anyone saw it
        (the point of deferring instead of dropping is that someone does). Holding it this way
        rather than resolving at the end of the quiet hours gives the people woken by it the
        usual time to look while it is still open.
        """
        inc, esc = entry["incident"], entry["esc"]
        at = _dt(esc["last_signal_wall"]) + timedelta(seconds=self._quiet_s(esc))
        told = esc.get("notified_wall")
        if told:
            return max(at, _dt(told) + timedelta(seconds=self.cfg.resolve_after_s))
        if inc["state"] == "open" and self.levels.deferred(entry):
            return None  # nobody has been told yet: wait for the end of the quiet hours
        return at

    def overdue(self, entry: dict[str, Any]) -> bool:
        """Open, unacknowledged, every level tried, and nothing waiting for quiet hours."""
        inc, esc = entry["incident"], entry["esc"]
        if inc["state"] != "open" or esc.get("silenced") or not esc["policies"]:
            return False
        return (all(p.get("done") for p in esc["policies"].values())
                and not self.levels.deferred(entry))

    def _start(self, entry: dict[str, Any], now: datetime,
               kind: NotificationKind = "trigger") -> list[Notification]:
        inc = parse(Incident, entry["incident"])
        silence = self._silence(inc, now)
        if silence is not None:
            entry["esc"]["silenced"] = silence.id
            log(entry["incident"], now, "silenced",
                "silenced_by_all" if silence.all else "silenced_by",
                {"silence": silence.id, "until": silence.ends_at.isoformat()},
                by=silence.created_by)
            return []
        entry["esc"]["silenced"] = None
        entry["esc"]["inhibited"] = None  # a fresh start: a reopened one says so again
        entry["incident"]["merged_into"] = None
        target = find_target(parse(Incident, entry["incident"]), self._incidents())
        if target is not None:
            join(entry, target, now)
            return []
        entry["esc"]["merged"] = None
        found = self._inhibition(inc)
        if found is not None:
            hold(entry, found, now)
            return []
        entry["esc"]["notified_wall"] = None  # a new page: auto-resolve waits for it again
        entry["incident"]["level"] = 1  # until a level is told; a reopen starts over
        out: list[Notification] = []
        for pid in entry["esc"]["policies"]:
            entry["esc"]["policies"][pid] = {"level": 0, "round": 0, "done": False}
            out += self.levels.enter(entry, pid, 0, now, kind)
        return out

    # -- events ---------------------------------------------------------------------------
    def on_signal(self, entry: dict[str, Any] | None, signal: Signal, now: datetime,
                  *, language: str | None = None) -> Decision:
        if entry is not None and signal.id in entry["incident"]["signal_ids"]:
            return Decision(None)  # re-delivered signal
        state = entry["incident"]["state"] if entry else None
        if entry is not None and state == "resolved":
            resolved_at = _dt(entry["esc"].get("resolved_wall", _iso(now)))
            if now - resolved_at <= timedelta(seconds=self.cfg.reopen_within_s):
                return self._reopen(entry, signal, now)
            entry = None
        if entry is None:
            return self._open(signal, now, language)
        return self._join(entry, signal, now)

    def _open(self, signal: Signal, now: datetime, language: str | None) -> Decision:
        fp = self.fingerprint(signal)
        incident = Incident(
            id=f"{signal.watch_id}.{stable_id(fp, signal.window_start.isoformat())}",
            fingerprint=fp, watch_id=signal.watch_id, detector=signal.detector,
            severity=signal.severity, opened_at=signal.window_end,
            updated_at=signal.window_end, summary=signal.summary,
            summary_parts=signal.summary_parts, signal_ids=[signal.id],
            samples=signal.samples, language=language,
            trigger_posted_at=signal.trigger_posted_at, evidence=[Evidence.of(signal)],
            story=story_of(signal),
        )
        found = match_playbook(self.playbooks, self._labels(incident))
        if found is not None:
            incident = incident.model_copy(update={"playbook": found.card()})
        pids = route(self._labels(incident), self.cfg.route)
        entry: dict[str, Any] = {
            "incident": incident.model_dump(mode="json"),
            "esc": {"opened_wall": _iso(now), "last_signal_wall": _iso(now), "seq": 0,
                    "notified": [], "policies": {p: {} for p in pids}, "silenced": None,
                    "last_update_wall": _iso(now), "pending_update": False},
        }
        self._hold(entry["esc"], signal)
        log(entry["incident"], now, "signal", "signal", _said(signal),
            parts=signal.summary_parts)
        # Alertmanager's group_wait: the first alert carries whatever joined meanwhile. An
        # incident with a story forming waits at least story_wait_s even when group_wait_s is
        # 0: a storm opens an incident on every watch it matches at about the same moment,
        # its campaign flag comes a few copies later, and the older incident reaches the
        # incidents view (what the other decides on, merge.py) a record's trip later.
        # Anything else pages at once.
        story = forming(signal)
        wait = max(self.cfg.group_wait_s, self.cfg.story_wait_s if story else 0)
        if wait:
            entry["esc"]["waiting_until"] = _iso(now + timedelta(seconds=wait))
            events = ["opened"]
            if story is not None and wait > self.cfg.group_wait_s:
                log(entry["incident"], now, "waiting", "waiting",
                    {"seconds": wait, "text": quote(story.text), "count": story.count})
                events.append("story_held")
            return Decision(entry, [], events)
        return Decision(entry, self._start(entry, now), ["opened"])

    def _reopen(self, entry: dict[str, Any], signal: Signal, now: datetime) -> Decision:
        inc = entry["incident"]
        inc.update(state="open", acked_by=None, acked_at=None, resolved_by=None,
                   resolved_at=None, updated_at=signal.window_end.isoformat(),
                   summary=signal.summary, summary_parts=_parts(signal),
                   severity=signal.severity)
        inc["signal_ids"] = [*inc["signal_ids"], signal.id][-100:]
        _add_evidence(inc, signal)
        _keep_story(inc, signal)
        inc["samples"] = [s.model_dump(mode="json") for s in signal.samples]
        # A reopened incident is a new page: time-to-acknowledge counts from now.
        entry["esc"].update(last_signal_wall=_iso(now), opened_wall=_iso(now),
                            pending_update=False, last_update_wall=_iso(now))
        self._hold(entry["esc"], signal)
        log(inc, now, "reopen", "reopen", _said(signal), parts=signal.summary_parts)
        return Decision(entry, self._start(entry, now, kind="escalate"), ["reopened"])

    def _join(self, entry: dict[str, Any], signal: Signal, now: datetime) -> Decision:
        inc, esc = entry["incident"], entry["esc"]
        inc["signal_ids"] = [*inc["signal_ids"], signal.id][-100:]
        _add_evidence(inc, signal)
        _keep_story(inc, signal)
        inc["updated_at"] = max(_dt(inc["updated_at"]), signal.window_end).isoformat()
        esc["last_signal_wall"] = _iso(now)
        self._hold(esc, signal)
        log(inc, now, "signal", "signal_joined", {"detector": signal.detector, **_said(signal)},
            parts=signal.summary_parts)
        self._join_late(entry, now)
        if _RANK[signal.severity] <= _RANK[inc["severity"]]:
            if signal.episode is not None and signal.detector == inc["detector"]:
                # The episode grew ("2.1x for 3 h" -> "2.4x for 9 h"): the incident says so,
                # without paging anyone again for the same severity.
                inc.update(summary=signal.summary, summary_parts=_parts(signal),
                           samples=[s.model_dump(mode="json") for s in signal.samples])
            return Decision(entry)  # joins silently (Alertmanager's grouping)
        inc.update(severity=signal.severity, summary=signal.summary,
                   summary_parts=_parts(signal),
                   samples=[s.model_dump(mode="json") for s in signal.samples])
        if inc.get("playbook") is None:  # a playbook for critical incidents only, say
            found = match_playbook(self.playbooks, self._labels(parse(Incident, inc)))
            if found is not None:
                inc["playbook"] = found.card().model_dump(mode="json")
        if esc.get("merged") and inc["state"] == "open":
            if not self._inhibition_over(esc["merged"]):
                return Decision(entry, [], ["worsened"])  # the target's people have it
            release(entry, now)
            return Decision(entry, self._start(entry, now), ["worsened"])
        if esc.get("inhibited") and inc["state"] == "open":
            holder = self._inhibition(parse(Incident, inc))
            if holder is not None:
                hold(entry, holder, now)
                return Decision(entry, [], ["worsened"])
            log(inc, now, "inhibited", "not_inhibited", {"source": esc["inhibited"]})
            return Decision(entry, self._start(entry, now), ["worsened"])
        out = self._maybe_update(entry, now)
        # Routes may depend on severity: a warning that turns critical must reach whoever
        # the routing tree sends critical incidents to, from their first level.
        if inc["state"] == "open" and not esc.get("silenced") and not esc.get("waiting_until"):
            for pid, st in esc["policies"].items():
                if st.get("deferred_until"):  # critical breaks through quiet hours by default
                    out += self.levels.recheck(entry, pid, now)
            for pid in route(self._labels(parse(Incident, inc)), self.cfg.route):
                if pid not in esc["policies"]:
                    esc["policies"][pid] = {"level": 0, "round": 0, "done": False}
                    out += self.levels.enter(entry, pid, 0, now, "trigger")
        return Decision(entry, out, ["worsened"])

    def _join_late(self, entry: dict[str, Any], now: datetime) -> None:
        """An open incident that paged before any of its signals named a story joins the
        older incident of that story once one does: its escalation stops there. A real
        storm's first signal comes from its first copies, under ``CAMPAIGN_MIN`` (7 risk
        terms, 8 negatives), so without a group_wait the story is known only after the page.
        Not once someone owns it, nor when another joined it (joins do not chain)."""
        inc = entry["incident"]
        if inc["state"] != "open" or inc.get("joined"):
            return
        target = find_target(parse(Incident, inc), self._incidents())
        if target is not None:
            join(entry, target, now)

    def _maybe_update(self, entry: dict[str, Any], now: datetime) -> list[Notification]:
        """Tell everyone already notified that it got worse, at most once per group_interval."""
        esc = entry["esc"]
        if esc.get("silenced"):
            return []
        due = _dt(esc["last_update_wall"]) + timedelta(seconds=self.cfg.group_interval_s)
        if now < due and esc["notified"]:
            esc["pending_update"] = True
            return []
        esc.update(last_update_wall=_iso(now), pending_update=False)
        targets = [(c, t) for c, t in esc["notified"]]
        return self._notify(entry, targets, "update", entry["incident"]["level"], now)

    def on_ack(self, entry: dict[str, Any] | None, ack: Ack, now: datetime) -> Decision:
        if entry is None:
            return Decision(None, events=["unknown"])
        inc, esc = entry["incident"], entry["esc"]
        if ack.action == "step":
            return self._step_done(entry, ack, now)
        if ack.action == "claim":
            return self._claimed(entry, ack, now)
        if inc["state"] == "resolved" or (ack.action == "ack" and inc["state"] != "open"):
            return Decision(None, events=["noop"])  # idempotent: already done
        opened = _dt(esc["opened_wall"])
        if ack.action == "ack":
            inc.update(state="acknowledged", acked_by=ack.by, acked_at=_iso(now))
            log(inc, now, "ack", "ack", {"source": ack.source}, by=ack.by)
            kind: NotificationKind = "acknowledge"
            events = [f"acked:{(now - opened).total_seconds():.3f}"]
        else:
            inc.update(state="resolved", resolved_by=ack.by, resolved_at=_iso(now))
            esc["resolved_wall"] = _iso(now)
            if ack.source == "auto":
                log(inc, now, "resolve", "resolve_auto", by=ack.by)
            else:
                log(inc, now, "resolve", "resolve", {"source": ack.source}, by=ack.by)
            kind = "resolve"
            events = [f"resolved:{(now - opened).total_seconds():.3f}"]
        targets = [(c, t) for c, t in esc["notified"] if c in UPDATABLE_CHANNELS]
        return Decision(entry, self._notify(entry, targets, kind, inc["level"], now), events)

    def _claimed(self, entry: dict[str, Any], ack: Ack, now: datetime) -> Decision:
        """Who answers one of its sample mentions: on the sample (Slack shows it) and the
        timeline. No state changes and escalation goes on: a claim is not an ack."""
        inc = entry["incident"]
        note = ack.note or "claim changed"
        samples = [s for s in inc.get("samples", []) if s.get("key") == ack.mention]
        if inc["state"] == "resolved" or not samples:
            return Decision(None, events=["noop"])
        said = ack.claim.model_dump(mode="json") if ack.claim is not None else None
        for sample in samples:
            sample.update(claim=note, claim_phrase=said)
        if ack.claim is not None:
            log(inc, now, "claim", "claim", {**ack.claim.params, "mention": ack.mention or ""},
                by=ack.by)
        else:  # from a sender older than claim phrases: its English note as it is
            log(inc, now, "claim", "claim_note", {"note": note, "mention": ack.mention or ""},
                by=ack.by)
        targets = [(c, t) for c, t in entry["esc"]["notified"] if c == "slack"]
        return Decision(entry, self._notify(entry, targets, "update", inc["level"], now),
                        ["claim"])

    def _step_done(self, entry: dict[str, Any], ack: Ack, now: datetime) -> Decision:
        inc = entry["incident"]
        book = inc.get("playbook")
        step = next((s for s in (book or {}).get("steps", []) if s["id"] == ack.step), None)
        if book is None or step is None:
            return Decision(None, events=["unknown-step"])
        if any(d["step"] == ack.step for d in book.get("done", [])):
            return Decision(None, events=["noop"])  # idempotent: already marked
        book.setdefault("done", []).append({"step": ack.step, "by": ack.by, "at": _iso(now)})
        log(inc, now, "step", "step", {"source": ack.source, "step": step["text"]}, by=ack.by)
        # Slack shows the checklist: edit its message in place. Nobody else is told; a step
        # done is progress, not news worth an email or a page.
        targets = [(c, t) for c, t in entry["esc"]["notified"] if c == "slack"]
        return Decision(entry, self._notify(entry, targets, "update", inc["level"], now),
                        ["step"])

    def next_due(self, entry: dict[str, Any]) -> datetime | None:
        """When ``on_tick`` next has something to do for this incident."""
        inc, esc = entry["incident"], entry["esc"]
        if inc["state"] == "resolved":
            return None
        resolve_at = self._resolve_at(entry)
        times = [] if resolve_at is None else [resolve_at]
        if esc.get("waiting_until"):
            return min([*times, _dt(esc["waiting_until"])])
        if esc.get("pending_update"):
            times.append(_dt(esc["last_update_wall"])
                         + timedelta(seconds=self.cfg.group_interval_s))
        if inc["state"] == "open" and esc.get("silenced"):
            # The clock ticks only what is due: without this a silenced incident would never
            # be ticked when its silence ends and would wait, unpaged, for auto-resolve.
            times.append(self._silence_end(esc["silenced"], _dt(esc["opened_wall"])))
        elif inc["state"] == "open" and esc.get("merged"):
            # Like an inhibition: due once the incident it joined resolves.
            if self._inhibition_over(esc["merged"]):
                times.append(_dt(esc["opened_wall"]))
        elif inc["state"] == "open" and esc.get("inhibited"):
            # Like a silence ending: due once the source resolves, so the tick pages it.
            if self._inhibition_over(esc["inhibited"]):
                times.append(_dt(esc["opened_wall"]))
        elif inc["state"] == "open":
            # A deferred level is due at the end of its quiet hours, so the clock ticks it then.
            times += [self.levels.due(pid, st) for pid, st in esc["policies"].items()]
        return min(times, default=None)

    def on_tick(self, entry: dict[str, Any] | None, now: datetime) -> Decision:
        if entry is None or entry["incident"]["state"] == "resolved":
            return Decision(None)
        inc, esc = entry["incident"], entry["esc"]
        resolve_at = self._resolve_at(entry)
        if resolve_at is not None and now >= resolve_at:
            quiet = now - _dt(esc["last_signal_wall"])
            ack = Ack(incident_id=inc["id"], action="resolve", source="auto",
                      by=f"escucha (no signal for {quiet.total_seconds() / 60:.0f} min)", at=now)
            decision = self.on_ack(entry, ack, now)
            decision.source = ack.source
            return decision
        if esc.get("waiting_until"):
            if now < _dt(esc["waiting_until"]):
                return Decision(None)
            esc["waiting_until"] = None
            if inc["state"] != "open":
                return Decision(entry)  # acknowledged while waiting: nobody needs paging
            return Decision(entry, self._start(entry, now))
        out: list[Notification] = []
        events: list[str] = []
        if esc.get("silenced"):
            silence = self._silence(parse(Incident, inc), now)
            if silence is not None:
                if silence.id == esc["silenced"]:
                    return Decision(None)  # still silenced: nothing escalates
                esc["silenced"] = silence.id  # another silence holds it: next_due follows it
                return Decision(entry)
            ended = next((s for s in self._silences() if s.id == esc["silenced"]), None)
            if ended is not None and ended.expired_by:
                # Expired by hand: whoever escalation resumes for should know who ended it.
                log(inc, now, "silenced", "silence_expired", {"silence": ended.id},
                    by=ended.expired_by)
            else:
                log(inc, now, "silenced", "silence_ended")
            if inc["state"] != "open":  # acknowledged while silenced: someone owns it already
                esc["silenced"] = None
                return Decision(entry)
            return Decision(entry, self._start(entry, now))
        if inc["state"] == "open" and esc.get("merged"):
            if not self._inhibition_over(esc["merged"]):
                return Decision(None)  # still joined: the target's people have it
            release(entry, now)
            return Decision(entry, self._start(entry, now))
        if inc["state"] == "open" and (esc.get("inhibited") or self._inhibitor):
            found = self._inhibition(parse(Incident, inc))
            if found is not None:  # a source opened after this one was paged: stop paging
                held = esc.get("inhibited") == found.source.id
                hold(entry, found, now)
                return Decision(None if held else entry)
            if esc.get("inhibited"):
                log(inc, now, "inhibited", "inhibition_ended", {"source": esc["inhibited"]})
                return Decision(entry, self._start(entry, now))
        if esc.get("pending_update"):
            out += self._maybe_update(entry, now)
        if inc["state"] == "open":
            for pid in esc["policies"]:
                notes, happened = self.levels.step(entry, pid, now)
                out += notes
                events += happened
        return Decision(entry, out, events)

    def on_inhibits(self, entry: dict[str, Any] | None, target_id: str,
                    now: datetime) -> Decision:
        """The source's side of an inhibition: its timeline names what it holds back.

        Idempotent: a re-delivered note (at-least-once) adds nothing."""
        if entry is None or not note_inhibits(entry, target_id, now):
            return Decision(None)
        return Decision(entry)

    def on_joined(self, entry: dict[str, Any] | None, joiner_id: str, count: int,
                  now: datetime) -> Decision:
        """The target's side of a join: its timeline and watches name the other watch, and
        whoever was told of it gets an update showing both. Idempotent (re-delivered notes)."""
        if entry is None or not note_joined(entry, joiner_id, count, now):
            return Decision(None)
        if entry["incident"]["state"] == "resolved":
            return Decision(entry)
        return Decision(entry, self._maybe_update(entry, now))

    def on_delivery(self, entry: dict[str, Any] | None, *, channel: str, target: str,
                    outcome: str, detail: str, now: datetime) -> Decision:
        """Receipts go on the timeline, so responders see what reached whom."""
        if entry is None:
            return Decision(None)
        kind = "delivery" if outcome == "delivered" else "failed"
        # Bounded: a channel's error text can be long, and the timeline keeps 200 entries.
        log(entry["incident"], now, kind, "delivery",
            {"channel": channel, "target": target, "outcome": outcome,
             "detail": detail[:_DETAIL_CHARS]})
        return Decision(entry)
