"""escucha's configuration: one frozen model, read from ``escucha.yaml`` and the environment.

Precedence (highest first): explicit overrides, environment (``ESCUCHA_SECTION__FIELD`` and the
documented short names such as ``ESCUCHA_KAFKA_BOOTSTRAP``), the YAML file, defaults.
Validation happens once, at start-up; :func:`load_settings` raises :class:`ConfigError` listing
every problem with the path of the offending field, and the CLI exits with status 2.
"""

from __future__ import annotations

import ipaddress
import os
import re
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from notifiers.email import EmailSettings
from notifiers.pagerduty import PagerDutySettings
from notifiers.push import NtfySettings
from notifiers.webhook import WebhookSettings
from streams.connectors.config import ConnectorsSettings
from streams.console.config import WebConsoleSettings
from streams.escalation_config import EscalationSettings
from streams.playbooks import Playbook
from streams.query import And, Node, Or, Term, fold, parse_query, positive_terms
from streams.query import Field as QField
from streams.reports.config import ReportSettings

__all__ = [
    "AggregateSettings",
    "ConfigError",
    "DetectSettings",
    "KafkaSettings",
    "ModelSettings",
    "NotifierSettings",
    "Settings",
    "SlackSettings",
    "Watch",
    "WebSettings",
    "config_path",
    "load_settings",
]

_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
# A DNS name, an IPv4 address or a bracketed IPv6 address: what a Kafka client can dial.
_HOST = re.compile(r"^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9_])?)$")
_PORT = re.compile(r"^[0-9]{1,5}$")

#: Short environment names people expect, mapped to their place in the model.
_ENV_ALIASES: dict[str, tuple[str, ...]] = {
    "ESCUCHA_KAFKA_BOOTSTRAP": ("kafka", "bootstrap"),
    "ESCUCHA_SLACK_TOKEN": ("notifiers", "slack", "token"),
    "ESCUCHA_SLACK_CHANNEL": ("notifiers", "slack", "channel"),
    "ESCUCHA_SLACK_BASE_URL": ("notifiers", "slack", "base_url"),
    "ESCUCHA_WEB_PORT": ("web", "port"),
}


class ConfigError(Exception):
    """The configuration cannot be used; ``problems`` holds one line per bad field."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"invalid configuration ({source}):\n{lines}")


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class KafkaSettings(_Section):
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
        "on Kafka it only adds idle fetch requests (streams/transport.py).",
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
            if not _HOST.match(host) or not _PORT.match(port) or not 0 < int(port) < 65536:
                raise ValueError(f"{server!r} is not host:port")
        return value.strip()


class WebSettings(_Section):
    host: str = Field(default="127.0.0.1", description="Bind address of the web server.")
    port: int = Field(default=6066, ge=0, le=65535, description="0 picks a free port.")
    trusted_proxies: list[str] = Field(
        default_factory=list, description="Addresses or networks (CIDR) of reverse proxies "
        "whose X-Forwarded-For is believed, so sign-in throttling sees the real client. "
        "Empty: the TCP peer is the client and the header is ignored.")

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for item in value:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError as exc:
                raise ValueError(f"{item!r} is not an address or network: {exc}") from None
        return value


class PrioritySettings(_Section):
    """Points each factor adds to a mention's priority (0-100); each comes with a reason."""

    negativity: float = Field(default=40.0, ge=0, description="Scaled by P(negative).")
    reach: float = Field(default=20.0, ge=0, description="Scaled by log10(followers)/6.")
    verified: float = Field(default=5.0, ge=0, description="A verified author.")
    engagement: float = Field(default=10.0, ge=0, description="Scaled by log10 of "
                              "likes + 2 x shares + replies, over 4.")
    anger: float = Field(default=10.0, ge=0, description="Scaled by P(anger) of the emotion "
                         "head, for negative mentions.")
    risk_term: float = Field(default=20.0, ge=0, description="Any multilingual risk term "
                             "(legal threat, safety, recall, boycott, outage, breach, fraud).")


