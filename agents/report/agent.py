"""report: scheduled reports, fired by the leader worker and recorded on escucha.reports.

Every 30 s the leader asks the ledger (streams/reports/ledger.py) what is due, renders each due
report once from the aggregates and incidents views, and delivers it to the channels not yet
recorded for that slot; each outcome goes to the ledger. Only the leader runs the timer, so
one worker sends; after a leader change the new one reads the same ledger. Rendering is
CPU-bound and runs in a thread, off the event loop.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from faust.exceptions import NotReady

from agents.report.runner import INTERVAL_S, ReportRunner
from streams.core import topics
from streams.reports.deliver import ReportSender
from streams.reports.ledger import LedgerEntry
from streams.runtime.pipeline import Pipeline

__all__ = ["install"]

log = logging.getLogger(__name__)


def install(pipeline: Pipeline) -> None:
    app, settings = pipeline.app, pipeline.settings
    if not settings.reports:
        return
    ledger = pipeline.views.reports
    out = pipeline.topic(topics.REPORTS)
    slack = settings.notifiers.slack

    async def record(entry: LedgerEntry) -> None:
        await out.send(key=entry.report_id.encode(), value=entry.model_dump_json().encode())
        ledger.record(entry)

    runner = ReportRunner(
        reports=settings.reports, watches={w.id: w for w in settings.watches},
        sender=ReportSender(email=settings.notifiers.email,
                            slack_token=slack.token.get_secret_value() if slack.token else None,
                            slack_base_url=slack.base_url),
        record=record)

    @app.task
    async def report_ledger_task() -> None:
        await ledger.run()

    @app.timer(interval=INTERVAL_S, on_leader=True, name="escucha.reports")
    async def report_timer() -> None:
        aggregates = pipeline.views.aggregates
        incidents = pipeline.views.incidents
        # Deciding on a half-read ledger would resend; on half-read aggregates, under-count.
        if not (ledger.ready.is_set() and aggregates.ready.is_set()
                and incidents.ready.is_set()):
            return
        try:
            await runner.tick(now=datetime.now(UTC), ledger=ledger.entries(),
                              source=aggregates, incidents=incidents.incidents())
        except NotReady:
            return  # shutting down: the next leader reads the ledger and carries on
