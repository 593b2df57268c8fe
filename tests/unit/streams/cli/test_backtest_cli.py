"""`escucha backtest --columns ... FILE.csv [--json]` on a raw export, with the real model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from streams.cli import cli
from tests.support.history import COLUMNS, CONFIG, write_history
from tests.support.procs import write_config

SIGNAL_FIELDS = {"id", "watch_id", "detector", "severity", "scale_min", "window_start",
                 "window_end", "observed", "expected", "p_value", "score", "episode",
                 "trigger_posted_at", "summary"}


@pytest.fixture
def export(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path, dict[int, str]]:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ESCUCHA_CONFIG", raising=False)
    path = tmp_path / "export.csv"
    bad = write_history(path)
    return path, write_config(tmp_path / "escucha.yaml", **CONFIG), bad


def test_raw_csv_json_lists_every_signal_bad_line_and_count(
        export: tuple[Path, Path, dict[int, str]]) -> None:
    path, config, bad = export
    result = CliRunner().invoke(cli, ["backtest", "--config", str(config), "--columns", COLUMNS,
                                      str(path), "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["format"] == "csv"
    assert (doc["read"], doc["matched"], doc["mentions"], doc["bad_lines"]) == (92, 91, 91, 2)
    assert [b["line"] for b in doc["bad"]] == sorted(bad)
    assert doc["seconds"] > 0 and doc["signals"] == len(doc["signal_list"]) > 0
    for line, reason in bad.items():
        assert f"{path}:{line}: skipped: {reason}" in result.stderr
    for signal in doc["signal_list"]:
        assert set(signal) == SIGNAL_FIELDS and signal["watch_id"] == "acme"
    fired = {s["detector"] for s in doc["signal_list"]}
    assert {"influencer", "negative_spike"} <= fired
    spike = next(s for s in doc["signal_list"] if s["detector"] == "negative_spike")
    assert spike["window_start"] == "2026-02-10T09:26:00Z"
    assert spike["window_end"] == "2026-02-10T09:31:00Z" and spike["scale_min"] == 5
    assert 0 < spike["p_value"] < 1e-5 and spike["observed"] > spike["expected"]
    assert doc["precision"] is None  # no labels, nothing to judge by


def test_a_column_map_that_does_not_fit_is_refused(
        export: tuple[Path, Path, dict[int, str]]) -> None:
    path, config, _ = export
    runner = CliRunner()
    wrong = runner.invoke(cli, ["backtest", "--config", str(config), "--columns",
                                "text=message", str(path)])
    assert wrong.exit_code == 2 and "'message'" in wrong.stderr
    garbled = runner.invoke(cli, ["backtest", "--config", str(config), "--columns", "text",
                                  str(path)])
    assert garbled.exit_code == 2 and "expected FIELD=COLUMN" in garbled.stderr


def test_the_readme_example_prints_one_line_per_signal_then_the_counts(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(Path(__file__).resolve().parents[4] / "docs" / "backtest")
    monkeypatch.delenv("ESCUCHA_CONFIG", raising=False)
    result = CliRunner().invoke(cli, ["backtest", "export.csv", "--config", "escucha.yaml",
                                      "--columns", COLUMNS])
    assert result.exit_code == 0, result.output
    assert "export.csv:94: skipped: created_at" in result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 5 + 2
    spike = next(x for x in lines if " negative_spike " in x)
    assert spike.startswith("2026-02-10 09:26-09:31Z  acme ")
    assert " 5m " in spike and "observed " in spike and "expected " in spike and " p " in spike
    assert " post critical observed 2.5e+06 " in next(x for x in lines if " influencer " in x)
    assert lines[-2] == "read 92 csv mentions, 91 matched a watch, 2 bad lines"
    assert lines[-1].startswith("5 signals from 91 mentions")
