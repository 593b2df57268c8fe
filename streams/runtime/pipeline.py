"""The Faust app and everything agents share, built from validated settings.

``build_pipeline`` creates the app, the topics, the metrics, the credential gate and the
whole-topic views; ``streams.wiring`` installs the agents and the web routes into it. Nothing
is installed at import time, so one process can build an app for any broker (the embedded
one's port is only known at run time) and tests can build as many as they need.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import faust
from faust.sensors.prometheus import setup_prometheus_sensors
from prometheus_client import CollectorRegistry

from notifiers import registry as channels
from streams.config.settings import Settings
from streams.core import topics
from streams.core.security import CREDENTIAL_KINDS, Gate
from streams.core.silences import from_spec
from streams.core.topics import TopicSpec
from streams.runtime.faust import App
from streams.runtime.metrics import Metrics
from streams.runtime.views import AggregateView, IncidentView, ReportLedgerView, SilenceView

__all__ = ["Pipeline", "Views", "build_pipeline", "faust_settings"]

log = logging.getLogger(__name__)

def faust_settings(settings: Settings, *, bootstrap: str) -> dict[str, Any]:
    """Faust settings tuned for the embedded Tansu broker and fine for real Kafka."""
    datadir = settings.datadir.resolve() / "worker"
    datadir.mkdir(parents=True, exist_ok=True)  # Faust needs the parent to exist
    servers = [f"kafka://{s.strip().removeprefix('kafka://')}" for s in bootstrap.split(",")]
    return {
        "broker": servers,
        "store": "memory://",  # tables recover from their changelog topics at start
        # Tansu has no transactions/idempotent producer: at-least-once plus dedup keys.
        "processing_guarantee": "at_least_once",
        # Default 60 s stalls every rebalance ~30 s on Tansu; measured ~7 s cold start tuned.
        "broker_session_timeout": 10.0,
        "broker_heartbeat_interval": 3.0,
        "broker_rebalance_timeout": 20.0,
        "consumer_auto_offset_reset": "earliest",
        "broker_commit_interval": settings.kafka.commit_interval_s,
        "topic_partitions": settings.kafka.partitions,
        "topic_allow_declare": True,
        "datadir": str(datadir),
        "web_enabled": True,
        "web_bind": settings.web.host,
        "web_host": settings.web.host,
        "web_port": settings.web.port,
        "web_in_thread": False,
        "producer_acks": -1,
        "stream_wait_empty": False,
    }


@dataclass(eq=False)
class Views:
    """The whole-topic views every worker reads, made before any agent is installed.

    Each is run (``view.run()``) by the agent that writes its topic: aggregates by aggregate,
    incidents and silences by escalate, the report ledger by report. Readers (the web, the
    console, reports) wait on ``view.ready`` before trusting what a view holds.
    """

    aggregates: AggregateView
    incidents: IncidentView
    silences: SilenceView
    reports: ReportLedgerView

    @classmethod
    def create(cls, settings: Settings, *, bootstrap: str) -> Views:
        now = datetime.now(UTC)
        static = [from_spec(spec, id=f"config-{i}", now=now)
                  for i, spec in enumerate(settings.escalation.silences)]
        return cls(
            aggregates=AggregateView(bootstrap=bootstrap, topic=topics.AGGREGATES.name),
            incidents=IncidentView(bootstrap=bootstrap, topic=topics.INCIDENTS.name),
            silences=SilenceView(bootstrap=bootstrap, topic=topics.SILENCES.name,
                                 static=static),
            reports=ReportLedgerView(bootstrap=bootstrap, topic=topics.REPORTS.name),
        )


@dataclass(eq=False)
class Pipeline:
    """The app plus what every agent needs: settings, metrics, topics and views."""

    app: App
    settings: Settings
    metrics: Metrics
    registry: CollectorRegistry
    bootstrap: str
    views: Views
    topics: dict[str, faust.TopicT] = field(default_factory=dict)
    health: dict[str, bool] = field(default_factory=dict)  # readiness checks, by name
    #: Every credential check over HTTP goes through it (streams/core/security.py).
    gate: Gate = field(default_factory=Gate)

    def topic(self, spec: TopicSpec) -> faust.TopicT:
        return self.topics[spec.name]


def build_pipeline(settings: Settings, *, bootstrap: str,
                   registry: CollectorRegistry | None = None) -> Pipeline:
    """The Faust app with its topics, metrics and views; no agent or route (streams.wiring)."""
    registry = registry or CollectorRegistry()
    app = App(settings.kafka.app_id, fetch_max_wait_ms=settings.kafka.fetch_max_wait_ms,
              **faust_settings(settings, bootstrap=bootstrap))
    metrics = Metrics(
        registry=registry,
        sources=("simulate", "replay"),
        watches=[w.id for w in settings.watches],
        channels=channels.names,
        detectors=("negative_spike",),
        connectors=["webhook", *(e.name for _, e in settings.connectors.entries()
                                 if e.enabled)],
        topics=[spec.name for spec in topics.ALL],
        credential_kinds=CREDENTIAL_KINDS,
    )
    for source, seconds in settings.connectors.silent_after_s.items():
        metrics.source_silent_after.labels(source).set(seconds)
    gate = Gate(trusted_proxies=settings.web.trusted_proxies,
                on_refused=lambda kind, outcome: metrics.auth_refused.labels(kind,
                                                                             outcome).inc())
    pipeline = Pipeline(app=app, settings=settings, metrics=metrics, registry=registry,
                        bootstrap=bootstrap, gate=gate,
                        views=Views.create(settings, bootstrap=bootstrap))
    app.on_hole = lambda topic, action, n: metrics.hole_messages.labels(topic, action).inc(n)
    for spec in topics.ALL:
        # Raw bytes in and out: records.parse validates, so bad input gets a reason.
        pipeline.topics[spec.name] = app.topic(
            spec.name, key_type=bytes, value_type=bytes,
            key_serializer="raw", value_serializer="raw",
            partitions=settings.kafka.partitions,
        )
    setup_prometheus_sensors(app, registry=registry, name_prefix="escucha_faust")
    app.routes["/metrics"] = "public"  # Faust registers it; Prometheus scrapes it as is
    return pipeline
