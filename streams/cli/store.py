"""``escucha store …``: the mention store's maintenance (``rebuild``)."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import click
from aiokafka import AIOKafkaConsumer, TopicPartition

from streams.cli._common import bootstrap_or_exit, settings_or_exit
from streams.core import topics

__all__ = ["store_cmd"]


async def read_topic(bootstrap: str, topic: str, *, idle_s: float = 3.0
                     ) -> AsyncIterator[bytes]:
    """Every record of ``topic`` from its beginning, until each partition has reached the
    end it had when reading began and nothing more has come for ``idle_s`` (a broker may
    report the end a batch short). No consumer group: nothing is committed, nothing moves
    the workers' own positions."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None,
                                enable_auto_commit=False, auto_offset_reset="earliest")
    await consumer.start()
    try:
        await consumer.topics()  # fetches the cluster's metadata
        found = consumer.partitions_for_topic(topic) or set()
        parts = [TopicPartition(topic, p) for p in sorted(found)]
        if not parts:
            return
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        ends = await consumer.end_offsets(parts)
        quiet_since = time.monotonic()
        while True:
            batch = await consumer.getmany(timeout_ms=500, max_records=2000)
            records = [r for rs in batch.values() for r in rs]
            for record in records:
                if record.value is not None:
                    yield record.value
            if records:
                quiet_since = time.monotonic()
                continue
            positions = {tp: await consumer.position(tp) for tp in parts}
            if all(positions[tp] >= ends[tp] for tp in parts) and \
                    time.monotonic() - quiet_since >= idle_s:
                return
    finally:
        await consumer.stop()


@click.group("store")
def store_cmd() -> None:
    """The mention store: where `GET /api/mentions` searches (see README, "Mention store")."""


@store_cmd.command("rebuild")
@click.option("--config", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Config file (default: $ESCUCHA_CONFIG or ./escucha.yaml).")
@click.option("--clear", is_flag=True,
              help="Empty the store first (stop the workers: they write it too). Without "
              "it, what the store misses is added and what it holds stays.")
@click.option("--batch", default=1000, show_default=True, type=click.IntRange(1, 10_000),
              help="Mentions per transaction.")
@click.option("--idle-s", default=3.0, show_default=True, type=click.FloatRange(0.5),
              help="Quiet seconds at the topic's end before stopping.")
def rebuild_cmd(config: Path | None, clear: bool, batch: int, idle_s: float) -> None:
    """Write the store again from the enriched topic, from its beginning (idempotent)."""
    from agents.store import store_for
    from agents.store.rebuild import RebuildReport, rebuild
    from agents.store.store import StoreError

    settings = settings_or_exit(str(config) if config else None)
    bootstrap = bootstrap_or_exit(settings)
    store = store_for(settings)
    try:
        store.open()
        if clear:
            click.echo(f"clearing the store at {store.location}", err=True)
            store.clear()
    except StoreError as exc:
        click.echo(f"escucha: {exc}", err=True)
        sys.exit(1)
    shown = [time.monotonic()]

    def progress(r: RebuildReport) -> None:
        if time.monotonic() - shown[0] > 5:
            shown[0] = time.monotonic()
            click.echo(f"… {r.read:,} read, {r.stored:,} new", err=True)

    click.echo(f"rebuilding {store.location} from {topics.ENRICHED.name} at {bootstrap}",
               err=True)
    try:
        report = asyncio.run(rebuild(read_topic(bootstrap, topics.ENRICHED.name,
                                                idle_s=idle_s),
                                     store, batch=batch, progress=progress))
        store.analyze()
    except StoreError as exc:
        click.echo(f"escucha: rebuild stopped: {exc}; run it again (it is idempotent)",
                   err=True)
        sys.exit(1)
    finally:
        store.close()
    # Refused records were dead-lettered when they first came: said again, not an error.
    for reason in report.refused[:20]:
        click.echo(f"refused: {reason}", err=True)
    click.echo(f"read {report.read:,} records in {report.seconds:.1f}s: {report.stored:,} "
               f"mentions new to the store, {len(report.refused):,} refused, "
               f"{report.not_enriched:,} not enriched mentions")