class ModelSettings(_Section):
    name: str = Field(default="bundled", min_length=1, description="'bundled' (the offline "
                      "MiniLM model), a Hugging Face model id, or a local model directory.")
    label_map: dict[str, str] = Field(default_factory=dict, description="A Hugging Face "
                                      "model's labels to negative/neutral/positive.")
    allow_download: bool = Field(default=False, description="Let a Hugging Face model id be "
                                 "fetched from the hub (off: the machines may have none).")
    batch_size: int = Field(default=32, ge=1, le=1024, description="Max texts per model call.")
    max_wait_s: float = Field(
        default=0.05, gt=0, le=10, description="Longest a text waits for its batch to fill."
    )
    threads: int | None = Field(default=None, ge=1, le=256, description="Torch CPU threads.")
    quantize: bool = Field(default=False, description="int8 dynamic quantisation of the "
                           "bundled model's linear layers (see bench/RESULTS.md).")
    cache_size: int = Field(default=50_000, ge=0, description="Predictions kept for repeated "
                            "texts (reposts, copy-paste campaigns); 0 turns the cache off.")
    languages: list[str] = Field(default_factory=list, description="ISO 639-1 codes the "
                                 "language detector may answer; empty: all it knows.")
    priority: PrioritySettings = Field(default_factory=PrioritySettings)


class DetectSettings(_Section):
    """How crises are detected. Counts are per watch, in event time (the posts' own time)."""

    bucket_s: int = Field(default=60, ge=10, le=3600, description="Bucket length, seconds.")
    spike_window_min: int = Field(default=5, ge=1, le=120,
                                  description="Window of the volume and negative spikes.")
    shift_window_min: int = Field(default=30, ge=5, le=720,
                                  description="Window of the negative-share shift.")
    term_window_min: int = Field(default=15, ge=1, le=240,
                                 description="Window of risk-term and emerging-term surges.")
    warmup_min: int = Field(default=120, ge=0, description="History a watch needs before "
                            "comparing against its baseline (single posts are judged at once).")
    level_halflife_min: float = Field(default=180.0, gt=0, description="How fast the "
                                      "expected rate follows a trend.")
    share_halflife_min: float = Field(default=1440.0, gt=0, description="How fast the usual "
                                      "negative share adapts.")
    seasonal: bool = Field(default=True, description="Learn hour-of-week patterns (after a "
                           "week of history) so a regular Monday peak is not a crisis.")
    ratio: float = Field(default=3.0, gt=1, description="Observed/expected needed to fire.")
    max_p_value: float = Field(default=1e-5, gt=0, lt=1, description="Tail probability "
                               "needed to fire: how surprising it must be under the baseline.")
    min_volume: int = Field(default=15, ge=1, description="Least mentions for a volume spike.")
    min_negative: int = Field(default=8, ge=1, description="Least negative mentions for a "
                              "negative spike.")
    min_authors: int = Field(default=4, ge=1, description="Least distinct authors in a spike: "
                             "one account posting a lot is spam, not a crisis.")
    shift_min_volume: int = Field(default=20, ge=1, description="Least mentions in the shift "
                                  "window to judge a negative share.")
    shift_min_delta: float = Field(default=0.25, gt=0, lt=1, description="Least rise of the "
                                   "negative share over its usual value (0.25 = 25 points).")
    risk_min: int = Field(default=5, ge=1, description="Least mentions with risk terms.")
    emerging_min: int = Field(default=8, ge=2, description="Least uses of a new term.")
    emerging_warmup_min: int = Field(default=1440, ge=0, description="History a watch needs "
                                     "before a term can be 'new' to it (its vocabulary).")
    influencer_followers: int = Field(default=100_000, ge=1, description="Reach that makes "
                                      "one negative post worth an alert.")
    influencer_verified_followers: int = Field(default=50_000, ge=1,
                                               description="The same for verified authors.")
    influencer_interactions_per_min: float = Field(default=100.0, gt=0, description="Or "
                                                   "engagement velocity at classification "
                                                   "(with at least 500 interactions).")
    influencer_cooldown_min: int = Field(default=1440, ge=1, description="One alert per "
                                         "author per this long: a regular critic is known.")
    cooldown_min: int = Field(default=45, ge=1, description="A detector that fired stays "
                              "quiet while its condition lasts and this long after, unless "
                              "the severity rises.")
    lateness_min: int = Field(default=10, ge=0, description="Allowed lateness: older "
                              "mentions still count in their window.")
    skew_tolerance_s: int = Field(default=120, ge=0, description="A post time later than its "
                                  "classification time plus this is clamped (clock skew).")


class AggregateSettings(_Section):
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


