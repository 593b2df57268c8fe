"""Every topic escucha uses, in one place, with the key each is partitioned by.

Tansu cannot add partitions later (no CreatePartitions), so topics are created once with
their final count; the count comes from config (``kafka.partitions``).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ALL", "TopicSpec", "RAW", "ENRICHED", "SIGNALS", "NOTIFICATIONS", "ACKS",
           "DELIVERIES", "DLQ"]


@dataclass(frozen=True)
class TopicSpec:
    name: str
    key: str  # what the records are keyed by: decides which partition owns the state


RAW = TopicSpec("escucha.mentions.raw", key="mention key (source:id)")
ENRICHED = TopicSpec("escucha.mentions.enriched", key="watch id")
SIGNALS = TopicSpec("escucha.signals", key="watch id")
NOTIFICATIONS = TopicSpec("escucha.notifications", key="incident id")
ACKS = TopicSpec("escucha.acks", key="incident id")
DELIVERIES = TopicSpec("escucha.deliveries", key="incident id")
DLQ = TopicSpec("escucha.mentions.dlq", key="stage")

ALL: tuple[TopicSpec, ...] = (RAW, ENRICHED, SIGNALS, NOTIFICATIONS, ACKS, DELIVERIES, DLQ)
