"""escalate: signals, acks, clock ticks and receipts (all keyed by watch) → incidents.

One agent reads the four topics as one stream, so every change to a watch's incidents is
applied in order by the worker that owns that watch's partition. The escalation clock is a
timer that never writes state itself: it only sends a tick, which comes back through the
stream (a table may only change inside stream iteration, and this keeps one writer).
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from faust.exceptions import NotReady

from agents.incidents import Decision, EscalationEngine
from agents.silences import from_spec
from streams import topics
from streams.app import Pipeline
from streams.dlq import dead_letter
from streams.escalation_config import Level, Policy, TargetSpec
from streams.metrics import INCIDENT_STATES, SEVERITIES
from streams.records import (
    Ack,
    Delivery,
    RecordError,
    Signal,
    dumps,
    parse,
    watch_of,
)
from streams.settings import Settings
from streams.stopping import finish_in_hand
from streams.views import IncidentView, SilenceView

__all__ = ["effective_policies", "install"]

log = logging.getLogger(__name__)
_TICK_DEBOUNCE_S = 5.0


def effective_policies(settings: Settings) -> list[Policy]:
    """The configured policies; unconfigured, one level to every channel that is set up."""
    if "policies" in settings.escalation.model_fields_set:
        return list(settings.escalation.policies)
    targets = []
    if settings.notifiers.console.enabled:
        targets.append(TargetSpec(console=True))
    if settings.notifiers.slack.token is not None:
        targets.append(TargetSpec(slack=settings.notifiers.slack.channel))
    if not targets:
        log.warning("no notifier is configured: incidents will only be visible over the API")
        return [Policy(id="default", levels=[Level(targets=[TargetSpec(console=True)])])]
    return [Policy(id="default", levels=[Level(targets=targets)])]


def _language(signal: Signal) -> str | None:
    langs = Counter(s.language for s in signal.samples if s.language)
    return langs.most_common(1)[0][0] if langs else None


def install(pipeline: Pipeline) -> None:
    app, settings, metrics = pipeline.app, pipeline.settings, pipeline.metrics
    bootstrap = pipeline.bootstrap
    now0 = datetime.now(UTC)
    static = [from_spec(spec, id=f"config-{i}", now=now0)
              for i, spec in enumerate(settings.escalation.silences)]
    incident_view = IncidentView(bootstrap=bootstrap, topic=topics.INCIDENTS.name)
    silence_view = SilenceView(bootstrap=bootstrap, topic=topics.SILENCES.name, static=static)
    pipeline.views["incidents"] = incident_view
    pipeline.views["silences"] = silence_view
    engine = EscalationEngine(
        settings=settings.escalation, policies=effective_policies(settings),
        schedules={s.id: s for s in settings.escalation.schedules},
        silences=silence_view.silences, resolved_ids=incident_view.resolved_ids,
        playbooks=settings.playbooks,
    )
    control = app.topic(
        topics.SIGNALS.name, topics.ACKS.name, topics.ESCALATION.name, topics.DELIVERIES.name,
        key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw",
        partitions=settings.kafka.partitions,
    )
    notifications = pipeline.topic(topics.NOTIFICATIONS)
    ticks = pipeline.topic(topics.ESCALATION)
    snapshots = pipeline.topic(topics.INCIDENTS)
    dlq = pipeline.topic(topics.DLQ)
    # Both tables are written only while handling events keyed by watch id, so their
    # changelog partitions follow the watch: the same worker owns all of a watch's incidents.
    incidents = app.Table("escucha.incidents", default=None,
                          partitions=settings.kafka.partitions)
    by_fingerprint = app.Table("escucha.incident-index", default=None,
                               partitions=settings.kafka.partitions)
    last_tick: dict[str, float] = {}

    async def apply(decision: Decision, key: str | None) -> None:
        if decision.entry is None:
            return
        inc = decision.incident
        assert inc is not None
        incidents[inc.id] = decision.entry
        if key is not None:
            by_fingerprint[key] = inc.id
        await snapshots.send(key=inc.id.encode(), value=dumps(inc))
        for event in decision.events:
            name, _, value = event.partition(":")
            if name == "opened":
                metrics.incidents.labels(inc.severity).inc()
                log.info("incident %s opened for %s", inc.id, inc.watch_id)
            elif name == "acked":
                metrics.time_to_ack.labels(inc.severity, inc.watch_id).observe(float(value))
            elif name == "resolved":
                metrics.time_to_resolve.labels(inc.severity, inc.watch_id).observe(float(value))
            elif name == "escalated":
                metrics.escalations.labels(value).inc()
        for note in decision.notifications:
            await notifications.send(key=inc.id.encode(), value=dumps(note))

    async def handle(topic: str, raw: bytes, now: datetime) -> None:
        if topic == topics.SIGNALS.name:
            signal = parse(Signal, raw)
            fp = engine.fingerprint(signal)
            current_id = by_fingerprint.get(fp)
            entry = incidents.get(current_id) if current_id else None
            await apply(engine.on_signal(entry, signal, now, language=_language(signal)), fp)
        elif topic == topics.ACKS.name:
            ack = parse(Ack, raw)
            decision = engine.on_ack(incidents.get(ack.incident_id), ack, now)
            if "unknown" in decision.events:
                log.warning("ack for unknown incident %s by %s", ack.incident_id, ack.by)
            else:
                metrics.acks.labels(ack.source, ack.action).inc()
            await apply(decision, None)
        elif topic == topics.ESCALATION.name:
            incident_id = raw.decode("utf-8", "replace")
            last_tick.pop(incident_id, None)
            await apply(engine.on_tick(incidents.get(incident_id), now), None)
        else:
            receipt = parse(Delivery, raw)
            await apply(engine.on_delivery(
                incidents.get(receipt.incident_id), channel=receipt.channel,
                target=receipt.target, outcome=receipt.outcome, detail=receipt.detail,
                now=now), None)

    @app.agent(control, name="escucha.escalate")
    async def escalate(stream: Any) -> None:
        async for event in stream.events():
            msg = event.message
            try:
                # A stop must not ack a signal or an ack half-applied: streams/stopping.py.
                await finish_in_hand(handle(msg.topic, event.value, datetime.now(UTC)),
                                     what=f"{msg.topic}[{msg.partition}]@{msg.offset}")
            except RecordError as exc:
                await dead_letter(dlq, metrics, stage="escalate", reason=str(exc),
                                  payload=event.value,
                                  origin=f"{msg.topic}[{msg.partition}]@{msg.offset}")

    @app.timer(interval=1.0, name="escucha.escalation-clock")
    async def escalation_clock() -> None:
        now, mono = datetime.now(UTC), time.monotonic()
        counts: Counter[tuple[str, str]] = Counter()
        overdue: Counter[str] = Counter()
        for incident_id, entry in list(incidents.items()):
            inc, esc = entry["incident"], entry["esc"]
            counts[(inc["severity"], inc["state"])] += 1
            if (inc["state"] == "open" and not esc.get("silenced") and esc["policies"]
                    and all(p.get("done") for p in esc["policies"].values())):
                overdue[inc["severity"]] += 1
            due = engine.next_due(entry)
            if due is None or due > now:
                continue
            if mono - last_tick.get(incident_id, -1e9) < _TICK_DEBOUNCE_S:
                continue  # a tick is on its way
            last_tick[incident_id] = mono
            try:
                await ticks.send(key=watch_of(incident_id).encode(),
                                 value=incident_id.encode())
            except NotReady:
                return  # shutting down: the next worker's clock takes over
        for severity in SEVERITIES:
            metrics.incidents_overdue.labels(severity).set(overdue[severity])
            for state in INCIDENT_STATES:
                metrics.incidents_current.labels(severity, state).set(counts[(severity, state)])

    @app.task
    async def incident_view_task() -> None:
        await incident_view.run()

    @app.task
    async def silence_view_task() -> None:
        await silence_view.run()

