"""``escucha replay | simulate | backtest``: put mentions on the raw topic, or replay
labelled streams through the detectors."""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click

from streams.cli._common import EXIT_CONFIG, bootstrap_or_exit, settings_or_exit

__all__ = ["backtest_cmd", "replay", "simulate_cmd"]

@click.command()
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

    settings = settings_or_exit(config)
    try:
        colmap = parse_column_map(columns) if columns else None
        items = list(read_file(file, fmt=fmt, columns=colmap, source=source))  # type: ignore[arg-type]
    except ReplayError as exc:
        click.echo(f"escucha: {exc}", err=True)
        sys.exit(1)
    bootstrap = bootstrap_or_exit(settings)
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
    from streams.runtime.dlq import make_dead_letter

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


@click.command()
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
    settings = settings_or_exit(config)
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
    bootstrap = bootstrap_or_exit(settings)
    sent = asyncio.run(_publish(bootstrap, mentions, speed=speed, origin="simulate"))
    click.echo(f"published {sent} simulated mentions", err=True)




def _simulate_scenario(name: str | None, *, seed: int, weeks: float | None, out: Path | None,
                       labels_out: Path | None) -> None:
    from agents.detect.scenarios import SCENARIOS, ScenarioError, write_jsonl, write_labels

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


@click.command("backtest")
@click.argument("file", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option("--labels", "labels_file", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Labelled crises (JSON list of {watch, start, end, kind}).")
@click.option("--json", "as_json", is_flag=True,
              help="Print one JSON document: figures, every signal, every bad line.")
@click.option("--config", "config", type=click.Path(dir_okay=False), default=None)
@click.option("--format", "fmt", type=click.Choice(["auto", "enriched", "jsonl", "csv"]),
              default="auto", show_default=True,
              help="enriched: JSON lines of enriched mentions; jsonl, csv: raw mentions, "
              "classified with the config's model and watches first. auto: csv for .csv or "
              "--columns, else what the first JSON line looks like.")
@click.option("--columns", default=None,
              help="Raw CSV column map, as for replay: 'text=body,id=tweet_id,author.handle=user'.")
@click.option("--source", default="replay", show_default=True,
              help="Source of raw records that name none (as for replay).")
def backtest_cmd(file: Path, labels_file: Path | None, as_json: bool, config: str | None,
                 fmt: str, columns: str | None, source: str) -> None:
    """Replay a history through classification (raw files) and detection; print every signal,
    and score them against --labels."""
    import json

    from agents.detect import backtest as bt
    from agents.detect.history import HistoryError, backtest_file
    from agents.detect.scenarios import ScenarioError, read_labels
    from streams.connectors.replay import ReplayError, parse_column_map

    settings = settings_or_exit(config)
    labels = None
    try:
        colmap = parse_column_map(columns) if columns else None
        if labels_file is not None:
            labels = read_labels(labels_file)
    except (ReplayError, ScenarioError) as exc:
        click.echo(f"escucha: {exc}", err=True)
        sys.exit(EXIT_CONFIG)

    def bad(line: int, reason: str) -> None:
        click.echo(f"{file}:{line}: skipped: {reason}", err=True)

    try:
        result = backtest_file(file, settings=settings, columns=colmap, source=source,
                               fmt=None if fmt == "auto" else fmt,  # type: ignore[arg-type]
                               labels=labels, on_bad=bad)
    except HistoryError as exc:
        click.echo(f"escucha: {exc}", err=True)
        sys.exit(EXIT_CONFIG)
    if as_json:
        click.echo(json.dumps(result.to_json()))
        return
    for signal in result.signals:
        click.echo(bt.format_signal(signal))
    if result.format != "enriched":
        click.echo(f"read {result.read} {result.format} mentions, {result.matched} matched a "
                   f"watch, {len(result.bad)} bad lines")
    elif result.bad:
        click.echo(f"{len(result.bad)} bad lines")
    for line in bt.format_summary(result, labelled=labels is not None):
        click.echo(line)
