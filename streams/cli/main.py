"""``escucha``: the umbrella command; each group lives in a module of its own."""

from __future__ import annotations

import os

import click

from streams.cli import (
    bench,
    connectors,
    console,
    feed,
    incidents,
    model,
    report,
    silences,
    store,
    worker,
)
from streams.runtime.logs import setup_logging

__all__ = ["cli", "main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--log-level", default="info", show_default=True,
              type=click.Choice(["debug", "info", "warning", "error"]))
def cli(log_level: str) -> None:
    """escucha: social-listening alerts, from mention to on-call, on Kafka."""
    setup_logging(log_level)



for command in (worker.check_config, worker.run, worker.worker, worker.faust, feed.replay,
                incidents.incidents, bench.bench, model.model, connectors.connectors_cmd,
                connectors.ingest_cmd, console.console, report.report_cmd, silences.silences,
                store.store_cmd):
    cli.add_command(command)
cli.add_command(feed.simulate_cmd, name="simulate")
cli.add_command(feed.backtest_cmd, name="backtest")


def main() -> None:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    cli(prog_name="escucha")


if __name__ == "__main__":
    main()

