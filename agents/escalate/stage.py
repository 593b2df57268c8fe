"""The escalate stage without Faust: one control record in, the incident's new state out.

The agent (``agents/escalate/agent.py``) reads signals, acks, clock ticks and delivery
receipts as one stream and hands each record to :meth:`EscalateStage.handle`, which applies
it to the tables (a watch's incidents and the fingerprint index: Faust tables in the worker,
dicts in tests) and returns what must be sent: the incident snapshot and its notifications.
The escalation clock asks :meth:`EscalateStage.due` which incidents need a tick.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import MutableMapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from agents.escalate.incidents import Decision, EscalationEngine
from notifiers import registry
from streams.config.escalation import Level, Policy, TargetSpec
from streams.config.settings import Settings
from streams.core import topics
from streams.core.records import (
    Ack,
    Delivery,
    RecordError,
    Signal,
    dumps,
    parse,
    watch_of,
)
from streams.core.topics import TopicSpec
from streams.runtime.metrics import INCIDENT_STATES, SEVERITIES, Metrics, ended_by

__all__ = ["INHIBITS", "JOINS", "EscalateStage", "Send", "effective_policies"]

#: A note on the escalation topic, ``inhibits <source id> <target id>``, for the worker that
#: owns the source's watch to write on the source's timeline. Incident ids hold no spaces,
#: so it can't be mistaken for a tick (whose value is a bare incident id).
INHIBITS = "inhibits "
#: Likewise ``joins <target id> <joiner id> <mentions>``: an incident of another watch joined
#: the target (one story, one incident: agents/escalate/merge.py).
JOINS = "joins "

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Send:
    """One record for the agent to send."""

    topic: TopicSpec
    key: bytes
    value: bytes


def effective_policies(settings: Settings) -> list[Policy]:
    """The configured policies; unconfigured, one level to every channel that is set up."""
    if "policies" in settings.escalation.model_fields_set:
        return list(settings.escalation.policies)
    targets = []
    for channel in registry.CHANNELS:
        configured = registry.section(settings.notifiers, channel)
        value = channel.default_target(configured) if configured is not None else None
        if value is not None:
            targets.append(TargetSpec(**{channel.name: value}))
    # The console first, as before the registry: its line is the one a newcomer reads.
    targets.sort(key=lambda t: t.kind != "console")
    if not targets:
        log.warning("no notifier is configured: incidents will only be visible over the API")
        return [Policy(id="default", levels=[Level(targets=[TargetSpec(console=True)])])]
    return [Policy(id="default", levels=[Level(targets=targets)])]


def _language(signal: Signal) -> str | None:
    langs = Counter(s.language for s in signal.samples if s.language)
    return langs.most_common(1)[0][0] if langs else None


class EscalateStage:
    def __init__(self, *, engine: EscalationEngine, incidents: MutableMapping[str, Any],
                 by_fingerprint: MutableMapping[str, Any], metrics: Metrics,
                 tick_debounce_s: float = 5.0) -> None:
        self.engine = engine
        #: incident id → the engine's entry (incident + escalation state)
        self.incidents = incidents
        #: grouping fingerprint → the id of its current incident
        self.by_fingerprint = by_fingerprint
        self.metrics = metrics
        self.tick_debounce_s = tick_debounce_s
        self._last_tick: dict[str, float] = {}

    def handle(self, topic: str, raw: bytes, now: datetime) -> list[Send]:
        """Apply one record; raises ``RecordError`` (for the dead-letter topic) if invalid."""
        if topic == topics.SIGNALS.name:
            signal = parse(Signal, raw)
            fp = self.engine.fingerprint(signal)
            current_id = self.by_fingerprint.get(fp)
            entry = self.incidents.get(current_id) if current_id else None
            return self._apply(self.engine.on_signal(entry, signal, now,
                                                     language=_language(signal)), fp)
        if topic == topics.ACKS.name:
            ack = parse(Ack, raw)
            decision = self.engine.on_ack(self.incidents.get(ack.incident_id), ack, now)
            decision.source = decision.source or ack.source
            if "unknown" in decision.events:
                log.warning("ack for unknown incident %s by %r", ack.incident_id, ack.by)
            else:
                self.metrics.acks.labels(ack.source, ack.action).inc()
            return self._apply(decision, None)
        if topic == topics.ESCALATION.name:
            incident_id = raw.decode("utf-8", "replace")
            if incident_id.startswith(INHIBITS):
                source_id, _, target_id = incident_id.removeprefix(INHIBITS).partition(" ")
                return self._apply(self.engine.on_inhibits(
                    self.incidents.get(source_id), target_id, now), None)
            if incident_id.startswith(JOINS):
                return self._joined(incident_id.removeprefix(JOINS), now)
            self._last_tick.pop(incident_id, None)
            return self._apply(self.engine.on_tick(self.incidents.get(incident_id), now), None)
        receipt = parse(Delivery, raw)
        return self._apply(self.engine.on_delivery(
            self.incidents.get(receipt.incident_id), channel=receipt.channel,
            target=receipt.target, outcome=receipt.outcome, detail=receipt.detail,
            now=now), None)

    def _joined(self, note: str, now: datetime) -> list[Send]:
        parts = note.split(" ")
        if len(parts) != 3 or not parts[2].isdigit():
            raise RecordError(f"a join note is 'joins <target> <joiner> <mentions>', not {note!r}")
        target_id, joiner_id, count = parts
        return self._apply(self.engine.on_joined(self.incidents.get(target_id), joiner_id,
                                                 int(count), now), None)

    def _apply(self, decision: Decision, key: str | None) -> list[Send]:
        if decision.entry is None:
            return []
        inc = decision.incident
        assert inc is not None
        self.incidents[inc.id] = decision.entry
        if key is not None:
            self.by_fingerprint[key] = inc.id
        out = [Send(topics.INCIDENTS, inc.id.encode(), dumps(inc))]
        m = self.metrics
        # MTTA/MTTR of people apart from auto-resolves: the 30 minutes an unseen incident
        # waits to resolve itself say nothing about how fast anyone responds.
        by = ended_by(decision.source)
        for event in decision.events:
            name, _, value = event.partition(":")
            if name == "opened":
                m.incidents.labels(inc.severity).inc()
                log.info("incident %s opened for %s", inc.id, inc.watch_id)
            elif name == "acked":
                m.time_to_ack.labels(inc.severity, inc.watch_id, by).observe(float(value))
            elif name == "resolved":
                m.time_to_resolve.labels(inc.severity, inc.watch_id, by).observe(float(value))
            elif name == "escalated":
                m.escalations.labels(value).inc()
            elif name == "story_held":
                m.incidents_story_held.labels(inc.watch_id).inc()
        if decision.joins:  # one per join: the engine hands each new target over once
            m.incidents_joined.labels(inc.watch_id).inc(len(decision.joins))
            log.info("incident %s joined %s", inc.id, ", ".join(t for t, _ in decision.joins))
        out += [Send(topics.NOTIFICATIONS, topics.notification_key(note.channel, note.target),
                     dumps(note)) for note in decision.notifications]
        out += [Send(topics.ESCALATION, watch_of(source).encode(),
                     f"{INHIBITS}{source} {inc.id}".encode()) for source in decision.inhibits]
        out += [Send(topics.ESCALATION, watch_of(target).encode(),
                     f"{JOINS}{target} {inc.id} {count}".encode())
                for target, count in decision.joins]
        return out

    def due(self, now: datetime, mono: float) -> list[str]:
        """Incidents whose next step is due and not already ticked for; updates the gauges.

        A tick is sent at most once per ``tick_debounce_s`` per incident: it comes back
        through the stream (only stream handling may change a table), which takes a moment.
        """
        counts: Counter[tuple[str, str]] = Counter()
        overdue: Counter[str] = Counter()
        inhibited: Counter[str] = Counter()
        ticks = []
        for incident_id, entry in list(self.incidents.items()):
            inc = entry["incident"]
            counts[(inc["severity"], inc["state"])] += 1
            if self.engine.overdue(entry):  # not while waiting for quiet hours to end
                overdue[inc["severity"]] += 1
            if inc["state"] == "open" and entry.get("esc", {}).get("inhibited"):
                inhibited[inc["severity"]] += 1
            due = self.engine.next_due(entry)
            if due is None or due > now:
                continue
            if mono - self._last_tick.get(incident_id, -1e9) < self.tick_debounce_s:
                continue  # a tick is on its way
            self._last_tick[incident_id] = mono
            ticks.append(incident_id)
        for severity in SEVERITIES:
            self.metrics.incidents_overdue.labels(severity).set(overdue[severity])
            self.metrics.incidents_inhibited.labels(severity).set(inhibited[severity])
            for state in INCIDENT_STATES:
                self.metrics.incidents_current.labels(severity, state).set(
                    counts[(severity, state)])
        return ticks

    def untick(self, incident_id: str) -> None:
        """A tick could not be sent: let the next clock round try again."""
        self._last_tick.pop(incident_id, None)
