"""``escucha connectors`` (what is configured and how it is doing) and ``escucha ingest``."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
from dataclasses import asdict

import click

__all__ = ["connectors_cmd", "ingest_cmd"]


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit} ago"
    return f"{seconds:.0f}s ago"


@click.command("connectors")
@click.option("--config", "config", type=click.Path(dir_okay=False), default=None)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per connector, a list.")
def connectors_cmd(config: str | None, as_json: bool) -> None:
    """List the configured connectors with their health (from the last run's state files)."""
    from streams.cli._common import settings_or_exit
    from streams.runtime.sources import connector_status

    rows = connector_status(settings_or_exit(config))
    if as_json:
        click.echo(json.dumps([asdict(r) for r in rows]))
        return
    click.echo(f"{'name':<24}{'source':<12}{'state':<22}{'events':>8}{'errors':>8}"
               f"{'dead':>6}  last event")
    for r in rows:
        click.echo(f"{r.name:<24}{r.source:<12}{r.state:<22}{r.events:>8}{r.errors:>8}"
                   f"{r.dead_letters:>6}  {_age(r.seconds_since_last_event)}")
        if r.last_error and r.state not in ("ok", "disabled"):
            click.echo(f"{'':<24}last error: {r.last_error}")
    if len(rows) == 1:
        click.echo("(no source connectors configured: see 'connectors:' in "
                   "escucha.example.yaml)")


@click.command("ingest")
@click.option("--config", "config", type=click.Path(dir_okay=False), default=None)
@click.option("--metrics-port", default=6067, show_default=True,
              help="Port of /metrics for the connectors (0: none).")
@click.option("--metrics-host", default="127.0.0.1", show_default=True)
def ingest_cmd(config: str | None, metrics_port: int, metrics_host: str) -> None:
    """Run the configured source connectors (one such process per deployment)."""
    from prometheus_client import CollectorRegistry, start_http_server

    from streams.cli._common import bootstrap_or_exit, settings_or_exit
    from streams.runtime.metrics import Metrics
    from streams.runtime.sources import connectors_for, run_ingest

    settings = settings_or_exit(config)
    bootstrap = bootstrap_or_exit(settings)
    names = [c.name for c in connectors_for(settings)]
    if not names:
        click.echo("escucha: no connectors enabled; add some under 'connectors:' (see "
                   "escucha.example.yaml)", err=True)
        sys.exit(2)
    registry = CollectorRegistry()
    metrics = Metrics(registry=registry, connectors=names)
    if metrics_port:
        start_http_server(metrics_port, addr=metrics_host, registry=registry)
    click.echo(f"escucha ingest: {', '.join(names)} -> {bootstrap}"
               + (f"; metrics on http://{metrics_host}:{metrics_port}/metrics"
                  if metrics_port else ""), err=True)

    async def main() -> None:
        task = asyncio.ensure_future(run_ingest(settings, bootstrap=bootstrap, metrics=metrics))
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, task.cancel)
        with contextlib.suppress(asyncio.CancelledError):
            await task

    asyncio.run(main())
    click.echo("escucha ingest: stopped; cursors kept for the next start", err=True)
