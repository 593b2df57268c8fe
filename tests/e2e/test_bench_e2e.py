"""`escucha bench e2e` runs end to end (a short smoke run; the figures are not asserted, they
go to bench/RESULTS.md from a full run)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

REQUIRED = ("throughput_per_s", "model_limit_per_s", "naive_baseline_per_s",
            "naive_minilm_per_s", "ratio_to_naive", "ratio_to_naive_minilm",
            "p99_critical_to_notify_s", "cold_start_s", "peak_rss_mb")


@pytest.mark.timeout(420)
def test_bench_e2e_smoke_run_reports_every_figure() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "streams.cli", "bench", "e2e", "--json", "--mentions", "200",
         "--half-rate-s", "5", "--critical", "2", "--naive", "10", "--no-spike"],
        capture_output=True, text=True, timeout=400, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)
    for key in REQUIRED:
        assert isinstance(report[key], int | float) and report[key] > 0, (key, report[key])
    assert set(report["throughput"]) == {"0%", "40%"}
    assert report["half_rate"]["critical_alerts"] == 2
    assert report["half_rate"]["mentions"] > 0
    assert report["naive"]["messages"] == report["naive_minilm"]["messages"] == 10
    # The configured runtime's row; `--variants` adds the others (checked by hand: slow).
    row = report["variants"][report["options"]["runtime"]]
    assert row["pipeline_per_s"] > 0 and row["ratio_to_model_limit"] > 0
    assert report["spike_time_to_alert_s"] is None  # --no-spike
    # Every process it started is gone: no worker or broker left behind.
    left = subprocess.run(["pgrep", "-af", "escucha-bench-"], capture_output=True, text=True)
    assert left.stdout == "", left.stdout


def test_bench_e2e_refuses_bad_options() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "streams.cli", "bench", "e2e", "--mentions", "5"],
        capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2
    assert "--mentions" in done.stderr