class Watch(_Section):
    id: str = Field(description="Stable slug: lowercase letters, digits, '-' and '_'.")
    name: str = Field(min_length=1, description="Human name shown in alerts.")
    terms: list[str] = Field(
        default_factory=list, description="Any of these words or phrases (case/accent-"
        "insensitive); shorthand for a query of quoted terms joined by OR.")
    query: str | None = Field(
        default=None, description="A boolean query (streams/query.py): AND, OR, NOT, quoted "
        "phrases, parentheses, wildcards, lang:/source:/author: filters. With terms as well, "
        "a mention needs both.")
    languages: list[str] = Field(
        default_factory=list, description="ISO 639-1 codes to keep; empty keeps all."
    )
    competitors: list[str] = Field(
        default_factory=list,
        description="Ids of the watches this one is compared against for share of voice.")
    starts_at: datetime | None = Field(
        default=None, description="Campaign or event watch: mentions posted before this are "
        "ignored (ISO 8601 with a zone, e.g. 2026-06-01T09:00:00+02:00).")
    ends_at: datetime | None = Field(default=None, description="...and from this on.")
    detect: dict[str, Any] = Field(
        default_factory=dict, description="This watch's own detection thresholds: any `detect` "
        "field, e.g. {ratio: 5, min_volume: 50} for a launch that is loud by design.")
    _tree: Node = PrivateAttr()

    @field_validator("id")
    @classmethod
    def _slug(cls, value: str) -> str:
        if not _ID.match(value):
            raise ValueError("use lowercase letters, digits, '-' or '_' (max 64), e.g. 'acme'")
        return value

    @field_validator("terms")
    @classmethod
    def _terms(cls, value: list[str]) -> list[str]:
        if any(not t.strip() for t in value):
            raise ValueError("terms must not be blank")
        return value

    @field_validator("query")
    @classmethod
    def _query(cls, value: str | None) -> str | None:
        if value is not None:
            parse_query(value)  # QueryError is a ValueError: reported with the field's path
        return value

    @model_validator(mode="after")
    def _compile(self) -> Watch:
        parts: list[Node] = []
        if self.terms:
            terms = tuple(Term(fold(t.strip()), phrase=" " in t.strip()) for t in self.terms)
            parts.append(terms[0] if len(terms) == 1 else Or(terms))
        if self.query is not None:
            parts.append(parse_query(self.query))
        if self.languages:
            langs = tuple(QField("lang", Term(fold(code))) for code in self.languages)
            parts.append(langs[0] if len(langs) == 1 else Or(langs))
        if not self.terms and self.query is None:
            raise ValueError("give the watch terms or a query")
        for name in ("starts_at", "ends_at"):
            value = getattr(self, name)
            if value is not None and value.tzinfo is None:
                raise ValueError(f"{name} needs a time zone, e.g. 2026-06-01T09:00:00+02:00")
        if self.starts_at and self.ends_at and self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        unknown = sorted(set(self.detect) - set(DetectSettings.model_fields))
        if unknown:
            # Checked here, not only with the values later, so it is reported with the rest.
            raise ValueError(f"detect: unknown setting(s) {unknown}; see the `detect` section")
        self._tree = parts[0] if len(parts) == 1 else And(tuple(parts))
        return self

    def active(self, at: datetime) -> bool:
        """Whether a mention posted at ``at`` is inside the watch's campaign window."""
        return ((self.starts_at is None or at >= self.starts_at)
                and (self.ends_at is None or at < self.ends_at))

    @property
    def query_tree(self) -> Node:
        """Terms, query and languages as one boolean tree (what the matcher compiles)."""
        return self._tree

    @property
    def all_terms(self) -> list[str]:
        """Every text term the watch looks for (folded), for detectors and source filters."""
        return positive_terms(self._tree)


class SlackSettings(_Section):
    token: SecretStr | None = Field(default=None, description="Bot token (xoxb-…).")
    signing_secret: SecretStr | None = Field(
        default=None, description="Verifies Acknowledge/Resolve button clicks (app settings, "
        "'Signing Secret'); without it the buttons are refused.")
    channel: str = Field(default="#escucha-alerts", description="Channel for alerts.")
    base_url: str = Field(
        default="https://slack.com/api/", description="Web API base URL (tests point it at a fake)."
    )


class ConsoleSettings(_Section):
    enabled: bool = Field(default=True, description="Print incidents to the worker's stdout.")


class NotifierSettings(_Section):
    """Each channel's settings live beside its notifier (notifiers/<channel>.py)."""

    console: ConsoleSettings = Field(default_factory=ConsoleSettings)
    slack: SlackSettings = Field(default_factory=SlackSettings)
    email: EmailSettings | None = Field(default=None, description="SMTP; unset: email off.")
    push: NtfySettings | None = Field(default=None, description="ntfy; unset: push off.")
    pagerduty: PagerDutySettings | None = Field(default=None,
                                                description="Events API v2; unset: off.")
    webhook: WebhookSettings | None = Field(default=None, description="Signed JSON webhooks.")


