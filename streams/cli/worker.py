"""``escucha run | worker | faust | check-config``: start a worker (with the embedded broker
and a demo, or against a cluster)."""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import click

from notifiers.registry import CHANNELS, section
from streams.cli._common import EXIT_CONFIG, bootstrap_or_exit, settings_or_exit
from streams.cli.store_check import check_store
from streams.config.settings import Settings, Watch
from streams.runtime.broker import BrokerError, EmbeddedBroker

__all__ = ["check_config", "faust", "run", "worker"]

log = logging.getLogger("escucha")
_DEMO_WATCHES = [
    Watch(id="acme", name="Acme (brand)", terms=["acme", "acmephone", "acme cloud"]),
    Watch(id="globex", name="Globex (competitor)", terms=["globex", "globexpay"]),
]


@click.command("check-config")
@click.argument("file", required=False, type=click.Path(dir_okay=False))
def check_config(file: str | None) -> None:
    """Validate FILE (default: $ESCUCHA_CONFIG or ./escucha.yaml) and the environment, and
    try the mention store's PostgreSQL (exit 1 when it does not answer)."""
    settings = settings_or_exit(file)
    click.echo(
        f"ok: {len(settings.watches)} watches "
        f"({', '.join(w.id for w in settings.watches) or 'none'}), "
        f"broker {settings.kafka.bootstrap or 'embedded'}, "
        "notifiers: " + ", ".join(
            f"{c.name}={'on' if c.problem(section(settings.notifiers, c), None) is None else 'off'}"
            for c in CHANNELS)
    )
    store = check_store(settings)
    click.echo(store.line)
    if store.problem is not None:
        # Valid, but a worker could not write its store: a deploy's pre-start check stops.
        click.echo(f"error: {store.problem}", err=True)
        sys.exit(1)


def _run_worker(settings: Settings, *, demo: bool, speed: float,
                connectors: bool = False) -> None:
    import faust

    from streams.wiring import build_worker

    broker: EmbeddedBroker | None = None
    bootstrap = settings.kafka.bootstrap
    if not bootstrap:
        broker = EmbeddedBroker(partitions=settings.kafka.partitions,
                                datadir=settings.datadir.resolve(),
                                log_path=settings.datadir.resolve() / "broker.log")
        settings.datadir.mkdir(parents=True, exist_ok=True)
        try:
            bootstrap = broker.start()
        except BrokerError as exc:
            click.echo(f"escucha: {exc}", err=True)
            sys.exit(1)
    else:
        from streams.runtime.broker import ensure_topics, wait_until_ready

        try:
            wait_until_ready(bootstrap, timeout=settings.kafka.connect_timeout_s or None)
            ensure_topics(bootstrap, partitions=settings.kafka.partitions,
                          stream_days=settings.kafka.stream_retention_days,
                          history_days=settings.kafka.history_retention_days)
        except BrokerError as exc:
            click.echo(f"escucha: {exc}", err=True)
            sys.exit(1)
    try:
        pipeline = build_worker(settings, bootstrap=bootstrap)
        if demo:
            _install_demo(pipeline, speed=speed)
        if connectors:
            from streams.runtime.sources import install_connectors

            count = install_connectors(pipeline)
            if count:
                click.echo(f"escucha: running {count} source connector(s); "
                           "`escucha connectors` shows their health", err=True)
        where = f"embedded broker (Tansu) on {bootstrap}" if broker else f"Kafka at {bootstrap}"
        web = f"http://{settings.web.host}:{settings.web.port}"
        click.echo(
            f"escucha: {where}; web on {web}/ (/healthz, /metrics); incidents print below. "
            "Ctrl-C stops everything.", err=True)
        if settings.console.enabled:
            # The path, never the token itself: terminals end up in logs and screen shares.
            how = ("sign in with the token in " + str(settings.datadir / "console-token")
                   if not settings.console.users and not settings.console.tokens
                   else "sign in as a console user")
            click.echo(f"escucha: incident console at {web}/console ({how})", err=True)
        worker = faust.Worker(pipeline.app, loglevel="warning", quiet=True,
                              override_logging=False)
        worker.execute_from_commandline()
    finally:
        if broker is not None:
            broker.stop()


