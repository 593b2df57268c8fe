"""Where connectors run: inside ``escucha run``, or alone as ``escucha ingest``.

Pulling sources is one job per deployment, not per worker: N workers each polling Reddit
would spend N times the rate limit and rely on dedup for the rest. So ``escucha worker``
does not run them (it serves ``POST /ingest``, which any worker may take); one
``escucha ingest`` process does, with its cursors in ``<datadir>/connectors/`` and its
metrics on its own port. ``escucha run`` (everything in one process) runs them too.

The publisher's own in-process dedup is off here (``dedup_size=0``): each connector's context
dedups, and remembers a key only once the broker confirmed it, so a retried send after a
failed flush is not mistaken for a repeat.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from streams.config.connectors import build_connectors
from streams.config.settings import Settings
from streams.connectors.base import Connector, ConnectorRunner, read_health
from streams.connectors.publish import Publisher
from streams.core.query import to_x_rule

__all__ = ["ConnectorStatus", "connector_status", "install_connectors", "run_ingest",
           "watch_terms"]

log = logging.getLogger(__name__)
#: A running connector writes its health at least every 5 s; twice that and more: not running.
_STALE_S = 30.0


def watch_terms(settings: Settings) -> list[str]:
    """Every positive term of every watch: the keyword prefilter sources use by default."""
    seen: list[str] = []
    for watch in settings.watches:
        for term in watch.all_terms:
            if term not in seen:
                seen.append(term)
    return seen


def _x_rules(settings: Settings) -> dict[str, str]:
    rules = {w.id: to_x_rule(w.query_tree) for w in settings.watches}
    return {k: v for k, v in rules.items() if v}


def connectors_for(settings: Settings) -> list[Connector]:
    return list(build_connectors(settings.connectors, x_rules=_x_rules(settings)))


def install_connectors(pipeline: Any) -> int:
    """Run the configured connectors as a task of the worker; how many there are."""
    settings: Settings = pipeline.settings
    connectors = connectors_for(settings)
    if not connectors:
        return 0

    @pipeline.app.task
    async def connectors_task() -> None:
        async with Publisher(bootstrap=pipeline.bootstrap, dedup_size=0) as publisher:
            runner = ConnectorRunner(connectors, sink=publisher, datadir=settings.datadir,
                                     metrics=pipeline.metrics, terms=watch_terms(settings))
            await runner.run()

    return len(connectors)


async def run_ingest(settings: Settings, *, bootstrap: str, metrics: Any) -> None:
    """``escucha ingest``: every enabled connector until cancelled."""
    connectors = connectors_for(settings)
    if not connectors:
        log.warning("no connectors enabled in the config; nothing to ingest")
        return
    async with Publisher(bootstrap=bootstrap, dedup_size=0) as publisher:
        runner = ConnectorRunner(connectors, sink=publisher, datadir=settings.datadir,
                                 metrics=metrics, terms=watch_terms(settings))
        with contextlib.suppress(asyncio.CancelledError):
            await runner.run()


@dataclass(frozen=True)
class ConnectorStatus:
    name: str
    source: str
    enabled: bool
    state: str
    events: int
    errors: int
    dead_letters: int
    seconds_since_last_event: float | None
    last_error: str | None


def connector_status(settings: Settings, *, now: float | None = None) -> list[ConnectorStatus]:
    """Every configured connector with the health its last run wrote under the datadir."""
    now = time.time() if now is None else now
    rows = [ConnectorStatus(name="webhook", source="webhook",
                            enabled=bool(settings.connectors.webhook.tokens),
                            state="served by every worker at POST /ingest"
                            if settings.connectors.webhook.tokens else "no tokens: refusing",
                            events=0, errors=0, dead_letters=0, seconds_since_last_event=None,
                            last_error=None)]
    for source, entry in settings.connectors.entries():
        health = read_health(Path(settings.datadir), entry.name)
        if health is None:
            state = "disabled" if not entry.enabled else "never ran"
            rows.append(ConnectorStatus(entry.name, source, entry.enabled, state, 0, 0, 0,
                                        None, None))
            continue
        state = health.state
        if state != "stopped" and now - health.updated_at > _STALE_S:
            state = f"not running (last report {now - health.updated_at:.0f}s ago)"
        if not entry.enabled:
            state = "disabled"
        rows.append(ConnectorStatus(
            entry.name, source, entry.enabled, state, health.events, health.errors,
            health.dead_letters, health.seconds_since_last_event(now), health.last_error))
    return rows
