"""``escucha report``: render a report from the stored data, or send a configured one now.

Both read escucha.aggregates and escucha.incidents whole from the broker (configured, or the
embedded one a running worker announced), so they work for any period the topics retain and
need no running worker. ``send`` goes through the scheduler's own delivery code and records
what it sent in the reports ledger, so the schedule does not send the same slot again.
"""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from streams.config.reports import ReportSettings
    from streams.config.settings import Settings
    from streams.core.records import Incident
    from streams.runtime.views import AggregateView

__all__ = ["report_cmd"]

_READ_TIMEOUT_S = 120.0
_QUIET_POLLS = 3


def _parse_end(text: str | None, report: ReportSettings) -> datetime | None:
    """ISO 8601; a naive time or a bare date is in the report's time zone."""
    if text is None:
        return None
    try:
        when = datetime.fromisoformat(text)
    except ValueError as exc:
        raise click.BadParameter(f"{text!r} is not ISO 8601 (e.g. 2026-03-09 or "
                                 "2026-03-09T08:00+01:00)", param_hint="--end") from exc
    if when.tzinfo is None:
        from streams.core.schedule import wall_time

        when = wall_time(when, report.tz)
    return when.astimezone(UTC)


async def _read_views(bootstrap: str) -> tuple[AggregateView, list[Incident]]:
    from streams.core import topics
    from streams.runtime.views import AggregateView, IncidentView

    aggregates = AggregateView(bootstrap=bootstrap, topic=topics.AGGREGATES.name)
    incidents = IncidentView(bootstrap=bootstrap, topic=topics.INCIDENTS.name)
    tasks = [asyncio.create_task(v.run()) for v in (aggregates, incidents)]
    try:
        await asyncio.wait_for(asyncio.gather(aggregates.ready.wait(), incidents.ready.wait()),
                               _READ_TIMEOUT_S)
        # "ready" is the first empty poll, which can come before the first fetch does: wait
        # until nothing new has arrived for a while as well.
        quiet, last = 0, (-1, -1)
        while quiet < _QUIET_POLLS:
            await asyncio.sleep(0.5)
            now = (len(aggregates.items), len(incidents.items))
            quiet, last = (quiet + 1 if now == last else 0), now
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return aggregates, incidents.incidents()


def _load(settings: Settings) -> tuple[AggregateView, list[Incident]]:
    from streams.cli._common import bootstrap_or_exit

    bootstrap = bootstrap_or_exit(settings)
    try:
        return asyncio.run(_read_views(bootstrap))
    except TimeoutError:
        click.echo(f"escucha: could not read the aggregates from {bootstrap} within "
                   f"{_READ_TIMEOUT_S:.0f}s; is the broker up?", err=True)
        sys.exit(1)


def _render_options(fn: Any) -> Any:
    options = [
        click.option("--watch", "watch_ids", multiple=True, metavar="ID",
                     help="Watch to report on (repeat for several)."),
        click.option("--period", default="7d", show_default=True,
                     help="'<N>h', '<N>d', '<N>w' or 'month'."),
        click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
                     help="The PDF to write."),
        click.option("--end", default=None, help="End of the period (ISO 8601; naive = in "
                     "--timezone). Default: the start of today (of this hour for '<N>h')."),
        click.option("--timezone", "tz_name", default="UTC", show_default=True,
                     help="IANA zone of the report's days."),
        click.option("--config", "config", type=click.Path(dir_okay=False), default=None),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def _render(watch_ids: tuple[str, ...], period: str, out: Path | None, end: str | None,
            tz_name: str, config: str | None) -> None:
    from pydantic import ValidationError

    from streams.cli._common import EXIT_CONFIG, settings_or_exit
    from streams.config.reports import ReportSettings
    from streams.reports.data import build_report
    from streams.reports.deliver import render

    if not watch_ids or out is None:
        raise click.UsageError("give --watch ID and --out FILE.pdf (or use `report send`)")
    if out.suffix.lower() != ".pdf":
        raise click.UsageError("--out must name a .pdf file")
    settings = settings_or_exit(config)
    watches = {w.id: w for w in settings.watches}
    unknown = [w for w in watch_ids if w not in watches]
    if unknown:
        click.echo(f"escucha: no watch {', '.join(unknown)} in the configuration (configured: "
                   f"{', '.join(watches) or 'none'})", err=True)
        sys.exit(EXIT_CONFIG)
    try:
        report = ReportSettings(
            id="report", name=" & ".join(watches[w].name for w in watch_ids) + " report",
            schedule="0 0 * * *", timezone=tz_name, period=period, watches=list(watch_ids),
            pdf_dir=out.parent)
    except ValidationError as exc:
        problems = "; ".join(e["msg"].removeprefix("Value error, ") for e in exc.errors())
        raise click.UsageError(problems) from exc
    until = _parse_end(end, report) or report.length.align(datetime.now(UTC), report.tz)
    source, incidents = _load(settings)
    data = build_report(report, watches=watches, source=source, incidents=incidents, end=until)
    rendered = render(data)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(rendered.pdf)
    counts = ", ".join(f"{w.watch_id} {w.current.count:,}" for w in data.watches)
    click.echo(f"wrote {out} ({data.span}; mentions: {counts})", err=True)


