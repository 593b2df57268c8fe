"""Every escucha metric, in one module, registered on an injected registry.

Label sets are created at start-up so a series exists (at 0) before its first event:
dashboards and alert rules then see "nothing happened" instead of "no data".
"""

from __future__ import annotations

import functools
import time
from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from streams.connectors.base import CONNECTOR_ERROR_KINDS

__all__ = ["Metrics", "AUTH_OUTCOMES", "CLAIM_ACTIONS", "CLAIM_OUTCOMES", "COUNTING_STAGES",
           "DELIVERY_OUTCOMES", "ENDED_BY", "INCIDENT_STATES", "HOLE_ACTIONS", "LATENCY_PATHS",
           "SEVERITIES", "STAGES", "STORE_OPERATIONS", "ended_by"]

SEVERITIES = ("info", "warning", "critical")
DELIVERY_OUTCOMES = ("delivered", "failed", "duplicate", "retried", "digested")
INCIDENT_STATES = ("open", "acknowledged", "resolved")
#: Who ended the wait that time-to-acknowledge/resolve measures: a person (Slack, API, link,
#: console, CLI) or escucha itself (auto-resolve after resolve_after_s without signals).
ENDED_BY = ("person", "auto")
LATENCY_PATHS = ("ingest_to_enriched", "post_to_enriched", "enriched_to_signal",
                 "post_to_signal", "post_to_delivered")
STAGES = ("ingest", "classify", "detect", "escalate", "deliver", "replay", "store")
#: What happened to a refused credential: wrong, or not even looked at (address throttled).
AUTH_OUTCOMES = ("invalid", "throttled")
#: What the consumer's hole watch did (streams/runtime/holes.py).
#: "stuck": read again once already and still not processed; left alone, and alerted.
HOLE_ACTIONS = ("reread", "expired", "stuck")
#: What a claim request on a mention asked (agents/store/claims.py) and how it ended.
CLAIM_ACTIONS = ("claim", "answer", "release", "not-answering")
CLAIM_OUTCOMES = ("done", "taken", "refused", "failed")
#: What the mention store failed at: writing a batch (let go), or deleting expired mentions.
STORE_OPERATIONS = ("write", "expire")
#: Stages that count mentions, and so skip the ones they have counted already.
COUNTING_STAGES = ("detect", "aggregate")
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# Human response times: from seconds (a click on a button) to a day.
_HUMAN_BUCKETS = (5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0, 21600.0,
                  86400.0)
_E2E_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0,
                86400.0)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
#: Kept here, not imported from streams.connectors.base, so metrics import nothing of ours.


def ended_by(source: str | None) -> str:
    """The ``by`` label for an ``Ack.source``: "auto" for escucha's own, "person" otherwise."""
    return "auto" if source == "auto" else "person"


def _since(gauge: Gauge) -> float:
    last = gauge._value.get()  # prometheus_client has no public getter
    return -1.0 if last <= 0 else max(0.0, time.time() - last)


