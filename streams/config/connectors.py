"""The ``connectors`` section of escucha.yaml: which sources run, with what credentials.

Each source's settings live beside its connector (``streams/connectors/<source>.py``); this
module gathers them into one validated section and builds the connectors from it::

    connectors:
      webhook: {tokens: ["${ZAPIER_TOKEN}"]}
      rss:
        - name: google-alerts-acme
          feeds: [{url: "https://www.google.com/alerts/feeds/123/456", interval_s: 300}]
      mastodon:
        - {name: mastodon-social, base_url: "https://mastodon.social", hashtags: [acme]}

Names must be unique across sources: a name keys the connector's cursor file and metrics.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from streams.connectors.base import Connector, SourceSettings
from streams.connectors.bluesky import BlueskyConnector, BlueskySettings
from streams.connectors.hackernews import HackerNewsConnector, HackerNewsSettings
from streams.connectors.mastodon import MastodonConnector, MastodonSettings
from streams.connectors.reddit import RedditConnector, RedditSettings
from streams.connectors.rss import RssConnector, RssSettings
from streams.connectors.webhook import WebhookIngestSettings
from streams.connectors.x import XConnector, XSettings

__all__ = ["SOURCES", "ConnectorsSettings", "build_connectors"]

#: Source name -> (settings class, connector class), in the order they are listed.
SOURCES: dict[str, tuple[type[SourceSettings], type[Any]]] = {
    "rss": (RssSettings, RssConnector),
    "mastodon": (MastodonSettings, MastodonConnector),
    "bluesky": (BlueskySettings, BlueskyConnector),
    "reddit": (RedditSettings, RedditConnector),
    "x": (XSettings, XConnector),
    "hackernews": (HackerNewsSettings, HackerNewsConnector),
}


class ConnectorsSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    webhook: WebhookIngestSettings = Field(default_factory=WebhookIngestSettings,
                                           description="POST /ingest on the web server.")
    rss: list[RssSettings] = Field(
        default_factory=list, description="RSS/Atom feeds, Google Alerts included.")
    mastodon: list[MastodonSettings] = Field(
        default_factory=list, description="Mastodon instances: streaming, polling fallback.")
    bluesky: list[BlueskySettings] = Field(
        default_factory=list, description="Bluesky: Jetstream firehose or search.")
    reddit: list[RedditSettings] = Field(
        default_factory=list, description="Reddit: subreddits and searches (OAuth app).")
    x: list[XSettings] = Field(
        default_factory=list, description="X API v2 filtered stream (bearer token).")
    hackernews: list[HackerNewsSettings] = Field(
        default_factory=list, description="Hacker News through the Algolia search API.")
    silent_after_s: dict[str, int] = Field(
        default_factory=lambda: {"default": 1800},
        description="How long a source (Mention.source: rss, mastodon, webhook, …) may bring "
        "no mention before the EscuchaSourceSilent alert fires, in seconds; `default` for "
        "every source not named. A feed that posts twice a day wants more than a firehose. "
        "Exported as escucha_source_silent_after_seconds.")

    @field_validator("silent_after_s")
    @classmethod
    def _silent_after(cls, value: dict[str, int]) -> dict[str, int]:
        bad = [f"{k}: {v}" for k, v in value.items() if not 60 <= v <= 30 * 86400]
        if bad:
            raise ValueError(f"silent_after_s must be 60 s to 30 days, got {', '.join(bad)}")
        return {"default": 1800, **value}

    @model_validator(mode="after")
    def _unique_names(self) -> ConnectorsSettings:
        seen: dict[str, str] = {}
        problems = []
        for source, entry in self.entries():
            if entry.name in seen:
                problems.append(f"connector name {entry.name!r} is used by {seen[entry.name]} "
                                f"and {source}; names key cursors and metrics, keep them unique")
            seen[entry.name] = source
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def entries(self) -> list[tuple[str, SourceSettings]]:
        """(source, settings) of every configured connector, enabled or not."""
        return [(source, entry) for source in SOURCES for entry in getattr(self, source)]


def build_connectors(settings: ConnectorsSettings, *,
                     x_rules: dict[str, str] | None = None) -> Sequence[Connector]:
    """The enabled connectors, ready for :class:`~streams.connectors.base.ConnectorRunner`.

    ``x_rules`` (watch id -> X rule, from :func:`streams.core.query.to_x_rule`) feeds X connectors
    that set no rules of their own, so the stream follows the watch config.
    """
    out: list[Connector] = []
    for source, entry in settings.entries():
        if not entry.enabled:
            continue
        cls = SOURCES[source][1]
        if source == "x":
            out.append(cls(entry, rules=x_rules or None))
        else:
            out.append(cls(entry))
    return out
