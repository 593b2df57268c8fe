"""``kafka:``: the cluster, the app id, partitions and commit timing."""

from __future__ import annotations

from pydantic import (
    Field,
    field_validator,
)

from streams.config.base import HOST, PORT, Section

__all__ = ["KafkaSettings"]


class KafkaSettings(Section):
    bootstrap: str | None = Field(
        default=None,
        description="host:port[,host:port] of a Kafka cluster. Unset: start the embedded broker.",
    )
    partitions: int = Field(
        default=4, ge=1, le=1024,
        description="Partitions of every topic; final (create topics with the count you need).",
    )
    app_id: str = Field(default="escucha", description="Consumer group / Faust app id.")
    commit_interval_s: float = Field(
        default=2.8, gt=0, le=3600,
        description="How often consumed offsets are committed; what a crash may re-deliver.",
    )
    fetch_max_wait_ms: int = Field(
        default=100, ge=1, le=10_000,
        description="Longest a consumer's fetch waits for data on a quiet topic. Short keeps "
        "alert latency low on brokers that answer a waiting fetch only when it ends (Tansu); "
        "on Kafka it only adds idle fetch requests (streams/runtime/faust.py).",
    )
    stream_retention_days: int = Field(
        default=7, ge=1, le=3650,
        description="Retention escucha creates the flowing topics with (raw, enriched, "
        "signals, notifications, …): how long a consumer may be down and still catch up.",
    )
    history_retention_days: int = Field(
        default=400, ge=1, le=36500,
        description="Retention of the aggregates and the reports ledger, read whole by "
        "every worker: must outlive the longest report period, or a report lacks its data "
        "and a ledger entry vanishes before its slot (which is then sent again).",
    )
    handler_attempts: int = Field(
        default=3, ge=1, le=20,
        description="How many times a stage tries a batch whose handling raised (the model, "
        "a send) before it tries each record alone and dead-letters the ones that still "
        "fail. Nothing is acknowledged meanwhile (streams/runtime/batches.py).",
    )
    handler_backoff_s: float = Field(
        default=1.0, ge=0, le=300,
        description="Wait before the first retry of a failed batch; doubles each attempt.",
    )
    connect_timeout_s: float = Field(
        default=0, ge=0, le=86400,
        description="How long a starting worker waits for Kafka, retrying with backoff, "
        "before it exits; 0 waits until a broker answers (a supervisor sees it not ready).",
    )

    @field_validator("bootstrap")
    @classmethod
    def _bootstrap_shape(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        for server in value.split(","):
            host, _, port = server.strip().removeprefix("kafka://").rpartition(":")
            if not HOST.match(host) or not PORT.match(port) or not 0 < int(port) < 65536:
                raise ValueError(f"{server!r} is not host:port")
        return value.strip()
