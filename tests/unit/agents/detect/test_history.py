"""Backtest of a history file: raw exports through the real classifier and detection, enriched
files as before, every bad line reported. The real bundled model classifies."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from agents.classify.classifier import model_for
from agents.detect.backtest import engine_factory_for, signal_json
from agents.detect.history import HistoryError, backtest_file, sniff_format
from models.sentiment import SentimentModel
from streams.config.settings import Settings, load_settings
from streams.connectors.replay import parse_column_map
from streams.core.records import Author, EnrichedMention, Mention, ModelInfo, Sentiment
from tests.support.history import COLUMNS, CONFIG, START, write_history


@pytest.fixture(scope="module")
def model() -> SentimentModel:
    return model_for(load_settings(None, **CONFIG).model)


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.chdir(tmp_path)  # no stray escucha.yaml
    monkeypatch.delenv("ESCUCHA_CONFIG", raising=False)
    return load_settings(None, **CONFIG)


def _given(model: SentimentModel) -> Callable[[], SentimentModel]:
    return lambda: model


def _enriched(n: int) -> list[EnrichedMention]:
    return [EnrichedMention(
        mention=Mention(source="t", id=str(i), author=Author(handle="a"), text="acme",
                        created_at=START + timedelta(minutes=i)),
        watch_id="acme", watch_ids=["acme"], priority=1, classified_at=START,
        sentiment=Sentiment(label="neutral", scores={"neutral": 0.9}),
        model=ModelInfo(id="t", version="1")) for i in range(n)]


def _fired(signals: list[dict[str, object]]) -> set[tuple[object, ...]]:
    return {(s["watch_id"], s["detector"], s["window_start"], s["window_end"]) for s in signals}


def test_a_raw_csv_is_classified_matched_and_detected_and_bad_lines_reported(
        tmp_path: Path, settings: Settings, model: SentimentModel) -> None:
    path = tmp_path / "export.csv"
    bad_lines = write_history(path)
    told: list[tuple[int, str]] = []
    result = backtest_file(path, settings=settings, columns=parse_column_map(COLUMNS),
                           model_factory=_given(model), on_bad=lambda n, r: told.append((n, r)))
    assert result.format == "csv"
    assert result.read == 92 and result.matched == 91  # the off-topic post matches no watch
    assert result.mentions == 91  # each matched one watch
    assert [n for n, _ in result.bad] == sorted(bad_lines) and told == result.bad
    for line, reason in result.bad:
        assert reason.startswith(bad_lines[line])
    by_detector = {s.detector: s for s in result.signals}
    assert {s.watch_id for s in result.signals} == {"acme"}
    influencer = by_detector["influencer"]
    assert influencer.trigger_posted_at == START.replace(minute=12, second=40)
    assert influencer.scale_min is None and influencer.p_value is None
    spike = by_detector["negative_spike"]
    assert spike.window_end == START.replace(minute=31) and spike.scale_min == 5
    assert spike.p_value is not None and spike.p_value <= settings.detect.max_p_value
    assert spike.observed > spike.expected
    report = result.to_json()
    assert report["bad_lines"] == 2 and report["read"] == 92 and report["matched"] == 91
    assert report["signal_list"] == [signal_json(s) for s in result.signals]
    assert json.loads(json.dumps(report)) == report


def test_an_export_listed_newest_first_gives_the_same_signals(
        tmp_path: Path, settings: Settings, model: SentimentModel) -> None:
    oldest, newest = tmp_path / "oldest.csv", tmp_path / "newest.csv"
    write_history(oldest)
    write_history(newest, newest_first=True)
    columns = parse_column_map(COLUMNS)
    runs = [backtest_file(p, settings=settings, columns=columns, model_factory=_given(model))
            for p in (oldest, newest)]
    assert runs[0].signals and _fired([signal_json(s) for s in runs[0].signals]) == \
        _fired([signal_json(s) for s in runs[1].signals])


def test_raw_json_lines_are_told_from_enriched_ones(tmp_path: Path, settings: Settings,
                                                   model: SentimentModel) -> None:
    raw = tmp_path / "raw.jsonl"
    raw.write_text("\n".join([
        "",
        "not json at all",
        json.dumps({"id": "1", "text": "Acme support is awful, I want my money back",
                    "author": {"handle": "big", "followers": 3_000_000},
                    "created_at": "2026-02-10T09:00:00Z"}),
        json.dumps({"id": "2", "text": "Acme"}),
    ]) + "\n", encoding="utf-8")
    assert sniff_format(raw) == "jsonl"
    result = backtest_file(raw, settings=settings, model_factory=_given(model))
    assert result.format == "jsonl" and result.read == 1 and result.matched == 1
    assert [n for n, _ in result.bad] == [2, 4]
    assert [s.detector for s in result.signals] == ["influencer"]

    enriched = tmp_path / "enriched.jsonl"
    enriched.write_text('{"watch_id": "acme", "mention": "half a record"}\n' + "".join(
        em.model_dump_json() + "\n" for em in _enriched(3)), encoding="utf-8")
    assert sniff_format(enriched) == "enriched"
    as_before = backtest_file(enriched, settings=settings)
    assert as_before.format == "enriched" and as_before.matched is None
    assert as_before.read == as_before.mentions == 3 and [n for n, _ in as_before.bad] == [1]
    assert sniff_format(tmp_path / "x.csv") == "csv"  # by its suffix, unopened


def test_a_file_that_cannot_be_backtested_says_why(tmp_path: Path, settings: Settings) -> None:
    path = tmp_path / "export.csv"
    write_history(path)
    with pytest.raises(HistoryError, match="not in the CSV header"):
        backtest_file(path, settings=settings, columns={"text": "missing"})
    with pytest.raises(HistoryError, match="raw CSV files only"):
        backtest_file(path, settings=settings, fmt="jsonl", columns={"text": "body"})
    with pytest.raises(HistoryError, match="does not exist"):
        backtest_file(tmp_path / "nope.csv", settings=settings)
    with pytest.raises(HistoryError, match="has none"):
        backtest_file(path, settings=load_settings(None), columns=parse_column_map(COLUMNS))


def test_each_watch_is_detected_with_its_own_settings(settings: Settings) -> None:
    tuned = load_settings(None, detect={"ratio": 3.0}, watches=[
        {"id": "launch", "name": "Launch", "terms": ["phonex"], "detect": {"ratio": 6.0}},
        {"id": "acme", "name": "Acme", "terms": ["acme"]}])
    make = engine_factory_for(tuned)
    assert make("launch").cfg.ratio == 6.0 and make("acme").cfg.ratio == 3.0
    assert make("launch").watch_terms == frozenset({"phonex"})
    stranger = make("initech")  # a scenario's watch the config lacks
    assert stranger.cfg == tuned.detect and stranger.watch_terms == frozenset({"initech"})
