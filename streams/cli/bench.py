"""``escucha bench …``: speed is measured by commands, never asserted by a test.

Timing assertions in tests fail on a busy machine and pass on a fast one; a figure printed
beside its baseline says how fast it is here, now.

Each subcommand measures one part against a baseline taken in the same run and prints a
table, or one JSON object with ``--json`` for bench/RESULTS.md and scripts.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

__all__ = ["bench"]


@click.group()
def bench() -> None:
    """Measure escucha on this machine (see bench/RESULTS.md for recorded figures)."""


@bench.command("detect")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object of figures.")
@click.option("--config", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Detection settings to measure (default: the built-in ones).")
@click.option("--seed", default=0, show_default=True)
@click.option("--scenario", "scenarios", multiple=True, metavar="NAME",
              help="Score only these scenarios (repeatable; default: the whole library).")
@click.option("--weeks", type=float, default=None,
              help="Shorten every scenario to this many weeks (a quick run).")
@click.option("--speed-weeks", type=float, default=1.0, show_default=True,
              help="Weeks of 10-watch history to time the backtest on; 0 skips it.")
def bench_detect_cmd(as_json: bool, config: Path | None, seed: int,
                     scenarios: tuple[str, ...], weeks: float | None,
                     speed_weeks: float) -> None:
    """Detection on the labelled scenario library: recall, false signals, time to detect."""
    from agents.detect.scenarios import SCENARIOS, ScenarioError
    from streams.bench.detect import LABELLED, bench_detect, format_report
    from streams.cli._common import settings_or_exit

    settings = settings_or_exit(str(config) if config else None)
    unknown = [s for s in scenarios if s not in SCENARIOS]
    if unknown:
        click.echo(f"escucha: unknown scenario(s) {', '.join(unknown)}; use "
                   f"{', '.join(SCENARIOS)}", err=True)
        sys.exit(2)
    try:
        report = bench_detect(settings.detect, scenarios=scenarios or LABELLED, seed=seed,
                              weeks=weeks, speed_weeks=speed_weeks,
                              progress=lambda msg: click.echo(f"… {msg}", err=True))
    except ScenarioError as exc:
        click.echo(f"escucha: {exc}", err=True)
        sys.exit(2)
    if as_json:
        click.echo(json.dumps(report))
        return
    for line in format_report(report):
        click.echo(line)


@bench.command("match")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object of figures.")
@click.option("--watches", default=200, show_default=True)
@click.option("--terms", default=20, show_default=True, help="Terms per watch.")
@click.option("--mentions", default=20_000, show_default=True)
@click.option("--seconds", default=3.0, show_default=True, help="Least time per measurement.")
@click.option("--seed", default=0, show_default=True)
def bench_match_cmd(as_json: bool, watches: int, terms: int, mentions: int, seconds: float,
                    seed: int) -> None:
    """Watch-query matching throughput on one core, against one regex per watch."""
    from streams.bench.match import bench_match, format_report

    if terms < 16:
        click.echo("escucha: --terms must be at least 16 (names, risk words and exclusions)",
                   err=True)
        sys.exit(2)
    report = bench_match(watches=watches, terms=terms, mentions=mentions, seed=seed,
                         min_seconds=seconds)
    if as_json:
        click.echo(json.dumps(report))
        return
    for line in format_report(report):
        click.echo(line)


@bench.command("aggregate")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object of figures.")
@click.option("--mentions", default=15_000, show_default=True)
@click.option("--days", default=8.0, show_default=True, help="Event time they spread over.")
@click.option("--rate", default=220, show_default=True,
              help="Mentions per 1 s tick (the classifier's pace).")
@click.option("--pause", "pause_s", default=15.0, show_default=True,
              help="Seconds of classifier output arriving at once, once (0: none).")
@click.option("--limit", default=None, type=int,
              help="Snapshots per tick (default: the worker's).")
@click.option("--seed", default=1, show_default=True)
def bench_aggregate_cmd(as_json: bool, mentions: int, days: float, rate: int, pause_s: float,
                        limit: int | None, seed: int) -> None:
    """Aggregate flush time per tick in a back-fill, bounded against every bucket a tick."""
    from agents.aggregate.stage import FLUSH_MAX_SNAPSHOTS
    from streams.bench.aggregate import bench_aggregate, format_report

    report = bench_aggregate(mentions=mentions, days=days, rate=rate, pause_s=pause_s,
                             limit=FLUSH_MAX_SNAPSHOTS if limit is None else limit, seed=seed)
    if as_json:
        click.echo(json.dumps(report))
        return
    for line in format_report(report):
        click.echo(line)


@bench.command("store")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object of figures.")
@click.option("--mentions", default=1_000_000, show_default=True, type=click.IntRange(1000),
              help="Mentions in the store searched.")
@click.option("--reps", default=40, show_default=True, type=click.IntRange(2),
              help="Runs of each query (different 30-day windows).")
@click.option("--path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The SQLite file filled and kept for later runs (default: "
              "<datadir>/bench/store-bench.sqlite3). Never the configured store.")
@click.option("--postgres", "pg_url", default=None, metavar="URL",
              help="Bench a PostgreSQL database instead (an empty one: it is filled).")
@click.option("--more", default=20_000, show_default=True, type=click.IntRange(0),
              help="Mentions written into the full store, timed.")
@click.option("--seed", default=0, show_default=True)
def bench_store_cmd(as_json: bool, mentions: int, reps: int, path: Path | None,
                    pg_url: str | None, more: int, seed: int) -> None:
    """The mention store at a million mentions: writer rows/s against the classifier's
    pace, filtered full-text search p50/p95 against a LIKE scan, size on disk."""
    from agents.store.backends import DatabaseBackend, PostgresBackend, SqliteBackend
    from agents.store.store import MentionStore, StoreError
    from streams.bench.store import bench_store, default_path, format_report
    from streams.cli._common import settings_or_exit

    backend: DatabaseBackend
    if pg_url:
        backend = PostgresBackend(pg_url)
    else:
        backend = SqliteBackend(path or default_path(settings_or_exit(None).datadir))
    store = MentionStore(backend, search_timeout_s=60)
    try:
        report = bench_store(store, mentions=mentions, reps=reps, seed=seed, more=more,
                             progress=lambda msg: click.echo(f"… {msg}", err=True))
    except StoreError as exc:
        click.echo(f"escucha: bench store failed: {exc}", err=True)
        sys.exit(1)
    finally:
        store.close()
    if as_json:
        click.echo(json.dumps(report))
        return
    for line in format_report(report):
        click.echo(line)


def _variant_list(text: str) -> tuple[str, ...]:
    from models.multilingual import RUNTIMES

    if text.strip() == "all":
        return RUNTIMES
    return tuple(dict.fromkeys(v.strip() for v in text.split(",") if v.strip()))


@bench.command("e2e")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object of figures.")
@click.option("--config", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Model settings to measure (default: the built-in ones).")
@click.option("--mentions", default=4000, show_default=True, type=click.IntRange(100),
              help="Mentions per throughput run.")
@click.option("--duplicates", "ratios", multiple=True, type=click.FloatRange(0, 0.95),
              help="Duplicate ratio of a throughput run (repeatable; default 0 and 0.4).")
@click.option("--half-rate-s", default=30.0, show_default=True, type=click.FloatRange(5),
              help="Seconds at half the measured maximum, for the latencies.")
@click.option("--critical", default=20, show_default=True, type=click.IntRange(1, 99),
              help="Critical posts (one alert each) in the half-rate phase.")
@click.option("--naive", "naive_mentions", default=300, show_default=True,
              type=click.IntRange(10), help="Messages through the naive baseline.")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 8))
@click.option("--spike/--no-spike", default=True, show_default=True,
              help="Also time a live 8x spike to its alert (adds up to 4 minutes).")
@click.option("--texts", "texts_file", type=click.Path(dir_okay=False, exists=True,
              path_type=Path), default=None,
              help="Real texts, one per line, instead of simulated ones.")
@click.option("--seed", default=0, show_default=True)
@click.option("--variants", default="", help="Other runtimes of the bundled model to measure "
              "too, comma-separated (torch, torch-bf16, torch-int8, onnx, onnx-int8, "
              "onnx-checked) or 'all': each gets its model-only limit and one throughput run "
              "in its own worker.")
@click.option("--store-cost", is_flag=True, help="Also the mention store's cost: the "
              "configured runtime in fresh workers, store off and on, same texts.")
@click.option("--store-cost-pairs", default=3, show_default=True, type=click.IntRange(1, 20),
              help="Off/on pairs for --store-cost, in alternating order; the median drop is "
              "the figure.")
def bench_e2e_cmd(as_json: bool, config: Path | None, mentions: int, ratios: tuple[float, ...],
                  half_rate_s: float, critical: int, naive_mentions: int, workers: int,
                  spike: bool, texts_file: Path | None, seed: int, variants: str,
                  store_cost: bool, store_cost_pairs: int) -> None:
    """The whole pipeline on the embedded broker against the model's limit and a naive loop:
    throughput, latencies, cold start, CPU and memory."""
    import asyncio

    from streams.bench.e2e import BenchError, E2EOptions, format_report, run_e2e
    from streams.cli._common import settings_or_exit

    settings = settings_or_exit(str(config) if config else None)
    opts = E2EOptions(mentions=mentions, duplicate_ratios=ratios or (0.0, 0.4),
                      half_rate_s=half_rate_s, critical=critical,
                      naive_mentions=naive_mentions, workers=workers, spike=spike,
                      texts_file=texts_file, seed=seed, partitions=settings.kafka.partitions,
                      batch_size=settings.model.batch_size,
                      variants=_variant_list(variants), store_cost=store_cost,
                      store_cost_pairs=store_cost_pairs)
    try:
        report = asyncio.run(run_e2e(settings, opts,
                                     progress=lambda msg: click.echo(f"… {msg}", err=True)))
    except (BenchError, ValueError) as exc:
        click.echo(f"escucha: bench e2e failed: {exc}", err=True)
        sys.exit(1)
    if as_json:
        click.echo(json.dumps(report))
        return
    for line in format_report(report):
        click.echo(line)
