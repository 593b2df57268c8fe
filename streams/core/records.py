"""Versioned record schemas for every topic, and the one place bytes become records.

Every record is JSON with a ``v`` field (the schema version). Parsing never raises anything
but :class:`RecordError`, whose message says which field is wrong and why, so the caller can
send the raw bytes to the dead-letter topic with that reason and carry on.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

__all__ = [
    "SCHEMA_VERSION",
    "MAX_TEXT_CHARS",
    "Ack",
    "Author",
    "DeadLetter",
    "Delivery",
    "Engagement",
    "EnrichedMention",
    "Evidence",
    "Incident",
    "Mention",
    "ModelInfo",
    "Notification",
    "PlaybookCard",
    "Phrase",
    "PhraseParam",
    "PlaybookStep",
    "RecordError",
    "ResponseTemplate",
    "SampleMention",
    "Sentiment",
    "SeriesPoint",
    "Severity",
    "Signal",
    "StepDone",
    "StorySummary",
    "TimelineEntry",
    "dumps",
    "json_schemas",
    "key_digest",
    "parse",
    "stable_id",
    "watch_of",
]

SCHEMA_VERSION = 1
#: Longer texts are rejected, not truncated: a 1 MB "mention" is an attack or a bug upstream.
MAX_TEXT_CHARS = 100_000
_MAX_INT = 2**63 - 1

Severity = Literal["info", "warning", "critical"]
IncidentState = Literal["open", "acknowledged", "resolved"]


class RecordError(ValueError):
    """Raw bytes that are not a valid record; the message is the reason for the dead-letter."""


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", str_strip_whitespace=False)
    v: int = Field(default=SCHEMA_VERSION, ge=1, le=SCHEMA_VERSION, description="Schema version.")


def _utc(value: datetime) -> datetime:
    # Sources disagree on offsets; naive timestamps are taken as UTC so windows line up.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Author(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")
    handle: str = Field(min_length=1, max_length=256)
    name: str | None = Field(default=None, max_length=512)
    followers: int = Field(default=0, ge=0, le=_MAX_INT)
    verified: bool = False


class Engagement(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")
    likes: int = Field(default=0, ge=0, le=_MAX_INT)
    shares: int = Field(default=0, ge=0, le=_MAX_INT)
    replies: int = Field(default=0, ge=0, le=_MAX_INT)


class Mention(_Record):
    """One thing somebody said, as a connector normalised it."""

    source: str = Field(min_length=1, max_length=64, description="Connector name, e.g. 'rss'.")
    id: str = Field(min_length=1, max_length=512, description="Id unique within the source.")
    url: str | None = Field(default=None, max_length=4096)
    author: Author
    text: str = Field(max_length=MAX_TEXT_CHARS)
    language: str | None = Field(default=None, max_length=16, description="ISO 639-1, if known.")
    created_at: datetime = Field(description="When it was posted (event time).")
    engagement: Engagement = Field(default_factory=Engagement)

    _norm_created = field_validator("created_at")(_utc)

    @property
    def key(self) -> str:
        """Dedup key across all sources."""
        return f"{self.source}:{self.id}"


class Sentiment(BaseModel):
    model_config = ConfigDict(frozen=True)
    label: Literal["negative", "neutral", "positive"]
    scores: dict[str, float]


class ModelInfo(BaseModel):
    model_config = ConfigDict(frozen=True)
    id: str
    version: str


class EnrichedMention(_Record):
    """A mention that matched at least one watch, classified. Keyed by ``watch_id``."""

    mention: Mention
    watch_id: str = Field(description="The watch this copy is routed to (the topic key).")
    watch_ids: list[str] = Field(description="Every watch the mention matched.")
    sentiment: Sentiment
    priority: int = Field(ge=0, le=100)
    reasons: list[str] = Field(default_factory=list)
    model: ModelInfo
    classified_at: datetime

    _norm_classified = field_validator("classified_at")(_utc)


PhraseParam = str | int | float | list[str | int | float]


class Phrase(BaseModel):
    """One clause of a detector's summary (or one timeline entry, or a claim) as data: a
    template key and its values, so every channel can say it in its target's language
    (streams/i18n/summaries.py, streams/i18n/timeline.py). Values are
    numbers, handles, terms, story text (attacker-controlled: escape after rendering),
    datetimes as ISO strings; lists where the clause lists things (top terms, authors)."""

    model_config = ConfigDict(frozen=True, extra="ignore")
    key: str = Field(max_length=64)
    params: dict[str, PhraseParam] = Field(default_factory=dict)


class SampleMention(BaseModel):
    model_config = ConfigDict(frozen=True)
    key: str
    url: str | None
    author: str
    text: str
    priority: int
    language: str | None = None
    sentiment: str | None = None
    claim: str | None = Field(default=None, max_length=300, description="Who answers it "
                              "(\"Ana is answering this\"): the latest claim, if any.")
    claim_phrase: Phrase | None = Field(default=None, description="The same as data (key: "
                                        "the claim's state; who, reason), for each reader's "
                                        "language.")


class SeriesPoint(BaseModel):
    """One hour of an episode: what was counted against what the baseline expected."""

    model_config = ConfigDict(frozen=True, extra="ignore")
    start: datetime
    observed: float
    expected: float


class StorySummary(BaseModel):
    """The largest story of a signal's window: near-duplicates of one text (agents/detect/
    stories.py). ``text`` is a mention's text: attacker-controlled, escape it to show it."""

    model_config = ConfigDict(frozen=True, extra="ignore")
    id: str
    text: str
    count: int = Field(description="Mentions of the story in the window.")
    authors: int = Field(description="Distinct accounts that posted them.")
    span_min: int = Field(description="Minutes from its first to its last mention there.")


