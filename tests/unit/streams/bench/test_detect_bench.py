"""A short run of `escucha bench detect` (figures are the bench's business, not the tests')."""

from __future__ import annotations

import json

from click.testing import CliRunner

from streams.cli import cli


def test_bench_detect_smoke_prints_pooled_figures() -> None:
    result = CliRunner().invoke(cli, ["bench", "detect", "--json", "--scenario", "sudden_spike",
                                      "--weeks", "0.5", "--speed-weeks", "0.01"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout.strip().splitlines()[-1])
    spike = report["scenarios"]["sudden_spike"]
    assert report["labels"] == spike["labels"] > 0
    assert 0 <= report["recall"] <= 1
    assert report["false_signals_per_watch_week"] is not None
    assert spike["mentions"] > 1000 and spike["watch_weeks"] > 0
    speed = report["speed"]
    assert speed["watches"] == 10 and speed["mentions"] > 0 and speed["skipped_lines"] == 0
    assert speed["backtest_s"] > 0 and speed["parse_only_s"] > 0


def test_bench_detect_rejects_unknown_scenario_and_too_short_runs() -> None:
    runner = CliRunner()
    unknown = runner.invoke(cli, ["bench", "detect", "--scenario", "tsunami"])
    assert unknown.exit_code == 2
    assert "unknown scenario(s) tsunami" in unknown.output
    short = runner.invoke(cli, ["bench", "detect", "--scenario", "slow_burn", "--weeks", "0.1"])
    assert short.exit_code == 2
    assert "give more weeks" in short.output


def test_bench_detect_pools_a_kind_over_scenarios_and_reports_everyday_figures() -> None:
    result = CliRunner().invoke(cli, ["bench", "detect", "--json", "--scenario", "hour_burst",
                                      "--scenario", "quiet_weeks", "--weeks", "1",
                                      "--speed-weeks", "0"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout.strip().splitlines()[-1])
    burst = report["per_kind"]["hour_burst"]
    assert burst["labels"] == report["scenarios"]["hour_burst"]["labels"] > 0
    assert len(burst["times_s"]) == burst["detected"]
    assert report["everyday_recall"] == round(burst["detected"] / burst["labels"], 4)
    quiet = report["scenarios"]["quiet_weeks"]["false_signals_per_watch_week"]
    assert report["quiet_false_signals_per_watch_week"] == quiet