@click.group("report", invoke_without_command=True)
@_render_options
@click.pass_context
def report_cmd(ctx: click.Context, watch_ids: tuple[str, ...], period: str, out: Path | None,
               end: str | None, tz_name: str, config: str | None) -> None:
    """Reports from the stored aggregates: `escucha report --watch W --period 7d --out F.pdf`
    renders one (same as `report render`); `report send ID` runs a configured one now."""
    if ctx.invoked_subcommand is None:
        _render(watch_ids, period, out, end, tz_name, config)


@report_cmd.command("render")
@_render_options
def render_cmd(watch_ids: tuple[str, ...], period: str, out: Path | None, end: str | None,
               tz_name: str, config: str | None) -> None:
    """Render a report for --watch over --period into --out (a PDF)."""
    _render(watch_ids, period, out, end, tz_name, config)


async def _record(bootstrap: str, entries: list[Any]) -> None:
    from aiokafka import AIOKafkaProducer

    from streams.core import topics

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for entry in entries:
            await producer.send_and_wait(topics.REPORTS.name, key=entry.report_id.encode(),
                                         value=entry.model_dump_json().encode())
    finally:
        await producer.stop()


@report_cmd.command("send")
@click.argument("report_id")
@click.option("--end", default=None, help="End of the period (ISO 8601; naive = in the "
              "report's zone). Default: the schedule's latest slot, as the scheduler would.")
@click.option("--channel", "channels", multiple=True,
              type=click.Choice(["pdf", "email", "slack"]),
              help="Only these of the report's channels (default: all of them).")
@click.option("--config", "config", type=click.Path(dir_okay=False), default=None)
def send_cmd(report_id: str, end: str | None, channels: tuple[str, ...],
             config: str | None) -> None:
    """Produce the configured report REPORT_ID now and deliver it."""
    from agents.report.runner import run_report
    from streams.cli._common import EXIT_CONFIG, bootstrap_or_exit, settings_or_exit
    from streams.reports.deliver import ReportSender

    settings = settings_or_exit(config)
    report = next((r for r in settings.reports if r.id == report_id), None)
    if report is None:
        click.echo(f"escucha: no report {report_id!r} in the configuration (configured: "
                   f"{', '.join(r.id for r in settings.reports) or 'none'})", err=True)
        sys.exit(EXIT_CONFIG)
    wanted = [c for c in report.channels if not channels or c in channels]
    if not wanted:
        click.echo(f"escucha: report {report_id!r} has none of {', '.join(channels)}", err=True)
        sys.exit(EXIT_CONFIG)
    now = datetime.now(UTC)
    until = _parse_end(end, report)
    slot = until or report.cron.prev_fire(now) or now
    source, incidents = _load(settings)
    slack = settings.notifiers.slack
    sender = ReportSender(email=settings.notifiers.email,
                          slack_token=slack.token.get_secret_value() if slack.token else None,
                          slack_base_url=slack.base_url)

    async def go() -> list[Any]:
        entries, retry = await run_report(
            report, slot=slot, end=until, channels=wanted,
            watches={w.id: w for w in settings.watches}, source=source, incidents=incidents,
            sender=sender, trigger="manual", now=now)
        for channel, exc in retry.items():  # a person is waiting: say it, do not loop
            click.echo(f"{channel}: failed, worth retrying: {exc.reason}", err=True)
        await _record(bootstrap_or_exit(settings), entries)
        return [*entries, *retry]

    results = asyncio.run(go())
    failed = False
    for item in results:
        if isinstance(item, str):
            failed = True
            continue
        failed |= item.outcome != "delivered"
        click.echo(f"{item.channel}: {item.outcome}: {item.detail}", err=True)
    sys.exit(1 if failed else 0)