class Signal(_Record):
    """A detector's finding, with the evidence a human needs to judge it."""

    id: str
    watch_id: str
    detector: str
    severity: Severity
    window_start: datetime
    window_end: datetime
    observed: float
    expected: float
    score: float = Field(description="Detector-specific strength, e.g. observed/expected.")
    summary: str = Field(description="The finding in English: what machines, the webhook and "
                         "search read; people get summary_parts in their language.")
    summary_parts: list[Phrase] = Field(
        default_factory=list, description="The summary clause by clause as data (empty in "
        "records from before it existed: show summary then).")
    top_terms: list[str] = Field(default_factory=list)
    samples: list[SampleMention] = Field(default_factory=list)
    model: ModelInfo | None = None
    trigger_posted_at: datetime | None = Field(
        default=None, description="Post time of the mention that made the detector fire.")
    scale_min: int | None = Field(
        default=None, description="Length of the window that fired, minutes (5 for a 5-minute "
        "spike, 60/360/1440 for the hourly surge scales); None for single posts.")
    p_value: float | None = Field(
        default=None, description="Tail probability of the observation under the expectation.")
    episode: str | None = Field(
        default=None, description="Signals of one episode (one sustained elevation) share this "
        "id: the first opens an incident, the later ones update it as it grows.")
    lasting_min: int | None = Field(
        default=None, description="How long the elevation has lasted so far, minutes.")
    series: list[SeriesPoint] = Field(
        default_factory=list, description="The episode hour by hour against its expectation.")
    stories: int | None = Field(
        default=None, description="Distinct stories (near-duplicate groups) in the window.")
    largest_story: StorySummary | None = None
    campaign: bool = Field(
        default=False, description="One story holds a large share of the window's negatives "
        "(a copy-paste storm): agents/detect/stories.py CAMPAIGN_SHARE.")


class TimelineEntry(BaseModel):
    """One thing that happened to an incident, for the audit trail."""

    model_config = ConfigDict(frozen=True)
    at: datetime
    kind: Literal["signal", "notification", "ack", "resolve", "reopen", "escalate",
                  "silenced", "skipped", "deferred", "fallback", "delivery", "failed",
                  "step", "inhibited", "claim", "merged", "waiting"]
    text: str = Field(description="In English: what the API, logs and searches read.")
    by: str | None = None
    phrase: Phrase | None = Field(default=None, description="The entry as data, said in each "
                                  "reader's language (streams/i18n/timeline.py); None on "
                                  "entries written before phrases existed.")
    summary_parts: list[Phrase] = Field(default_factory=list, description="The clauses of a "
                                        "detector summary the entry quotes.")