class Metrics:
    """The pipeline's own series. One instance per process, built with its registry."""

    def __init__(
        self,
        *,
        registry: CollectorRegistry,
        sources: Iterable[str] = (),
        watches: Iterable[str] = (),
        channels: Iterable[str] = (),
        detectors: Iterable[str] = (),
        connectors: Iterable[str] = (),
        topics: Iterable[str] = (),
        credential_kinds: Iterable[str] = (),
    ) -> None:
        self.registry = registry
        self.mentions_in = Counter(
            "escucha_mentions_in_total", "Mentions read from the raw topic, by source.",
            ["source"], registry=registry,
        )
        self.mentions_classified = Counter(
            "escucha_mentions_classified_total",
            "Mentions that matched at least one watch and were classified, by watch.",
            ["watch"], registry=registry,
        )
        self.mentions_unmatched = Counter(
            "escucha_mentions_unmatched_total", "Mentions that matched no watch.",
            registry=registry,
        )
        self.dead_letters = Counter(
            "escucha_dead_letters_total", "Items sent to the dead-letter topic, by stage.",
            ["stage"], registry=registry,
        )
        self.duplicates = Counter(
            "escucha_duplicates_skipped_total",
            "Mentions a counting stage had already counted (re-read after a crash, a "
            "rebalance or a hole), skipped by their key.",
            ["stage"], registry=registry,
        )
        self.detect_state_trimmed = Counter(
            "escucha_detect_state_trimmed_total",
            "Saves of a watch's detection state that had to drop explanation details to fit "
            "one broker record (agents/detect/bounds.py); any is worth a look.",
            ["watch"], registry=registry,
        )
        self.handler_retries = Counter(
            "escucha_handler_retries_total",
            "Batches a stage's handler failed on and tried again (not acked meanwhile).",
            ["stage"], registry=registry,
        )
        self.classify_batch_size = Histogram(
            "escucha_classify_batch_size", "Texts per model call.",
            buckets=_BATCH_BUCKETS, registry=registry,
        )
        self.classify_batch_seconds = Histogram(
            "escucha_classify_batch_seconds", "Wall time of one model call, seconds.",
            buckets=_LATENCY_BUCKETS, registry=registry,
        )
        self.store_written = Counter(
            "escucha_store_mentions_written_total",
            "Mentions new to the mention store (a mention read again is not counted).",
            registry=registry,
        )
        self.store_write_seconds = Histogram(
            "escucha_store_write_seconds", "Wall time of one batch written to the store.",
            buckets=_LATENCY_BUCKETS, registry=registry,
        )
        self.store_let_go = Counter(
            "escucha_store_mentions_let_go_total",
            "Mentions not written because the store's database stayed unavailable past "
            "store.hold_s (escucha store rebuild writes them).", registry=registry,
        )
        self.store_expired = Counter(
            "escucha_store_mentions_expired_total", "Mentions deleted by store retention.",
            registry=registry,
        )
        self.store_errors = Counter(
            "escucha_store_errors_total", "Mention store operations that failed, by operation: "
            "write (a batch let go, the database unavailable) or expire.",
            ["operation"], registry=registry,
        )
        self.store_enabled = Gauge(
            "escucha_store_enabled", "1 when this worker writes the mention store "
            "(store.enabled); the store alerts ignore workers at 0.", registry=registry,
        )
        self.store_up = Gauge(
            "escucha_store_up", "1 while the mention store's database takes writes, 0 while "
            "batches are let go because it is unavailable.", registry=registry,
        )
        self.store_last_write = Gauge(
            "escucha_store_last_write_timestamp_seconds",
            "Unix time of the last batch this worker wrote to the mention store.",
            registry=registry,
        )
        self.store_size = Gauge(
            "escucha_store_size_bytes", "What the mention store takes on disk, measured by the "
            "leader after each expiry round (0 until the first).", registry=registry,
        )
        self.store_search_seconds = Histogram(
            "escucha_store_search_seconds", "Wall time of one page of GET /api/mentions.",
            buckets=_LATENCY_BUCKETS, registry=registry,
        )
        self.claims = Counter(
            "escucha_claims_total", "Claim requests on mentions (API and console), by action "
            "and outcome: done; taken (someone else has it); refused (a bad request or an "
            "unknown mention); failed (the store could not answer).",
            ["action", "outcome"], registry=registry,
        )
        self.signals = Counter(
            "escucha_signals_total", "Signals emitted by detectors.",
            ["detector", "severity"], registry=registry,
        )
        self.incidents = Counter(
            "escucha_incidents_opened_total", "Incidents opened.",
            ["severity"], registry=registry,
        )
        self.notifications = Counter(
            "escucha_notifications_total", "Notification outcomes by channel.",
            ["channel", "outcome"], registry=registry,
        )
        self.delivery_seconds = Histogram(
            "escucha_delivery_seconds", "From notification created to delivered, seconds.",
            ["channel"], buckets=_LATENCY_BUCKETS, registry=registry,
        )
        self.time_to_ack = Histogram(
            "escucha_time_to_acknowledge_seconds", "From incident opened to acknowledged; "
            "by=person or auto (nothing acknowledges automatically today).",
            ["severity", "watch", "by"], buckets=_HUMAN_BUCKETS, registry=registry,
        )
        self.time_to_resolve = Histogram(
            "escucha_time_to_resolve_seconds", "From incident opened to resolved; by=person "
            "(a responder resolved it) or auto (no signal for resolve_after_s).",
            ["severity", "watch", "by"], buckets=_HUMAN_BUCKETS, registry=registry,
        )
        self.escalations = Counter(
            "escucha_escalations_total", "Escalations to a level (2 = first escalation).",
            ["level"], registry=registry,
        )
        self.acks = Counter(
            "escucha_acks_total", "Acknowledgements and resolutions, by path.",
            ["source", "action"], registry=registry,
        )
        self.silences = Counter(
            "escucha_silences_created_total", "Silences created over the API or console.",
            registry=registry,
        )
        self.silences_expired = Counter(
            "escucha_silences_expired_total", "Silences expired early over the API or console.",
            registry=registry,
        )
        self.source_last_event = Gauge(
            "escucha_source_last_event_timestamp_seconds",
            "Unix time the pipeline last saw a mention from each source.",
            ["source"], registry=registry,
        )
        self.source_silent_after = Gauge(
            "escucha_source_silent_after_seconds",
            "How long each source may stay quiet before EscuchaSourceSilent fires "
            "(connectors.silent_after_s; source=\"default\" for the rest).",
            ["source"], registry=registry,
        )
        self.model_texts = Counter(
            "escucha_model_texts_total", "Texts classified by the model.", registry=registry,
        )
        self.latency = Histogram(
            "escucha_end_to_end_latency_seconds",
            "Latency along the pipeline: ingest_to_enriched (raw topic write to enriched), "
            "enriched_to_signal (the triggering mention's enriched write to its signal), "
            "post_to_enriched, post_to_signal, post_to_delivered (from the mention's own "
            "post time; large for replayed history).",
            ["path"], buckets=_E2E_BUCKETS, registry=registry,
        )
        self.incidents_current = Gauge(
            "escucha_incidents", "Incidents this worker owns, by severity and state.",
            ["severity", "state"], registry=registry,
        )
        self.incidents_overdue = Gauge(
            "escucha_incidents_overdue",
            "Open, unacknowledged incidents whose escalation policy is exhausted (not those "
            "whose next notification waits for quiet hours to end).",
            ["severity"], registry=registry,
        )
        self.incidents_joined = Counter(
            "escucha_incidents_joined_total", "Incidents that joined an open incident of "
            "another watch with the same story instead of paging (agents/escalate/merge.py), "
            "by the joining incident's watch.",
            ["watch"], registry=registry,
        )
        self.incidents_story_held = Counter(
            "escucha_incidents_story_held_total", "New incidents whose first page waited "
            "escalation.story_wait_s because a copy-paste story was forming in their evidence "
            "(agents/escalate/merge.py, forming), by watch. Many holds and few joins: the hold "
            "delays pages that nothing joins, and story_wait_s may be worth lowering.",
            ["watch"], registry=registry,
        )
        self.incidents_inhibited = Gauge(
            "escucha_incidents_inhibited", "Open incidents this worker owns whose "
            "notifications an inhibition rule holds back now, by severity.",
            ["severity"], registry=registry,
        )
        self.ready = Gauge(
            "escucha_ready", "1 when /readyz passes: broker, model, partitions.",
            registry=registry,
        )
        self.tasks = Gauge(
            "escucha_asyncio_tasks", "asyncio tasks alive in the worker; steady growth is a "
            "leak (the soak test watches it).", registry=registry,
        )
        self.connector_events = Counter(
            "escucha_connector_events_total", "Mentions a connector published (new ones only).",
            ["connector"], registry=registry,
        )
        self.connector_errors = Counter(
            "escucha_connector_errors_total",
            "Connector errors by kind: transport, rate_limited, server, malformed, crash.",
            ["connector", "kind"], registry=registry,
        )
        self.connector_up = Gauge(
            "escucha_connector_up", "1 while a connector's last fetch succeeded.",
            ["connector"], registry=registry,
        )
        self.connector_last_event = Gauge(
            "escucha_connector_last_event_timestamp_seconds",
            "Unix time a connector last published a mention (0: never, in this process); "
            "time() minus this is the seconds since its last event.",
            ["connector"], registry=registry,
        )
        self.connector_seconds_since_last_event = Gauge(
            "escucha_connector_seconds_since_last_event",
            "Seconds since a connector last published a mention (-1: never).",
            ["connector"], registry=registry,
        )
        self.hole_messages = Counter(
            "escucha_consumer_hole_messages_total",
            "Messages the consumer fetched but no stream acknowledged, found by the hole "
            "watch: read again (action=reread), deleted by retention first "
            "(action=expired), or still unprocessed after being read again once and left "
            "alone (action=stuck). Any increase is a bug or a retention problem to look at.",
            ["topic", "action"], registry=registry,
        )
        self.model_loaded = Gauge(
            "escucha_model_loaded", "1 once the classification model is loaded.",
            registry=registry,
        )
        self.auth_refused = Counter(
            "escucha_auth_refused_total", "Credentials refused over HTTP, by kind (password, "
            "api_token, link, ...) and outcome: invalid, or throttled (not checked: the "
            "address failed too often).", ["kind", "outcome"], registry=registry,
        )
        for kind in credential_kinds:
            for outcome in AUTH_OUTCOMES:
                self.auth_refused.labels(kind, outcome)
        for source in sources:
            self.mentions_in.labels(source)
            self.source_last_event.labels(source)
        for path in LATENCY_PATHS:
            self.latency.labels(path)
        watches = list(watches)
        for watch in watches:
            self.mentions_classified.labels(watch)
            self.detect_state_trimmed.labels(watch)  # 0 until it happens: the alert's base
            self.incidents_joined.labels(watch)
            self.incidents_story_held.labels(watch)
        for stage in STAGES:
            self.dead_letters.labels(stage)
            self.handler_retries.labels(stage)
        for stage in COUNTING_STAGES:
            self.duplicates.labels(stage)
        for detector in detectors:
            for severity in SEVERITIES:
                self.signals.labels(detector, severity)
        for severity in SEVERITIES:
            self.incidents.labels(severity)
            self.incidents_overdue.labels(severity)
            self.incidents_inhibited.labels(severity)
            for state in INCIDENT_STATES:
                self.incidents_current.labels(severity, state)
            for watch in watches:
                for by in ENDED_BY:
                    self.time_to_ack.labels(severity, watch, by)
                    self.time_to_resolve.labels(severity, watch, by)
        for level in ("2", "3", "4", "5"):
            self.escalations.labels(level)
        for source in ("slack", "api", "link", "cli", "console", "auto"):
            for action in ("ack", "resolve"):
                self.acks.labels(source, action)
        for operation in STORE_OPERATIONS:
            self.store_errors.labels(operation)
        for claim_action in CLAIM_ACTIONS:
            for claim_outcome in CLAIM_OUTCOMES:
                self.claims.labels(claim_action, claim_outcome)
        for name in connectors:
            self.connector_events.labels(name)
            self.connector_up.labels(name)
            last = self.connector_last_event.labels(name)
            for kind in CONNECTOR_ERROR_KINDS:
                self.connector_errors.labels(name, kind)
            self.connector_seconds_since_last_event.labels(name).set_function(
                functools.partial(_since, last))
        for topic in topics:
            for hole_action in HOLE_ACTIONS:
                self.hole_messages.labels(topic, hole_action)
        for channel in channels:
            self.delivery_seconds.labels(channel)
            for outcome in DELIVERY_OUTCOMES:
                self.notifications.labels(channel, outcome)
