"""Liveness and readiness: /healthz, /readyz, and the probe that notices a lost broker."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from streams.runtime.pipeline import Pipeline

__all__ = ["install_health"]

log = logging.getLogger(__name__)


def install_health(pipeline: Pipeline) -> None:
    """/healthz, /readyz and the broker probe that keeps readiness (and escucha_ready) current."""
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
