"""Backtest: scoring arithmetic on hand-made signals, one state per watch, the CLI command.

Detection quality is not asserted here (the integrator measures it); only the bookkeeping.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from agents.detect.backtest import BacktestResult, backtest, evaluate, run
from agents.detect.scenarios import SCENARIOS, CrisisLabel, write_jsonl, write_labels
from streams.cli import cli
from streams.core.records import (
    Author,
    EnrichedMention,
    Mention,
    ModelInfo,
    Sentiment,
    Signal,
)

T0 = datetime(2025, 3, 5, tzinfo=UTC)
DAY = timedelta(days=1)
JSON_KEYS = {"precision", "recall", "median_time_to_detect_s", "false_signals_per_watch_week",
             "signals", "mentions", "seconds", "per_kind", "format", "read", "matched",
             "bad_lines", "bad", "signal_list"}


def at(hours: float, minutes: float = 0) -> datetime:
    return T0 + 2 * DAY + timedelta(hours=hours, minutes=minutes)


def signal(watch: str, end: datetime, detector: str = "negative_spike") -> Signal:
    return Signal(id=f"{watch}-{end.isoformat()}-{detector}", watch_id=watch, detector=detector,
                  severity="warning", window_start=end - timedelta(minutes=5), window_end=end,
                  observed=10, expected=2, score=5, summary="test")


LABELS = [
    CrisisLabel("acme", at(10), at(10, 30), "spike"),
    CrisisLabel("acme", at(14), at(15), "slow_burn"),
    CrisisLabel("globex", at(12), at(12, 20), "influencer"),
]
SPAN = {"watches": ["acme", "globex", "initech"], "start": T0, "end": T0 + 14 * DAY}


def test_evaluate_counts_true_and_false_signals_and_times_to_detect() -> None:
    signals = [
        signal("acme", at(10, 50)),    # TP: after the end but within the 30 min grace
        signal("acme", at(10, 5)),     # TP: the first detection of the spike, 300 s in
        signal("acme", at(11, 1)),     # FP: past end + grace
        signal("globex", at(10, 5)),   # FP: right time, wrong watch
        signal("acme", at(14, 30)),    # TP: slow burn, 1800 s in
        signal("acme", at(9, 59)),     # FP: before the crisis began
    ]
    scores = evaluate(signals, LABELS, **SPAN)  # type: ignore[arg-type]
    assert scores["true_positives"] == 3 and scores["false_signals"] == 3
    assert scores["precision"] == 0.5
    assert scores["recall"] == pytest.approx(2 / 3, abs=1e-4)
    assert scores["median_time_to_detect_s"] == 1050.0  # median of 300 and 1800
    # 3 false signals over 3 watches x 2 weeks.
    assert scores["false_signals_per_watch_week"] == 0.5
    assert scores["per_kind"] == {
        "influencer": {"labels": 1, "detected": 0, "recall": 0.0,
                       "median_time_to_detect_s": None, "times_s": []},
        "slow_burn": {"labels": 1, "detected": 1, "recall": 1.0,
                      "median_time_to_detect_s": 1800.0, "times_s": [1800.0]},
        "spike": {"labels": 1, "detected": 1, "recall": 1.0, "median_time_to_detect_s": 300.0,
                  "times_s": [300.0]},
    }


def test_evaluate_bounds_are_inclusive_and_grace_is_configurable() -> None:
    label = [CrisisLabel("acme", at(10), at(10, 30), "spike")]
    exact = [signal("acme", at(10)), signal("acme", at(11))]
    scores = evaluate(exact, label, **SPAN)  # type: ignore[arg-type]
    assert scores["true_positives"] == 2 and scores["median_time_to_detect_s"] == 0.0
    no_grace = evaluate(exact, label, grace=timedelta(0), **SPAN)  # type: ignore[arg-type]
    assert no_grace["true_positives"] == 1 and no_grace["false_signals"] == 1


def test_a_signal_in_two_overlapping_labels_counts_once_but_detects_both() -> None:
    labels = [CrisisLabel("acme", at(10), at(11), "spike"),
              CrisisLabel("acme", at(10, 30), at(11), "sentiment_flip")]
    scores = evaluate([signal("acme", at(10, 40))], labels, **SPAN)  # type: ignore[arg-type]
    assert scores["true_positives"] == 1 and scores["precision"] == 1.0
    assert scores["recall"] == 1.0 and scores["median_time_to_detect_s"] == 1500.0


def test_no_signals_means_no_precision() -> None:
    scores = evaluate([], LABELS, **SPAN)  # type: ignore[arg-type]
    assert scores["precision"] is None
    assert scores["recall"] == 0.0
    assert scores["median_time_to_detect_s"] is None
    assert scores["false_signals_per_watch_week"] == 0.0


def test_no_labels_means_no_recall_and_every_signal_is_false() -> None:
    signals = [signal("acme", at(1)), signal("globex", at(2)), signal("initech", at(3))]
    scores = evaluate(signals, [], **SPAN)  # type: ignore[arg-type]
    assert scores["recall"] is None and scores["per_kind"] == {}
    assert scores["precision"] == 0.0
    assert scores["false_signals_per_watch_week"] == 0.5
    empty = evaluate(signals, [], watches=[], start=T0, end=T0)
    assert empty["false_signals_per_watch_week"] is None


def em(watch: str, minute: int) -> EnrichedMention:
    created = T0 + timedelta(minutes=minute)
    mention = Mention(source="test", id=f"{watch}-{minute}", author=Author(handle="a"),
                      text="hello", created_at=created)
    return EnrichedMention(
        mention=mention, watch_id=watch, watch_ids=[watch],
        sentiment=Sentiment(label="neutral", scores={"neutral": 0.9}), priority=1,
        model=ModelInfo(id="t", version="1"), classified_at=created)


class Recorder:
    """A stand-in engine: counts into its state and fires on every third mention."""

    made: list[str] = []

    def __init__(self, watch: str) -> None:
        self.watch = watch
        self.states: list[dict[str, Any]] = []
        Recorder.made.append(watch)

    def observe(self, state: dict[str, Any], item: EnrichedMention) -> list[Signal]:
        assert item.watch_id == self.watch
        self.states.append(state)
        state["n"] = state.get("n", 0) + 1
        state.setdefault("seen", []).append(item.mention.id)
        if state["n"] % 3:
            return []
        return [signal(self.watch, item.mention.created_at)]


def test_run_keeps_one_engine_and_one_state_per_watch() -> None:
    Recorder.made = []
    engines: dict[str, Recorder] = {}

    def factory(watch: str) -> Recorder:
        engines[watch] = Recorder(watch)
        return engines[watch]

    order = ["acme", "globex", "acme", "acme", "initech", "globex", "acme", "globex", "acme"]
    mentions = [em(w, i) for i, w in enumerate(order)]
    signals, n = run(iter(mentions), engine_factory=factory)
    assert n == len(order)
    assert Recorder.made == ["acme", "globex", "initech"]
    for watch, engine in engines.items():
        assert all(s is engine.states[0] for s in engine.states)  # the same dict every time
        assert engine.states[0]["seen"] == [m.mention.id for m in mentions
                                            if m.watch_id == watch]  # in the order given
    assert len({id(e.states[0]) for e in engines.values()}) == 3
    assert [(s.watch_id, s.window_end) for s in signals] == [
        ("acme", T0 + timedelta(minutes=3)), ("globex", T0 + timedelta(minutes=7))]


def test_backtest_wraps_run_and_evaluate() -> None:
    mentions = [em("acme", i) for i in range(6)]
    label = [CrisisLabel("acme", T0, T0 + timedelta(minutes=4), "spike")]
    result = backtest(mentions, engine_factory=Recorder, labels=label,
                      start=T0, end=T0 + timedelta(days=7), grace=timedelta(0))
    assert isinstance(result, BacktestResult)
    assert result.mentions == 6 and len(result.signals) == 2
    assert result.precision == 0.5 and result.recall == 1.0
    assert result.median_time_to_detect_s == 120.0
    assert result.per_watch_weeks == 1.0 and result.false_signals_per_watch_week == 1.0
    assert set(result.to_json()) == JSON_KEYS
    unlabelled = backtest(mentions, engine_factory=Recorder)
    assert unlabelled.precision is None and unlabelled.recall is None
    assert unlabelled.false_signals_per_watch_week is None


@pytest.fixture
def scenario_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    monkeypatch.chdir(tmp_path)  # no escucha.yaml: default detection settings
    monkeypatch.delenv("ESCUCHA_CONFIG", raising=False)
    scenario = SCENARIOS["sudden_spike"](seed=1, weeks=0.35, rate_per_min=1)
    data, labels = tmp_path / "spike.jsonl", tmp_path / "spike.labels.json"
    write_jsonl(scenario, data)
    with data.open("a", encoding="utf-8") as fh:
        fh.write('{"not": "a mention"}\n')
    write_labels(scenario, labels)
    return data, labels


def test_cli_backtest_json_has_the_figures(scenario_files: tuple[Path, Path]) -> None:
    data, labels = scenario_files
    lines = len(data.read_text(encoding="utf-8").splitlines())
    result = CliRunner().invoke(cli, ["backtest", str(data), "--labels", str(labels), "--json"])
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout)
    assert set(figures) == JSON_KEYS
    assert figures["mentions"] == figures["read"] == lines - 1
    assert f"{data}:{lines}: skipped" in result.stderr
    assert figures["format"] == "enriched" and figures["matched"] is None
    assert figures["bad_lines"] == 1 and figures["bad"][0]["line"] == lines
    assert len(figures["signal_list"]) == figures["signals"]
    for key in ("precision", "recall", "false_signals_per_watch_week"):
        assert figures[key] is None or figures[key] >= 0


def test_cli_backtest_prints_signals_and_scores(scenario_files: tuple[Path, Path]) -> None:
    data, labels = scenario_files
    result = CliRunner().invoke(cli, ["backtest", str(data), "--labels", str(labels)])
    assert result.exit_code == 0, result.output
    assert "signals from" in result.stdout and "precision" in result.stdout
    plain = CliRunner().invoke(cli, ["backtest", str(data)])
    assert plain.exit_code == 0 and "precision" not in plain.stdout


def test_cli_backtest_refuses_a_bad_labels_file(scenario_files: tuple[Path, Path]) -> None:
    data, labels = scenario_files
    labels.write_text('{"watch": "acme"}', encoding="utf-8")
    result = CliRunner().invoke(cli, ["backtest", str(data), "--labels", str(labels)])
    assert result.exit_code == 2 and "expected a JSON list" in result.stderr


def test_cli_simulate_writes_a_scenario_and_its_labels(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "flip.jsonl"
    result = CliRunner().invoke(cli, ["simulate", "--scenario", "noisy_low_volume",
                                      "--weeks", "0.1", "--seed", "4", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert out.stat().st_size > 0
    assert json.loads((tmp_path / "flip.labels.json").read_text(encoding="utf-8")) == []
    unknown = CliRunner().invoke(cli, ["simulate", "--scenario", "nope", "--out", str(out)])
    assert unknown.exit_code == 2 and "unknown scenario" in unknown.stderr