def _install_demo(pipeline: Any, *, speed: float) -> None:
    from streams.connectors.simulate import Crisis, SimBrand, demo_scenario, simulate
    from streams.core.records import dumps
    from streams.core.topics import RAW

    watches = pipeline.settings.watches
    # History played `speed`x faster than real time gives detection its baseline; the crisis
    # starts 11 minutes into it, i.e. ~11*60/speed seconds after start-up.
    crisis_at = timedelta(minutes=11)
    brands, crises = demo_scenario(crisis_at=crisis_at)
    if [w.id for w in watches] != [w.id for w in _DEMO_WATCHES]:
        # Configured watches: simulate them instead, with the crisis on the first one.
        brands = [SimBrand(name=w.name, terms=tuple(w.all_terms)) for w in watches]
        crises = [Crisis(brand=brands[0].name, start=crisis_at, duration=crises[0].duration,
                         multiplier=crises[0].multiplier, topic=crises[0].topic)]
    now = datetime.now(UTC)
    stream = simulate(brands=brands, start=now - timedelta(minutes=12),
                      duration=timedelta(days=1), rate_per_min=40, crises=crises,
                      seed=int(now.timestamp()))
    raw = pipeline.topic(RAW)
    click.echo(
        f"escucha demo: simulating mentions for {', '.join(w.id for w in watches)}; "
        f"a crisis for {watches[0].id!r} begins in "
        f"~{crisis_at.total_seconds() / speed:.0f}s",
        err=True,
    )

    @pipeline.app.task
    async def demo_source() -> None:
        from faust.exceptions import NotReady

        async for mention in _catch_up_then_realtime(stream, speed=speed):
            try:
                await raw.send(key=mention.key.encode(), value=dumps(mention))
            except NotReady:
                return  # Ctrl-C: the worker stopped its producer; the demo ends with it


async def _catch_up_then_realtime(mentions: Iterator[Any], *, speed: float) -> AsyncIterator[Any]:
    """Event time runs `speed`x faster than the wall clock until it catches up, then 1x."""
    first: float | None = None
    wall0 = time.time()
    for mention in mentions:
        te = mention.created_at.timestamp()
        if first is None:
            first = te
        target = max(wall0 + (te - first) / speed, te)
        delay = target - time.time()
        if delay > 0:
            await asyncio.sleep(delay)
        yield mention


@click.command()
@click.option("--config", "config", type=click.Path(dir_okay=False), default=None)
@click.option("--demo/--no-demo", default=True, show_default=True,
              help="Feed simulated mentions with a crisis.")
@click.option("--speed", default=20.0, show_default=True,
              help="How much faster than real time the demo's history plays.")
def run(config: str | None, demo: bool, speed: float) -> None:
    """Everything in one process: embedded broker (unless configured), worker, web, demo."""
    settings = settings_or_exit(config)
    if not settings.watches:
        settings = settings.model_copy(update={"watches": _DEMO_WATCHES})
        click.echo("escucha: no watches configured; using the demo watches acme and globex",
                   err=True)
    if demo and "warmup_min" not in settings.detect.model_fields_set:
        # The demo plays 12 minutes of history, in order; a real watch learns for
        # detect.warmup_min with detect.lateness_min of allowed disorder.
        settings = settings.model_copy(update={
            "detect": settings.detect.model_copy(update={"warmup_min": 6, "lateness_min": 1})})
    _run_worker(settings, demo=demo, speed=speed, connectors=True)


@click.command()
@click.option("--config", "config", type=click.Path(dir_okay=False), default=None)
@click.option("--connectors/--no-connectors", default=False, show_default=True,
              help="Also run the source connectors (one process per deployment should; "
              "`escucha ingest` is the usual place).")
def worker(config: str | None, connectors: bool) -> None:
    """A pipeline worker (starts the embedded broker if no Kafka is configured)."""
    settings = settings_or_exit(config)
    if not settings.watches:
        click.echo("escucha: no watches configured: nothing would ever match. "
                   "Add `watches:` to your config (see escucha.example.yaml).", err=True)
        sys.exit(EXIT_CONFIG)
    _run_worker(settings, demo=False, speed=1.0, connectors=connectors)



@click.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.option("--config", "config", type=click.Path(dir_okay=False), default=None)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def faust(config: str | None, args: tuple[str, ...]) -> None:
    """Faust's own commands against escucha's app, e.g. `escucha faust agents`."""
    from streams.wiring import build_worker

    settings = settings_or_exit(config)
    bootstrap = bootstrap_or_exit(settings)
    pipeline = build_worker(settings, bootstrap=bootstrap)
    sys.argv = ["escucha faust", *args]
    pipeline.app.main()

