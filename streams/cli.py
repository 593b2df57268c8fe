"""The ``escucha`` command: run, worker, replay, simulate, check-config, faust."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click

from streams.broker import BrokerError, EmbeddedBroker, read_address_file
from streams.logs import setup_logging
from streams.settings import ConfigError, Settings, Watch, load_settings

__all__ = ["main"]

log = logging.getLogger("escucha")
EXIT_CONFIG = 2
_DEMO_WATCHES = [
    Watch(id="acme", name="Acme (brand)", terms=["acme", "acmephone", "acme cloud"]),
    Watch(id="globex", name="Globex (competitor)", terms=["globex", "globexpay"]),
]


def _settings(config: str | None, **overrides: Any) -> Settings:
    try:
        return load_settings(config, **overrides)
    except ConfigError as exc:
        click.echo(f"escucha: {exc}", err=True)
        sys.exit(EXIT_CONFIG)


def _bootstrap_or_exit(settings: Settings) -> str:
    """The cluster to talk to: configured, or the embedded broker `escucha run` announced."""
    found = settings.kafka.bootstrap or read_address_file(settings.datadir)
    if not found:
        click.echo(
            "escucha: no Kafka broker: set ESCUCHA_KAFKA_BOOTSTRAP (or kafka.bootstrap), "
            "or start `escucha run` / `escucha worker` in another terminal first", err=True,
        )
        sys.exit(1)
    return found


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--log-level", default="info", show_default=True,
              type=click.Choice(["debug", "info", "warning", "error"]))
def cli(log_level: str) -> None:
    """escucha: social-listening alerts, from mention to on-call, on Kafka."""
    setup_logging(log_level)


@cli.command("check-config")
@click.argument("file", required=False, type=click.Path(dir_okay=False))
def check_config(file: str | None) -> None:
    """Validate FILE (default: $ESCUCHA_CONFIG or ./escucha.yaml) and the environment."""
    settings = _settings(file)
    click.echo(
        f"ok: {len(settings.watches)} watches "
        f"({', '.join(w.id for w in settings.watches) or 'none'}), "
        f"broker {settings.kafka.bootstrap or 'embedded'}, "
        f"notifiers: console={'on' if settings.notifiers.console.enabled else 'off'}, "
        f"slack={'on' if settings.notifiers.slack.token else 'off'}"
    )


def _run_worker(settings: Settings, *, demo: bool, speed: float,
                connectors: bool = False) -> None:
    import faust

    from streams.app import build_pipeline

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
        from streams.broker import ensure_topics, wait_until_ready

        try:
            wait_until_ready(bootstrap, timeout=settings.kafka.connect_timeout_s or None)
            ensure_topics(bootstrap, partitions=settings.kafka.partitions)
        except BrokerError as exc:
            click.echo(f"escucha: {exc}", err=True)
            sys.exit(1)
    try:
        pipeline = build_pipeline(settings, bootstrap=bootstrap)
        if demo:
            _install_demo(pipeline, speed=speed)
        if connectors:
            from streams.connectors.service import install_connectors

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
    from streams.records import dumps
    from streams.topics import RAW

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


@cli.command()
@click.option("--config", "config", type=click.Path(dir_okay=False), default=None)
@click.option("--demo/--no-demo", default=True, show_default=True,
              help="Feed simulated mentions with a crisis.")
@click.option("--speed", default=20.0, show_default=True,
              help="How much faster than real time the demo's history plays.")
def run(config: str | None, demo: bool, speed: float) -> None:
    """Everything in one process: embedded broker (unless configured), worker, web, demo."""
    settings = _settings(config)
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


@cli.command()
@click.option("--config", "config", type=click.Path(dir_okay=False), default=None)
@click.option("--connectors/--no-connectors", default=False, show_default=True,
              help="Also run the source connectors (one process per deployment should; "
              "`escucha ingest` is the usual place).")
def worker(config: str | None, connectors: bool) -> None:
    """A pipeline worker (starts the embedded broker if no Kafka is configured)."""
    settings = _settings(config)
    if not settings.watches:
        click.echo("escucha: no watches configured: nothing would ever match. "
                   "Add `watches:` to your config (see escucha.example.yaml).", err=True)
        sys.exit(EXIT_CONFIG)
    _run_worker(settings, demo=False, speed=1.0, connectors=connectors)


@cli.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--config", "config", type=click.Path(dir_okay=False), default=None)
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv"]), default=None,
              help="Default: from the file suffix.")
@click.option("--columns", default=None,
              help="CSV column map, e.g. 'text=body,id=tweet_id,author.handle=user'.")
@click.option("--speed", type=float, default=None,
              help="Event-time speed-up (1 = as it happened). Default: as fast as possible.")
@click.option("--source", default="replay", show_default=True)
def replay(file: Path, config: str | None, fmt: str | None, columns: str | None,
           speed: float | None, source: str) -> None:
    """Publish the mentions in FILE (JSONL or CSV) to the pipeline."""
    from streams.connectors.replay import BadLine, ReplayError, parse_column_map, read_file

    settings = _settings(config)
    try:
        colmap = parse_column_map(columns) if columns else None
        items = list(read_file(file, fmt=fmt, columns=colmap, source=source))  # type: ignore[arg-type]
    except ReplayError as exc:
        click.echo(f"escucha: {exc}", err=True)
        sys.exit(1)
    bootstrap = _bootstrap_or_exit(settings)
    bad = [i for i in items if isinstance(i, BadLine)]
    for item in bad:
        click.echo(f"{file}:{item.line}: {item.reason}", err=True)
    sent = asyncio.run(_publish(bootstrap, items, speed=speed, origin=str(file)))
    click.echo(f"replayed {sent} mentions from {file}; {len(bad)} bad lines "
               f"(sent to the dead-letter topic)", err=True)


async def _publish(bootstrap: str, items: list[Any], *, speed: float | None, origin: str) -> int:
    from streams.connectors.pacing import paced
    from streams.connectors.publish import Publisher
    from streams.connectors.replay import BadLine
    from streams.dlq import make_dead_letter

    async with Publisher(bootstrap=bootstrap) as pub:
        for item in items:
            if isinstance(item, BadLine):
                await pub.dead_letter(make_dead_letter(
                    stage="replay", reason=item.reason, payload=item.raw,
                    origin=f"{origin}:{item.line}"))
        mentions = sorted((i for i in items if not isinstance(i, BadLine)),
                          key=lambda m: m.created_at)
        async for mention in paced(mentions, speed=speed):
            await pub.mention(mention)
        return pub.sent


@cli.command()
@click.option("--config", "config", type=click.Path(dir_okay=False), default=None)
@click.option("--rate", default=40.0, show_default=True, help="Mentions per minute per watch.")
@click.option("--minutes", default=30.0, show_default=True, help="Event-time length.")
@click.option("--crisis-at", default=20.0, show_default=True,
              help="Minute (event time) a crisis starts on the first watch; <0 for none.")
@click.option("--speed", type=float, default=None,
              help="Event-time speed-up; default: as fast as possible.")
@click.option("--seed", default=0, show_default=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write JSONL here instead of publishing.")
@click.option("--scenario", default=None, metavar="NAME",
              help="A labelled backtest scenario (e.g. sudden_spike, baseline_week): writes "
              "enriched mentions to --out and labels to --labels-out.")
@click.option("--weeks", type=float, default=None, help="Scenario length (default: its own).")
@click.option("--labels-out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Scenario labels file (default: beside --out, *.labels.json).")
def simulate_cmd(config: str | None, rate: float, minutes: float, crisis_at: float,
                 speed: float | None, seed: int, out: Path | None, scenario: str | None,
                 weeks: float | None, labels_out: Path | None) -> None:
    """Generate realistic mentions (several languages) with an optional crisis."""
    from streams.connectors.simulate import Crisis, SimBrand, demo_scenario, simulate

    if scenario is not None or labels_out is not None:
        _simulate_scenario(scenario, seed=seed, weeks=weeks, out=out, labels_out=labels_out)
        return
    settings = _settings(config)
    if settings.watches:
        brands = [SimBrand(name=w.name, terms=tuple(w.all_terms)) for w in settings.watches]
    else:
        brands, _ = demo_scenario()
    crises = [Crisis(brand=brands[0].name, start=timedelta(minutes=crisis_at),
                     duration=timedelta(minutes=5))] if crisis_at >= 0 else []
    start = datetime.now(UTC) - timedelta(minutes=minutes)
    mentions = list(simulate(brands=brands, start=start, duration=timedelta(minutes=minutes),
                             rate_per_min=rate, crises=crises, seed=seed))
    if out is not None:
        with out.open("w", encoding="utf-8") as fh:
            for m in mentions:
                fh.write(m.model_dump_json() + "\n")
        click.echo(f"wrote {len(mentions)} mentions to {out}", err=True)
        return
    bootstrap = _bootstrap_or_exit(settings)
    sent = asyncio.run(_publish(bootstrap, mentions, speed=speed, origin="simulate"))
    click.echo(f"published {sent} simulated mentions", err=True)


cli.add_command(simulate_cmd, name="simulate")


def _simulate_scenario(name: str | None, *, seed: int, weeks: float | None, out: Path | None,
                       labels_out: Path | None) -> None:
    from streams.connectors.scenarios import SCENARIOS, ScenarioError, write_jsonl, write_labels

    if name is None or out is None:
        click.echo("escucha: --scenario NAME and --out FILE.jsonl go together "
                   "(--labels-out is optional)", err=True)
        sys.exit(EXIT_CONFIG)
    if name not in SCENARIOS:
        click.echo(f"escucha: unknown scenario {name!r}; use one of {', '.join(SCENARIOS)}",
                   err=True)
        sys.exit(EXIT_CONFIG)
    try:
        scenario = SCENARIOS[name](seed=seed, weeks=weeks)
    except ScenarioError as exc:
        click.echo(f"escucha: {exc}", err=True)
        sys.exit(EXIT_CONFIG)
    labels_out = labels_out or out.with_name(out.name.removesuffix(".jsonl") + ".labels.json")
    n = write_jsonl(scenario, out)
    write_labels(scenario, labels_out)
    click.echo(f"wrote {n} enriched mentions of {len(scenario.watches)} watches "
               f"({scenario.start:%Y-%m-%d} to {scenario.end:%Y-%m-%d}) to {out} and "
               f"{len(scenario.labels)} labels to {labels_out}", err=True)


@cli.command("backtest")
@click.argument("file", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option("--labels", "labels_file", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Labelled crises (JSON list of {watch, start, end, kind}).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object of figures.")
@click.option("--config", "config", type=click.Path(dir_okay=False), default=None)
def backtest_cmd(file: Path, labels_file: Path | None, as_json: bool,
                 config: str | None) -> None:
    """Replay enriched mentions (JSONL) through detection; score them against --labels."""
    import json

    from agents import backtest as bt
    from streams.connectors.scenarios import ScenarioError, read_labels

    settings = _settings(config)
    labels = None
    if labels_file is not None:
        try:
            labels = read_labels(labels_file)
        except ScenarioError as exc:
            click.echo(f"escucha: {exc}", err=True)
            sys.exit(EXIT_CONFIG)

    def bad(line: int, reason: str) -> None:
        click.echo(f"{file}:{line}: skipped: {reason}", err=True)

    factory = bt.engine_factory(settings.detect, {w.id: w.all_terms for w in settings.watches})
    result = bt.backtest(bt.read_jsonl(file, on_bad=bad), engine_factory=factory,
                         labels=labels)
    if as_json:
        click.echo(json.dumps(result.to_json()))
        return
    for signal in result.signals:
        click.echo(bt.format_signal(signal))
    for line in bt.format_summary(result, labelled=labels is not None):
        click.echo(line)


@cli.group()
def incidents() -> None:
    """List, acknowledge and resolve incidents through a running worker's API."""


