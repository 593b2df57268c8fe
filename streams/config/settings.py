"""escucha's configuration: one frozen model, read from ``escucha.yaml`` and the environment.

Precedence (highest first): explicit overrides, environment (``ESCUCHA_SECTION__FIELD`` and the
documented short names such as ``ESCUCHA_KAFKA_BOOTSTRAP``), the YAML file, defaults.
Validation happens once, at start-up; :func:`load_settings` raises :class:`ConfigError` listing
every problem with the path of the offending field, and the CLI exits with status 2.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import (
    Field,
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

from notifiers import registry
from streams.config.aggregates import AggregateSettings
from streams.config.api import ApiSettings
from streams.config.base import ConfigError
from streams.config.connectors import ConnectorsSettings
from streams.config.console import WebConsoleSettings
from streams.config.detect import DetectSettings
from streams.config.escalation import EscalationSettings
from streams.config.kafka import KafkaSettings
from streams.config.model import ModelSettings
from streams.config.notifiers import NotifierSettings
from streams.config.playbooks import Playbook
from streams.config.reports import ReportSettings
from streams.config.store import StoreSettings
from streams.config.watches import Watch
from streams.config.web import WebSettings

__all__ = [
    "AggregateSettings",
    "ConfigError",
    "DetectSettings",
    "KafkaSettings",
    "ModelSettings",
    "NotifierSettings",
    "Settings",
    "StoreSettings",
    "Watch",
    "WebSettings",
    "config_path",
    "load_settings",
]


#: Short environment names people expect, mapped to their place in the model.
_ENV_ALIASES: dict[str, tuple[str, ...]] = {
    "ESCUCHA_KAFKA_BOOTSTRAP": ("kafka", "bootstrap"),
    "ESCUCHA_SLACK_TOKEN": ("notifiers", "slack", "token"),
    "ESCUCHA_SLACK_CHANNEL": ("notifiers", "slack", "channel"),
    "ESCUCHA_SLACK_BASE_URL": ("notifiers", "slack", "base_url"),
    "ESCUCHA_WEB_PORT": ("web", "port"),
}


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
    store: StoreSettings = Field(default_factory=StoreSettings)
    playbooks: list[Playbook] = Field(default_factory=list, description="Crisis plans, matched "
                                      "to incidents in order (streams/config/playbooks.py).")
    connectors: ConnectorsSettings = Field(default_factory=ConnectorsSettings,
                                           description="Sources to pull mentions from.")
    watches: list[Watch] = Field(default_factory=list, description="What to listen for.")
    reports: list[ReportSettings] = Field(
        default_factory=list, description="Scheduled reports (streams/config/reports.py).")
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
    def _model_cache_in_datadir(self) -> Settings:
        # The converted encoder belongs with the rest of this deployment's state.
        if self.model.cache_dir is None:
            cached = self.model.model_copy(update={"cache_dir": self.datadir / "models"})
            object.__setattr__(self, "model", cached)  # frozen: set once, while validating
        return self

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
    def _store_retention_names_watches(self) -> Settings:
        ids = {w.id for w in self.watches}
        problems = [f"store.watch_retention_days.{w}: no watch with id {w!r} (configured: "
                    f"{', '.join(sorted(ids)) or 'none'})"
                    for w in self.store.watch_retention_days if w not in ids]
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
        from streams.core.silences import matches_every_incident

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
    spec = registry.by_name.get(kind)
    if spec is None:  # a schedule: whoever is on call, reached on their own contacts
        return None
    return spec.problem(registry.section(settings.notifiers, spec), value)


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
