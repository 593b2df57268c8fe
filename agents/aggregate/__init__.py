"""aggregate: enriched mentions → per-watch bucket snapshots. ``agent`` runs it on Faust; ``stage``
folds and flushes; ``builder`` keeps the buckets.
"""

from agents.aggregate.builder import BucketBuilder
from agents.aggregate.stage import AggregateStage

__all__ = ["AggregateStage", "BucketBuilder"]
