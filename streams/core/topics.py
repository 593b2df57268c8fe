"""Every topic escucha uses, in one place, with the key each is partitioned by.

Tansu cannot add partitions later (no CreatePartitions), so topics are created once with
their final count; the count comes from config (``kafka.partitions``).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ALL", "TopicSpec", "RAW", "ENRICHED", "SIGNALS", "NOTIFICATIONS", "ACKS",
           "DELIVERIES", "DLQ", "ESCALATION", "INCIDENTS", "SILENCES", "AGGREGATES", "REPORTS"]


@dataclass(frozen=True)
class TopicSpec:
    name: str
    key: str  # what the records are keyed by: decides which partition owns the state


RAW = TopicSpec("escucha.mentions.raw", key="mention key (source:id)")
ENRICHED = TopicSpec("escucha.mentions.enriched", key="watch id")
SIGNALS = TopicSpec("escucha.signals", key="watch id")
NOTIFICATIONS = TopicSpec("escucha.notifications", key="incident id")
# Everything that changes an incident is keyed by its watch, so one worker (the owner of the
# watch's partition) sees signals, acks, escalation ticks and receipts in one ordered stream.
ACKS = TopicSpec("escucha.acks", key="watch id (from the incident id)")
DELIVERIES = TopicSpec("escucha.deliveries", key="watch id (from the incident id)")
ESCALATION = TopicSpec("escucha.escalation", key="watch id: escalation clock ticks")
DLQ = TopicSpec("escucha.mentions.dlq", key="stage")
# Read whole by every worker (web API, console, silences): small, append-only views.
INCIDENTS = TopicSpec("escucha.incidents", key="incident id: each change's snapshot")
SILENCES = TopicSpec("escucha.silences", key="silence id")
# Snapshots of per-watch event-time buckets (agents/aggregate/agent.py), each replacing the previous
# one of its bucket; read whole by the console and reports. Keyed by watch id so one watch's
# snapshots stay in order.
AGGREGATES = TopicSpec("escucha.aggregates", key="watch id")
# The reports ledger (agents/report/agent.py): one record per report, slot and channel sent.
REPORTS = TopicSpec("escucha.reports", key="report id")

ALL: tuple[TopicSpec, ...] = (RAW, ENRICHED, SIGNALS, NOTIFICATIONS, ACKS, DELIVERIES,
                              ESCALATION, DLQ, INCIDENTS, SILENCES, AGGREGATES, REPORTS)
