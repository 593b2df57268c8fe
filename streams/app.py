"""The Faust app and everything agents share, built from validated settings.

Agents are installed by ``build_pipeline`` instead of at import time, so one process can
build an app for any broker (the embedded one's port is only known at run time) and tests
can build as many as they need.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import faust
from faust.sensors.prometheus import setup_prometheus_sensors
from prometheus_client import CollectorRegistry

from streams import topics
from streams.metrics import Metrics
from streams.security import CREDENTIAL_KINDS, Gate
from streams.settings import Settings
from streams.topics import TopicSpec
from streams.transport import App

__all__ = ["Pipeline", "build_pipeline", "faust_settings"]

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
class Pipeline:
    """The app plus what every agent needs: settings, metrics and the topic handles."""

    app: App
    settings: Settings
    metrics: Metrics
    registry: CollectorRegistry
    bootstrap: str
    topics: dict[str, faust.TopicT] = field(default_factory=dict)
    views: dict[str, Any] = field(default_factory=dict)  # whole-topic views (streams.views)
    health: dict[str, bool] = field(default_factory=dict)  # readiness checks, by name
    #: Every credential check over HTTP goes through it (streams/security.py).
    gate: Gate = field(default_factory=Gate)

    def topic(self, spec: TopicSpec) -> faust.TopicT:
        return self.topics[spec.name]


def build_pipeline(
    settings: Settings,
    *,
    bootstrap: str,
    registry: CollectorRegistry | None = None,
    install_agents: bool = True,
) -> Pipeline:
    """Create the Faust app with every agent, web route and metric installed."""
    registry = registry or CollectorRegistry()
    app = App(settings.kafka.app_id, fetch_max_wait_ms=settings.kafka.fetch_max_wait_ms,
              **faust_settings(settings, bootstrap=bootstrap))
    channels = ["console", "slack", "email", "push", "pagerduty", "webhook"]
    metrics = Metrics(
        registry=registry,
        sources=("simulate", "replay"),
        watches=[w.id for w in settings.watches],
        channels=channels,
        detectors=("negative_spike",),
        connectors=["webhook", *(e.name for _, e in settings.connectors.entries()
                                 if e.enabled)],
        topics=[spec.name for spec in topics.ALL],
        credential_kinds=CREDENTIAL_KINDS,
    )
    gate = Gate(trusted_proxies=settings.web.trusted_proxies,
                on_refused=lambda kind, outcome: metrics.auth_refused.labels(kind,
                                                                             outcome).inc())
    pipeline = Pipeline(app=app, settings=settings, metrics=metrics, registry=registry,
                        bootstrap=bootstrap, gate=gate)
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
    _install_health(pipeline)
    if install_agents:
        from datetime import timedelta

        from agents import aggregate, classify, deliver, detect, escalate, report
        from streams.connectors.webhook import install_ingest
        from streams.links import LinkSigner, load_or_create_secret
        from streams.views import AggregateView
        from streams.web import install_api

        secret = (settings.api.link_secret.get_secret_value().encode()
                  if settings.api.link_secret else load_or_create_secret(settings.datadir))
        links = LinkSigner(secret=secret, base_url=settings.api.public_url,
                           ttl=timedelta(seconds=settings.api.link_ttl_s))
        # Read whole by every worker (console overview, reports); the aggregate agent runs it.
        pipeline.views["aggregates"] = AggregateView(bootstrap=bootstrap,
                                                     topic=topics.AGGREGATES.name)
        classify.install(pipeline)
        detect.install(pipeline)
        aggregate.install(pipeline)
        escalate.install(pipeline)
        report.install(pipeline)  # after escalate: it reads the incidents view
        deliver.install(pipeline, links=links)
        install_api(pipeline, links=links)
        if settings.console.enabled:
            from streams.console.routes import install_console

            install_console(pipeline, secret=secret)
        install_ingest(pipeline)
    return pipeline


def _install_health(pipeline: Pipeline) -> None:
    app = pipeline.app
    pipeline.health.update(broker=False, model=False, partitions=False)

    @app.serve("/healthz", access="public")
    async def healthz(self: Any, request: Any) -> Any:
        """The process is up (liveness): nothing else is checked."""
        return self.json({"status": "ok", "app": app.conf.id})

    def readiness() -> tuple[bool, dict[str, bool]]:
        checks = dict(pipeline.health)
        try:
            checks["partitions"] = bool(app.consumer.assignment())
        except Exception:  # consumer not started yet (or stopping): not ready
            checks["partitions"] = False
        ready = all(checks.values())
        pipeline.metrics.ready.set(1 if ready else 0)
        return ready, checks

    @app.serve("/readyz", access="public")
    async def readyz(self: Any, request: Any) -> Any:
        """Ready for traffic: broker reachable, model loaded, partitions assigned."""
        ready, checks = readiness()
        return self.json({"ready": ready, "checks": checks}, status=200 if ready else 503)

    lost_at: list[float | None] = [None]  # when the probe last lost the broker

    @app.timer(interval=2.0, name="escucha.broker-probe")
    async def broker_probe() -> None:
        # A TCP connect: cheap, and it notices a broker that has gone away long before the
        # Kafka client's own timeouts do. Also keeps escucha_ready current between scrapes.
        was = pipeline.health.get("broker")
        now = pipeline.health["broker"] = await _reachable(pipeline.bootstrap)
        # Said once each way: the Kafka client's own errors repeat per node and retry.
        if was and not now:
            lost_at[0] = time.monotonic()
            log.error("lost the Kafka broker at %s: not ready (/readyz 503) until it "
                      "returns; the Kafka clients keep retrying", pipeline.bootstrap)
        elif now and lost_at[0] is not None:
            log.warning("the Kafka broker at %s is back after %.0fs; rejoining the group",
                        pipeline.bootstrap, time.monotonic() - lost_at[0])
            lost_at[0] = None
        readiness()
        pipeline.metrics.tasks.set(len(asyncio.all_tasks()))


async def _reachable(bootstrap: str, seconds: float = 1.5) -> bool:
    for server in bootstrap.split(","):
        host, _, port = server.strip().removeprefix("kafka://").rpartition(":")
        try:
            _, writer = await asyncio.wait_for(
                asyncio.open_connection(host.strip("[]"), int(port)), seconds)
        except (OSError, ValueError, TimeoutError):
            continue
        writer.close()
        return True
    return False
