"""Every topic escucha uses, in one place, with the key each is partitioned by and how long
the broker must keep it.

Tansu cannot add partitions later (no CreatePartitions), so topics are created once with
their final count; the count comes from config (``kafka.partitions``).

Retention, per topic (``kind``), as escucha creates them (streams/runtime/broker.py):

- ``stream``: what flows through the stages, kept ``kafka.stream_retention_days`` (7): long
  enough for any consumer to catch up after an outage, never read whole.
- ``history``: the aggregates and the reports ledger, read whole by every worker, kept
  ``kafka.history_retention_days`` (400): reports of a period need that period's buckets,
  and a ledger entry must outlive its slot or the slot is sent again.
- ``compact``: incidents and silences, one live value per key (their id): compaction keeps
  the latest snapshot of each, for ever.

A topic a stage consumes in a consumer group (``consumed``) must not be compacted: compaction
leaves gaps in the offsets, which the consumer would wait on as unacknowledged (the hole
watch, streams/runtime/holes.py), and deletes records nobody has processed yet.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["ALL", "TopicSpec", "RAW", "ENRICHED", "SIGNALS", "NOTIFICATIONS", "ACKS",
           "DELIVERIES", "DLQ", "ESCALATION", "INCIDENTS", "SILENCES", "AGGREGATES", "REPORTS",
           "INGESTED", "Retention", "notification_key"]

Retention = Literal["stream", "history", "compact"]


@dataclass(frozen=True)
class TopicSpec:
    name: str
    key: str  # what the records are keyed by: decides which partition owns the state
    kind: Retention = "stream"
    #: Read by a stage in the consumer group (an input), not only by whole-topic views.
    consumed: bool = False


RAW = TopicSpec("escucha.mentions.raw", key="mention key (source:id)", consumed=True)
ENRICHED = TopicSpec("escucha.mentions.enriched", key="watch id", consumed=True)
SIGNALS = TopicSpec("escucha.signals", key="watch id", consumed=True)
# Keyed by the target, not the incident: one worker (the owner of the target's partition) sees
# every notification to a target, so its rate limit and digest hold across workers, and their
# state (agents/deliver/agent.py's tables) is written to that partition's changelog.
NOTIFICATIONS = TopicSpec("escucha.notifications", key="channel:target (notification_key)",
                          consumed=True)
# Everything that changes an incident is keyed by its watch, so one worker (the owner of the
# watch's partition) sees signals, acks, escalation ticks and receipts in one ordered stream.
ACKS = TopicSpec("escucha.acks", key="watch id (from the incident id)", consumed=True)
DELIVERIES = TopicSpec("escucha.deliveries", key="watch id (from the incident id)",
                       consumed=True)
ESCALATION = TopicSpec("escucha.escalation", key="watch id: escalation clock ticks",
                       consumed=True)
DLQ = TopicSpec("escucha.mentions.dlq", key="stage")
# Read whole by every worker (web API, console, silences): small, append-only views.
INCIDENTS = TopicSpec("escucha.incidents", key="incident id: each change's snapshot",
                      kind="compact")
SILENCES = TopicSpec("escucha.silences", key="silence id", kind="compact")
# Snapshots of per-watch event-time buckets (agents/aggregate/agent.py), each replacing the previous
# one of its bucket; read whole by the console and reports. Keyed by watch id so one watch's
# snapshots stay in order.
AGGREGATES = TopicSpec("escucha.aggregates", key="watch id", kind="history")
# The reports ledger (agents/report/agent.py): one record per report, slot and channel sent.
REPORTS = TopicSpec("escucha.reports", key="report id", kind="history")
# The mention keys POST /ingest has published (streams/web/ingest.py), read whole by every
# worker: a repeat sent to another worker, or after a restart, is answered as a duplicate.
INGESTED = TopicSpec("escucha.ingest.keys", key="mention key (source:id)")

ALL: tuple[TopicSpec, ...] = (RAW, ENRICHED, SIGNALS, NOTIFICATIONS, ACKS, DELIVERIES,
                              ESCALATION, DLQ, INCIDENTS, SILENCES, AGGREGATES, REPORTS,
                              INGESTED)


def notification_key(channel: str, target: str) -> bytes:
    """The key of a notification: the same for every notification to one target, so they all
    land in one partition whatever their incident. (Channel names have no ':'; were two
    targets to share a key, they would only share a partition.)"""
    return f"{channel}:{target}".encode()
