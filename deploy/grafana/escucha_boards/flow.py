"""The flow's dashboards: pipeline overview, connectors, the model, Kafka and Faust."""

from __future__ import annotations

from typing import Any

from .panels import LOADED, dashboard, row, stat, ts
from .promql import NONE, RANGE, increase, mean, quantile, quantiles, rate, ratio

__all__ = ["connectors", "kafka", "model", "pipeline"]


def pipeline() -> dict[str, Any]:
    open_incidents = 'sum(escucha_incidents{state="open"})'
    return dashboard("escucha-pipeline", "escucha / Pipeline overview",
                      "Mentions in to alerts out: throughput, latency, health.", [
        row("Health"),
        stat("Workers ready", "sum(escucha_ready)", green_at=1,
              description="Workers whose /readyz passes (broker, model, partitions)."),
        stat("Workers not ready", "count(escucha_ready == 0) or vector(0)", red_at=1),
        stat("Mentions in", rate("escucha_mentions_in_total"), unit="cps"),
        stat("Dead letters (range)", increase("escucha_dead_letters_total", window=RANGE),
              red_at=1),
        row("Throughput"),
        ts("Mentions", [
            (rate("escucha_mentions_in_total"), "in"),
            (rate("escucha_mentions_classified_total"), "classified (per matched watch)"),
            (rate("escucha_mentions_unmatched_total"), "unmatched"),
        ], unit="cps", description="A mention matching two watches counts twice as classified."),
        ts("Dead letters by stage", [(rate("escucha_dead_letters_total", by=["stage"]),
                                       "{{stage}}")], unit="cps", bars=True, stack=True),
        ts("Messages mended by the hole watch",
            [(increase("escucha_consumer_hole_messages_total", by=["topic", "action"]),
              "{{topic}} {{action}}")], bars=True, stack=True,
            description="Fetched but never acknowledged: read again (reread) or deleted by "
                        "retention first (expired). Should stay at zero."),
        row("Latency"),
        ts("End-to-end latency p50",
            [(quantile(0.5, "escucha_end_to_end_latency_seconds", by=["path"]), "{{path}}")],
            unit="s", description="post_to_* start at the mention's own post time."),
        ts("End-to-end latency p99",
            [(quantile(0.99, "escucha_end_to_end_latency_seconds", by=["path"]), "{{path}}")],
            unit="s"),
        row("Detection and incidents"),
        ts("Signals by detector and severity",
            [(increase("escucha_signals_total", by=["detector", "severity"]),
              "{{detector}} {{severity}}")], bars=True, stack=True, w=8),
        ts("Incidents opened by severity",
            [(increase("escucha_incidents_opened_total", by=["severity"]), "{{severity}}")],
            bars=True, stack=True, w=8),
        ts("Open incidents", [(open_incidents, "open"),
                               ("sum(escucha_incidents_overdue)", "overdue")], w=8),
    ])


def connectors() -> dict[str, Any]:
    last_seen = "(max by (source) (escucha_source_last_event_timestamp_seconds) > 0)"
    since = f"time() - {last_seen}"
    return dashboard("escucha-connectors", "escucha / Connectors",
                      "Per-source intake, staleness and rejected input.", [
        stat("Sources silent > 15 min", f"count(({since}) > 900) or vector(0)", red_at=1,
              description="Sources that sent something since start-up but nothing for 15 min."),
        stat("Mentions in", rate("escucha_mentions_in_total"), unit="cps"),
        stat("Ingest dead-letter ratio",
              ratio(rate("escucha_dead_letters_total", sel='{stage="ingest"}', window=RANGE),
                     rate("escucha_mentions_in_total", window=RANGE)),
              unit="percentunit", red_at=0.05),
        stat("Dead letters (range)", increase("escucha_dead_letters_total", window=RANGE),
              red_at=1),
        ts("Mentions in by source",
            [(rate("escucha_mentions_in_total", by=["source"]), "{{source}}")],
            unit="cps", stack=True),
        ts("Seconds since last event by source", [(since, "{{source}}")], unit="s",
            description="Sources never seen since the worker started are left out."),
        stat("Last event age", since, legend="{{source}}", unit="s", red_at=900, w=24),
        ts("Dead letters by stage",
            [(rate("escucha_dead_letters_total", by=["stage"]), "{{stage}}")],
            unit="cps", bars=True, stack=True, w=24),
    ])


def model() -> dict[str, Any]:
    batch, seconds = "escucha_classify_batch_size", "escucha_classify_batch_seconds"
    return dashboard("escucha-model", "escucha / Model",
                      "Classification model: load state, throughput, batching, latency.", [
        stat("Model loaded (all workers)", "min(escucha_model_loaded)", mappings=LOADED,
              green_at=1),
        stat("Texts classified", rate("escucha_model_texts_total"), unit="cps"),
        stat("Mean batch size", mean(batch, window=RANGE), unit="short", no_value=NONE),
        stat("Mean batch latency", mean(seconds, window=RANGE), unit="s", no_value=NONE),
        ts("Texts classified per second", [(rate("escucha_model_texts_total"), "texts/s"),
                                            (rate(f"{seconds}_count"), "model calls/s")],
            unit="cps"),
        ts("Model loaded by worker", [("max by (instance) (escucha_model_loaded)",
                                        "{{instance}}")], unit="bool_on_off"),
        ts("Batch size", [*quantiles(batch), (mean(batch), "mean")]),
        ts("Batch latency", [*quantiles(seconds), (mean(seconds), "mean")], unit="s"),
        ts("Model time per text",
            [(f"{rate(f'{seconds}_sum')} / {rate('escucha_model_texts_total')}", "per text")],
            unit="s", w=24),
    ])


def kafka() -> dict[str, Any]:
    end, committed = ("escucha_faust_topic_partition_end_offset",
                      "escucha_faust_topic_partition_offset_commited")
    lag = f"max by (topic, partition) ({end}) - max by (topic, partition) ({committed})"
    return dashboard("escucha-kafka", "escucha / Kafka & Faust",
                      "Consumer lag, rebalances, event, producer and commit latency.", [
        stat("Consumer lag (messages)", f"sum({lag})", red_at=10000),
        stat("Rebalancing workers", "sum(escucha_faust_total_rebalances)", red_at=1),
        stat("Messages received", rate("escucha_faust_messages_received_total"), unit="cps"),
        stat("Active messages", "sum(escucha_faust_active_messages)"),
        ts("Consumer lag by topic and partition", [(lag, "{{topic}}/{{partition}}")],
            description="End offset minus committed offset; stale after a partition moves."),
        ts("Consumer lag by topic", [(f"sum by (topic) ({lag})", "{{topic}}")]),
        ts("Messages received by topic",
            [(rate("escucha_faust_messages_received_per_topic_total", by=["topic"]),
              "{{topic}}")], unit="cps", stack=True),
        ts("Messages sent", [(rate("escucha_faust_total_sent_messages_total"), "sent")],
            unit="cps"),
        ts("Rebalances in progress",
            [("max by (instance) (escucha_faust_total_rebalances)", "{{instance}}")]),
        ts("Event runtime", quantiles("escucha_faust_events_runtime_ms", (0.5, 0.99)),
            unit="ms"),
        ts("Producer send latency",
            quantiles("escucha_faust_producer_send_latency", (0.5, 0.99)), unit="ms"),
        ts("Consumer commit latency",
            quantiles("escucha_faust_consumer_commit_latency", (0.5, 0.99)), unit="ms"),
        ts("Table operations",
            [(rate("escucha_faust_table_operations_total", by=["table", "operation"]),
              "{{table}} {{operation}}")], unit="ops", w=24),
    ])