class Evidence(BaseModel):
    """One signal's numbers, kept on its incident: the console charts observed against expected."""

    model_config = ConfigDict(frozen=True, extra="ignore")
    detector: str
    severity: Severity
    window_start: datetime
    window_end: datetime
    observed: float
    expected: float
    score: float
    top_terms: list[str] = Field(default_factory=list)
    scale_min: int | None = None
    lasting_min: int | None = None
    series: list[SeriesPoint] = Field(default_factory=list)
    stories: int | None = None
    largest_story: StorySummary | None = None
    campaign: bool = False

    @classmethod
    def of(cls, signal: Signal) -> Evidence:
        return cls(detector=signal.detector, severity=signal.severity,
                   window_start=signal.window_start, window_end=signal.window_end,
                   observed=signal.observed, expected=signal.expected, score=signal.score,
                   top_terms=signal.top_terms, scale_min=signal.scale_min,
                   lasting_min=signal.lasting_min, series=signal.series,
                   stories=signal.stories, largest_story=signal.largest_story,
                   campaign=signal.campaign)


class PlaybookStep(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")
    id: str
    text: str
    owner: str | None = None


class ResponseTemplate(BaseModel):
    """An approved answer to start from; people adapt and post it, escucha never does."""

    model_config = ConfigDict(frozen=True, extra="ignore")
    channel: str = Field(description="Where it fits: x, email, press, any, ...")
    language: str = "en"
    text: str


class StepDone(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")
    step: str
    by: str
    at: datetime


class PlaybookCard(BaseModel):
    """The playbook matched to an incident, copied onto it so every channel can show it."""

    model_config = ConfigDict(frozen=True, extra="ignore")
    id: str
    name: str
    owner: str
    experts: list[str] = Field(default_factory=list)
    approval: str | None = None
    steps: list[PlaybookStep] = Field(default_factory=list)
    templates: list[ResponseTemplate] = Field(default_factory=list)
    do_not_respond: list[str] = Field(default_factory=list)
    done: list[StepDone] = Field(default_factory=list)

    def is_done(self, step_id: str) -> bool:
        return any(d.step == step_id for d in self.done)

    def templates_for(self, language: str | None) -> list[ResponseTemplate]:
        """The templates in the incident's language, else every template."""
        mine = [t for t in self.templates if language and t.language == language]
        return mine or list(self.templates)


class Incident(_Record):
    id: str = Field(description="'<watch id>.<hash>': the watch id routes acks to its worker.")
    fingerprint: str
    watch_id: str
    detector: str
    severity: Severity
    state: IncidentState = "open"
    opened_at: datetime
    updated_at: datetime
    summary: str
    summary_parts: list[Phrase] = Field(
        default_factory=list, description="The latest signal's summary as data, for each "
        "channel's language (empty on incidents from before it existed).")
    signal_ids: list[str] = Field(default_factory=list)
    samples: list[SampleMention] = Field(default_factory=list)
    level: int = 1
    acked_by: str | None = None
    acked_at: datetime | None = None
    resolved_by: str | None = None
    resolved_at: datetime | None = None
    language: str | None = None
    trigger_posted_at: datetime | None = Field(
        default=None, description="Post time of the mention that opened it (for latency).")
    timeline: list[TimelineEntry] = Field(default_factory=list)
    evidence: list[Evidence] = Field(
        default_factory=list, description="Each signal's observed and expected values (last 50).")
    playbook: PlaybookCard | None = Field(default=None, description="The matching playbook "
                                          "and which of its steps are done.")
    story: StorySummary | None = Field(
        default=None, description="The story that dominated a signal of this incident (its "
        "campaign flag), kept so that another watch's engine can compare its own with it.")
    merged_into: str | None = Field(
        default=None, description="The incident of another watch this one joined (same "
        "story): it pages nobody while that one is open.")
    watches: list[str] = Field(
        default_factory=list, description="Other watches whose incidents joined this one "
        "(same story); its own is watch_id.")
    joined: list[str] = Field(default_factory=list,
                              description="The incidents that joined this one, in order.")


NotificationKind = Literal["trigger", "update", "acknowledge", "resolve", "escalate",
                           "reminder", "digest"]


class Notification(_Record):
    """One message to one target. ``id`` is the idempotency key of the delivery."""

    id: str
    incident: Incident
    level: int
    channel: str = Field(description="slack, email, push, pagerduty, webhook, console.")
    target: str = Field(description="Channel-specific: '#crisis' or 'U123', 'a@x,b@y', an ntfy "
                        "topic, a PagerDuty service name, a webhook name. Never a secret.")
    created_at: datetime
    kind: NotificationKind = "trigger"
    digest: list[str] = Field(default_factory=list,
                              description="For kind='digest': one line per rolled-up notice.")
    update_of: str | None = Field(
        default=None,
        description="Channel id of an earlier message about the same incident to update in "
        "place instead of posting again (set by the deliver stage).",
    )


class Delivery(_Record):
    """Receipt of one delivery attempt chain, on the deliveries topic."""

    notification_id: str
    incident_id: str
    channel: str
    target: str
    outcome: Literal["delivered", "failed", "duplicate"]
    detail: str = ""
    external_id: str | None = None
    at: datetime


class Ack(_Record):
    """A human decision about an incident, from any path (Slack, API, link, console, CLI)."""

    incident_id: str
    action: Literal["ack", "resolve", "step", "claim"]
    step: str | None = Field(default=None, max_length=64,
                             description="For action 'step': the playbook step marked done.")
    note: str | None = Field(default=None, max_length=300, description="For action 'claim': "
                             "who answers one of its mentions, for the timeline.")
    mention: str | None = Field(default=None, max_length=512, description="For action "
                                "'claim': the key of the mention claimed.")
    claim: Phrase | None = Field(default=None, description="For action 'claim': the note as "
                                 "data (key: the claim's state; who, reason).")
    by: str = Field(min_length=1, max_length=256)
    source: str = Field(description="slack, api, link, console, cli.")
    at: datetime

    @property
    def watch_id(self) -> str:
        return watch_of(self.incident_id)


def watch_of(incident_id: str) -> str:
    """The watch an incident belongs to, read from its id ('<watch>.<hash>')."""
    return incident_id.split(".", 1)[0]


class DeadLetter(_Record):
    stage: str = Field(description="Where it was refused: 'ingest', 'classify', ...")
    reason: str
    payload: str = Field(description="The raw input, decoded leniently and cut to 4 kB.")
    origin: str = Field(default="", description="Topic/partition/offset, file:line, ...")
    at: datetime


_R = TypeVar("_R", bound=BaseModel)


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors(include_url=False):
        where = ".".join(str(p) for p in err["loc"]) or "(record)"
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)


def parse(model: type[_R], raw: bytes | str | dict[str, Any]) -> _R:
    """Validate ``raw`` as ``model`` or raise :class:`RecordError` saying why."""
    try:
        if isinstance(raw, dict):
            return model.model_validate(raw)
        return model.model_validate_json(raw)
    except ValidationError as exc:
        raise RecordError(_describe(exc)) from exc
    except (ValueError, RecursionError) as exc:  # undecodable bytes, absurd nesting
        raise RecordError(f"not valid JSON: {exc}") from exc


def dumps(record: BaseModel) -> bytes:
    return record.model_dump_json().encode()


def stable_id(*parts: object) -> str:
    """A short deterministic id, so replays and restarts produce the same ids."""
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).hexdigest()
    return digest[:16]


def key_digest(key: str) -> str:
    """A mention key (``source:id``) in 12 hex characters, for the identity sets that
    detection state and aggregate buckets keep of what they have counted (48 bits: among
    the 100,000 keys of a busy bucket a collision, one mention not counted, is a 2e-5 chance).
    """
    return hashlib.blake2b(key.encode(), digest_size=6).hexdigest()


def json_schemas() -> dict[str, Any]:
    """The published JSON Schemas, one per record type, for docs and other producers."""
    models: list[type[BaseModel]] = [
        Mention, EnrichedMention, Signal, Incident, Notification, Delivery, Ack, DeadLetter,
    ]
    return {m.__name__: m.model_json_schema() for m in models}


if __name__ == "__main__":  # pragma: no cover - convenience for docs
    print(json.dumps(json_schemas(), indent=2))
