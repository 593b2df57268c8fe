"""``aggregates:``: bucket size and the top-k kept per bucket."""

from __future__ import annotations

from pydantic import (
    Field,
    field_validator,
)

from streams.config.base import Section

__all__ = ["AggregateSettings"]


class AggregateSettings(Section):
    """Stored per-watch aggregates (escucha.aggregates): the console's overview and reports."""

    bucket_s: int = Field(default=300, ge=60, le=3600, description="Bucket length, seconds; "
                          "must divide an hour, so buckets line up with hours and days.")
    top_mentions: int = Field(default=5, ge=0, le=100, description="Highest-priority mentions "
                              "kept per bucket.")
    top_terms: int = Field(default=20, ge=0, le=1000, description="Most frequent terms kept "
                           "per bucket.")
    top_authors: int = Field(default=10, ge=0, le=1000, description="Most active authors kept "
                             "per bucket.")

    @field_validator("bucket_s")
    @classmethod
    def _divides_hour(cls, value: int) -> int:
        if 3600 % value:
            raise ValueError(f"{value} does not divide 3600; use e.g. 60, 300, 600, 900 or 3600")
        return value
