"""Mention store & responders: writes, lag, search, size and retention, and who answers what."""

from __future__ import annotations

from typing import Any

from .panels import dashboard, row, stat, ts
from .promql import NONE, RANGE, increase, quantiles, rate

__all__ = ["store"]

_CLAIMS = "escucha_claims_total"
# Only the leader measures the size and runs retention; the other workers report 0.
_SIZE = "max(escucha_store_size_bytes)"
_SINCE_WRITE = "time() - max{by} (escucha_store_last_write_timestamp_seconds > 0)"


def _claims(title: str, sel: str, description: str) -> Any:
    return stat(title, increase(_CLAIMS, sel=sel, window=RANGE), description=description)


def store() -> dict[str, Any]:
    written, seconds = "escucha_store_mentions_written_total", "escucha_store_write_seconds"
    search = "escucha_store_search_seconds"
    return dashboard("escucha-store", "escucha / Mention store & responders",
                     "The mention store (writes, lag, search, size, retention) and claims.", [
        row("Store now"),
        stat("Workers whose store is unavailable",
             "count(escucha_store_enabled == 1 and escucha_store_up == 0) or vector(0)",
             red_at=1, description="Batches are let go at once until the database answers; "
                                   "`escucha store rebuild` writes them later."),
        stat("Since the last write", _SINCE_WRITE.format(by=""), unit="s", no_value=NONE,
             red_at=600, description="Any worker's last batch written to the store."),
        stat("Store size", _SIZE, unit="bytes", no_value=NONE,
             description="Measured by the leader after each retention round."),
        stat("Mentions let go (range)",
             increase("escucha_store_mentions_let_go_total", window=RANGE), red_at=1),
        row("Writes"),
        ts("Mentions written and classified", [
            (rate(written), "written (new to the store)"),
            (rate("escucha_mentions_classified_total"), "classified (per matched watch)"),
        ], unit="cps", description="A mention read again or matching two watches is written "
                                   "once: written stays under classified."),
        ts("Write latency per batch", [*quantiles(seconds, (0.5, 0.99))], unit="s"),
        ts("Write lag by worker", [(_SINCE_WRITE.format(by=" by (instance)"), "{{instance}}")],
           unit="s", description="Seconds since each worker last wrote a batch."),
        ts("Store errors by operation", [
            (increase("escucha_store_errors_total", by=["operation"]), "{{operation}}"),
            (increase("escucha_store_mentions_let_go_total"), "mentions let go"),
        ], bars=True),
        row("Search and retention"),
        ts("Search latency", [*quantiles(search, (0.5, 0.95, 0.99))], unit="s",
           description="One page of GET /api/mentions or the console's Mentions page."),
        ts("Searches per second", [(rate(f"{search}_count"), "searches")], unit="cps"),
        ts("Store size", [(_SIZE, "size")], unit="bytes"),
        ts("Deleted by retention", [(increase("escucha_store_mentions_expired_total"),
                                     "expired")], bars=True),
        row("Responders"),
        _claims("Claimed (range)", '{action="claim",outcome="done"}',
                "Mentions someone said they are answering."),
        _claims("Answered (range)", '{action="answer",outcome="done"}',
                "Marked answered, with a link to the reply."),
        _claims("Declined (range)", '{action="not-answering",outcome="done"}',
                "Marked not to answer, with a reason."),
        _claims("Conflicts (range)", '{outcome="taken"}',
                "A second person tried to claim what someone else has: no double answer."),
        ts("Claims by action and outcome",
           [(increase(_CLAIMS, by=["action", "outcome"]), "{{action}} {{outcome}}")],
           bars=True, stack=True, w=24),
    ])