class ApiSettings(_Section):
    tokens: list[SecretStr] = Field(
        default_factory=list, description="Bearer tokens for /api/… (reads and writes); none: "
        "the API refuses everything.")
    public_url: str = Field(
        default="http://127.0.0.1:6066",
        description="How people reach this server: the base of links in emails and push.")
    link_secret: SecretStr | None = Field(
        default=None, description="HMAC key of signed ack links (≥16 chars; the same on every "
        "worker). Unset: one is generated and kept in <datadir>/link-secret.")
    link_ttl_s: int = Field(default=86400, ge=60, description="How long an ack link works.")


class Settings(BaseSettings):
    """The whole configuration. Every field documents itself; see escucha.example.yaml."""

    model_config = SettingsConfigDict(
        frozen=True, extra="forbid", env_prefix="ESCUCHA_", env_nested_delimiter="__",
        # A bad webhook URL or key must not be echoed back in an error message.
        hide_input_in_errors=True,
    )

    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    web: WebSettings = Field(default_factory=WebSettings)
    model: ModelSettings = Field(default_factory=ModelSettings)
    detect: DetectSettings = Field(default_factory=DetectSettings)
    aggregates: AggregateSettings = Field(default_factory=AggregateSettings)
    notifiers: NotifierSettings = Field(default_factory=NotifierSettings)
    escalation: EscalationSettings = Field(default_factory=EscalationSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    console: WebConsoleSettings = Field(default_factory=WebConsoleSettings)
    playbooks: list[Playbook] = Field(default_factory=list, description="Crisis plans, matched "
                                      "to incidents in order (streams/playbooks.py).")
    connectors: ConnectorsSettings = Field(default_factory=ConnectorsSettings,
                                           description="Sources to pull mentions from.")
    watches: list[Watch] = Field(default_factory=list, description="What to listen for.")
    reports: list[ReportSettings] = Field(
        default_factory=list, description="Scheduled reports (streams/reports/config.py).")
    datadir: Path = Field(default=Path("var"), description="Worker state, broker address file.")

    @field_validator("watches")
    @classmethod
    def _unique_ids(cls, value: list[Watch]) -> list[Watch]:
        seen: set[str] = set()
        for watch in value:
            if watch.id in seen:
                raise ValueError(f"watch id {watch.id!r} is used twice")
            seen.add(watch.id)
        return value

    @model_validator(mode="after")
    def _watch_thresholds_are_valid(self) -> Settings:
        problems = []
        for i, watch in enumerate(self.watches):
            try:
                self.detect_for(watch)
            except ValidationError as exc:
                problems += [f"watches.{i}.detect.{'.'.join(map(str, e['loc']))}: {e['msg']}"
                             for e in exc.errors()]
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def detect_for(self, watch: Watch) -> DetectSettings:
        """The detection settings of one watch: the global ones with its own overrides."""
        if not watch.detect:
            return self.detect
        return DetectSettings.model_validate({**self.detect.model_dump(), **watch.detect})

    @model_validator(mode="after")
    def _playbooks_are_consistent(self) -> Settings:
        ids = [p.id for p in self.playbooks]
        watches = {w.id for w in self.watches}
        problems = [f"playbooks.{i}.id: {p!r} is used twice" for i, p in enumerate(ids)
                    if p in ids[:i]]
        for i, book in enumerate(self.playbooks):
            wanted = book.match.get("watch", [])
            for w in [wanted] if isinstance(wanted, str) else wanted:
                if w not in watches:
                    problems.append(f"playbooks.{i}.match.watch: no watch with id {w!r}")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @model_validator(mode="after")
    def _competitors_are_watches(self) -> Settings:
        """Share of voice compares watches: each competitor must be another configured one."""
        ids = {w.id for w in self.watches}
        problems = []
        for wi, watch in enumerate(self.watches):
            for ci, other in enumerate(watch.competitors):
                where = f"watches.{wi}.competitors.{ci}"
                if other == watch.id:
                    problems.append(f"{where}: watch {watch.id!r} cannot be its own competitor")
                elif other not in ids:
                    problems.append(f"{where}: no watch with id {other!r} (configured: "
                                    f"{', '.join(sorted(ids))})")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @model_validator(mode="after")
    def _reports_are_consistent(self) -> Settings:
        """A report names configured watches and channels, or it would fail every week."""
        ids = {w.id for w in self.watches}
        problems, seen = [], set()
        n = self.notifiers
        for ri, report in enumerate(self.reports):
            where = f"reports.{ri}"
            if report.id in seen:
                problems.append(f"{where}.id: report id {report.id!r} is used twice")
            seen.add(report.id)
            for wi, wid in enumerate(report.watches):
                if wid not in ids:
                    problems.append(f"{where}.watches.{wi}: no watch with id {wid!r} "
                                    f"(configured: {', '.join(sorted(ids)) or 'none'})")
            if report.email is not None and n.email is None:
                problems.append(f"{where}.email: needs notifiers.email (an SMTP relay)")
            if report.slack is not None and n.slack.token is None:
                problems.append(f"{where}.slack: needs notifiers.slack.token (with "
                                "files:write)")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @model_validator(mode="after")
    def _silences_are_deliberate(self) -> Settings:
        """A silence that holds back every incident must say ``all: true``."""
        from agents.silences import matches_every_incident

        watches = [w.id for w in self.watches]
        problems = []
        for i, spec in enumerate(self.escalation.silences):
            try:
                everything = matches_every_incident(spec.matchers, watches=watches)
            except ValueError as exc:
                problems.append(f"escalation.silences.{i}.matchers: {exc}")
                continue
            if everything and not spec.all:
                problems.append(f"escalation.silences.{i}.matchers: {spec.matchers} silence "
                                "every incident; add `all: true` if that is what you mean")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @model_validator(mode="after")
    def _targets_have_channels(self) -> Settings:
        """Every target must name a channel that is configured, or alerts would vanish."""
        problems = []
        for p in self.escalation.policies:
            for li, level in enumerate(p.levels):
                for ti, t in enumerate(level.targets):
                    where = f"escalation.policies[{p.id}].levels.{li}.targets.{ti}"
                    problem = _channel_problem(self, t.kind, getattr(t, t.kind))
                    if problem:
                        problems.append(f"{where}: {problem}")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The YAML document arrives as init kwargs (see load_settings) and must lose to the
        # environment, so the order is: aliases, nested env, then the file.
        return (_AliasEnvSource(settings_cls), env_settings, init_settings)


class _AliasEnvSource(EnvSettingsSource):
    """Reads the short names in ``_ENV_ALIASES`` into their nested places."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for env_name, path in _ENV_ALIASES.items():
            value = os.environ.get(env_name)
            if value is None or value == "":
                continue
            node = out
            for part in path[:-1]:
                node = node.setdefault(part, {})
            node[path[-1]] = value
        return out


def _channel_problem(settings: Settings, kind: str, value: object) -> str | None:
    n = settings.notifiers
    if kind == "slack" and n.slack.token is None:
        return "uses slack but notifiers.slack.token is not set"
    if kind == "console" and not n.console.enabled:
        return "uses the console but notifiers.console.enabled is false"
    for name in ("email", "push", "pagerduty", "webhook"):
        if kind == name and getattr(n, name) is None:
            return f"uses {name} but notifiers.{name} is not configured"
    if kind == "pagerduty" and n.pagerduty is not None and value not in n.pagerduty.services:
        return f"no PagerDuty service {value!r} in notifiers.pagerduty.services"
    if kind == "webhook" and n.webhook is not None and value not in n.webhook.endpoints:
        return f"no webhook endpoint {value!r} in notifiers.webhook.endpoints"
    return None


def config_path(explicit: str | Path | None = None) -> Path | None:
    """The config file to read: the argument, else ``$ESCUCHA_CONFIG``, else ./escucha.yaml."""
    if explicit:
        return Path(explicit)
    env = os.environ.get("ESCUCHA_CONFIG")
    if env:
        return Path(env)
    default = Path("escucha.yaml")
    return default if default.exists() else None


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError(str(path), ["file not found; set ESCUCHA_CONFIG or pass a path"]) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(str(path), [f"cannot read: {exc}"]) from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(str(path), [f"{where}not valid YAML ({problem})"]) from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(str(path), ["the top level must be a mapping (key: value)"])
    return data


def _problems(exc: ValidationError) -> list[str]:
    lines = []
    for err in exc.errors(include_url=False):
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key (check the spelling against escucha.example.yaml)"
        lines.append(f"{where}: {msg}")
    return lines


def load_settings(path: str | Path | None = None, **overrides: Any) -> Settings:
    """Load and validate the configuration once; raise :class:`ConfigError` with every problem."""
    file = config_path(path)
    data = _read_yaml(file) if file else {}
    data.update(overrides)
    source = str(file) if file else "defaults and environment"
    try:
        return Settings(**data)
    except ValidationError as exc:
        raise ConfigError(source, _problems(exc)) from exc
