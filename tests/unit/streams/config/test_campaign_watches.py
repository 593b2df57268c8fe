"""Campaign and event watches: a start and end, and detection thresholds of their own."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from agents.classify.matching import WatchMatcher
from streams.config.settings import ConfigError, load_settings
from streams.core.records import Author, Mention

LAUNCH = {"id": "launch", "name": "Phone X launch", "terms": ["phonex"],
          "starts_at": "2026-06-01T09:00:00+02:00", "ends_at": "2026-06-08T00:00:00+02:00",
          "detect": {"ratio": 6.0, "min_volume": 80}}


def _mention(at: datetime) -> Mention:
    return Mention(source="x", id=at.isoformat(), author=Author(handle="a"),
                   text="PhoneX is here", created_at=at)


def test_campaign_watch_matches_only_inside_its_window() -> None:
    settings = load_settings(None, watches=[LAUNCH, {"id": "acme", "name": "Acme",
                                                     "terms": ["phonex"]}])
    matcher = WatchMatcher(settings.watches)
    before = datetime(2026, 6, 1, 6, 59, tzinfo=UTC)   # 08:59 in +02:00
    start = datetime(2026, 6, 1, 7, 0, tzinfo=UTC)
    end = datetime(2026, 6, 7, 22, 0, tzinfo=UTC)
    assert matcher.match(_mention(before)) == ["acme"]
    assert matcher.match(_mention(start)) == ["launch", "acme"]
    assert matcher.match(_mention(end)) == ["acme"]  # the end is exclusive


def test_campaign_thresholds_override_the_global_ones_only_for_it() -> None:
    settings = load_settings(None, detect={"ratio": 3.0},
                             watches=[LAUNCH, {"id": "acme", "name": "Acme", "terms": ["a"]}])
    launch, acme = settings.watches
    assert settings.detect_for(launch).ratio == 6.0
    assert settings.detect_for(launch).min_volume == 80
    assert settings.detect_for(acme).ratio == 3.0


def test_bad_campaign_config_says_where() -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(None, watches=[{**LAUNCH, "detect": {"ratoi": 2}},
                                     {**LAUNCH, "id": "b", "ends_at": "2026-05-01T00:00:00Z"},
                                     {**LAUNCH, "id": "c", "starts_at": "2026-06-01T09:00:00"}])
    text = str(err.value)
    assert "unknown setting(s) ['ratoi']" in text
    assert "ends_at must be after starts_at" in text and "needs a time zone" in text


def test_bad_threshold_value_names_the_watch_field() -> None:
    with pytest.raises(ConfigError, match=r"watches\.0\.detect\.ratio"):
        load_settings(None, watches=[{**LAUNCH, "detect": {"ratio": 0.5}}])