def _api(ctx_url: str | None, token: str | None, config: str | None) -> tuple[str, str]:
    settings = _settings(config)
    url = (ctx_url or settings.api.public_url).rstrip("/")
    token = token or os.environ.get("ESCUCHA_API_TOKEN") or (
        settings.api.tokens[0].get_secret_value() if settings.api.tokens else None)
    if not token:
        click.echo("escucha: no API token: pass --token, set ESCUCHA_API_TOKEN or api.tokens",
                   err=True)
        sys.exit(EXIT_CONFIG)
    return url, token


def _call(method: str, url: str, token: str, body: dict[str, Any] | None = None) -> Any:
    import json
    import urllib.error
    import urllib.request

    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={
        "Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=15) as resp:
            return json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode("utf-8", "replace")[:300]
        click.echo(f"escucha: {method} {url} answered {exc.code}: {detail}", err=True)
        sys.exit(1)
    except OSError as exc:
        click.echo(f"escucha: cannot reach {url}: {exc}", err=True)
        sys.exit(1)


_api_options = [
    click.option("--url", default=None, help="Worker URL (default: api.public_url)."),
    click.option("--token", default=None, help="API token (default: $ESCUCHA_API_TOKEN)."),
    click.option("--config", "config", type=click.Path(dir_okay=False), default=None),
]


def _with_api_options(fn: Any) -> Any:
    for option in reversed(_api_options):
        fn = option(fn)
    return fn


@incidents.command("list")
@click.option("--state", type=click.Choice(["open", "acknowledged", "resolved"]), default=None)
@_with_api_options
def incidents_list(state: str | None, url: str | None, token: str | None,
                   config: str | None) -> None:
    """One line per incident, newest first."""
    base, tok = _api(url, token, config)
    query = f"?state={state}" if state else ""
    found = _call("GET", f"{base}/api/incidents{query}", tok)["incidents"]
    if not found:
        click.echo("no incidents")
    for inc in found:
        who = inc.get("acked_by") or inc.get("resolved_by") or ""
        click.echo(f"{inc['id']:<32} {inc['state']:<12} {inc['severity']:<8} "
                   f"{inc['opened_at'][:16]}  {who:<12} {inc['summary'][:70]}")


def _decide(action: str) -> Any:
    @_with_api_options
    @click.option("--by", default=None, help="Who is acting (default: $USER).")
    @click.argument("incident_id")
    def command(incident_id: str, by: str | None, url: str | None, token: str | None,
                config: str | None) -> None:
        base, tok = _api(url, token, config)
        who = by or os.environ.get("USER") or "cli"
        _call("POST", f"{base}/api/incidents/{incident_id}/{action}", tok,
              {"by": who, "source": "cli"})
        click.echo(f"{action} of {incident_id} accepted")

    command.__doc__ = f"{'Acknowledge' if action == 'ack' else 'Resolve'} INCIDENT_ID."
    return command


incidents.command("ack")(_decide("ack"))
incidents.command("resolve")(_decide("resolve"))


@cli.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.option("--config", "config", type=click.Path(dir_okay=False), default=None)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def faust(config: str | None, args: tuple[str, ...]) -> None:
    """Faust's own commands against escucha's app, e.g. `escucha faust agents`."""
    from streams.app import build_pipeline

    settings = _settings(config)
    bootstrap = _bootstrap_or_exit(settings)
    pipeline = build_pipeline(settings, bootstrap=bootstrap)
    sys.argv = ["escucha faust", *args]
    pipeline.app.main()


def _register_subgroups() -> None:
    from streams.cli_bench import bench
    from streams.cli_connectors import connectors_cmd, ingest_cmd
    from streams.cli_console import console
    from streams.cli_model import model
    from streams.cli_report import report_cmd

    cli.add_command(bench)
    cli.add_command(model)
    cli.add_command(connectors_cmd)
    cli.add_command(ingest_cmd)
    cli.add_command(console)
    cli.add_command(report_cmd)


_register_subgroups()


def main() -> None:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    cli(prog_name="escucha")


if __name__ == "__main__":
    main()
