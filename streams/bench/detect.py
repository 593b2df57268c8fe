"""``escucha bench detect``: the scenario library through the real detectors, scored and timed.

Each labelled scenario is drawn in memory and replayed through :mod:`agents.detect.backtest` with
the configured detection settings; the figures are pooled over the library (recall over all
labels, false signals over all watch-weeks) because a detector tuned to one scenario can be
wrong on the others. Speed is measured on the file path a user takes (``escucha backtest
FILE``: read JSON lines, parse, detect), against a parse-only pass over the same file in the
same run, so the figure reads as "detection costs N times reading the history".
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from agents.detect import backtest as bt
from agents.detect.scenarios import SCENARIOS, Scenario, write_jsonl
from streams.config.settings import DetectSettings

__all__ = ["LABELLED", "bench_detect", "format_report"]

#: The scenarios with crises (or a benign peak, or noise) to score; baseline_week is for speed.
LABELLED = ("sudden_spike", "slow_burn", "sentiment_flip", "influencer", "weekly_seasonality",
            "noisy_low_volume",
            # Everyday volumes (agents/detect/everyday_scenarios.py).
            "sustained_surge", "hour_burst", "slow_climb", "new_watch_in_surge",
            "source_outage", "busy_days", "quiet_weeks")
EVERYDAY = frozenset(LABELLED[6:])


def _score(scenario: Scenario, cfg: DetectSettings) -> dict[str, Any]:
    factory = bt.engine_factory(cfg, scenario.terms)
    began = time.perf_counter()
    signals, n = bt.run(scenario.mentions(), engine_factory=factory)
    seconds = time.perf_counter() - began
    scores = bt.evaluate(signals, scenario.labels, watches=scenario.watches,
                         start=scenario.start, end=scenario.end)
    scores.update(mentions=n, signals=len(signals), seconds=round(seconds, 2),
                  watch_weeks=round(scores["watch_weeks"], 3))
    return scores


def _speed(cfg: DetectSettings, *, weeks: float, seed: int, workdir: Path) -> dict[str, Any]:
    scenario = SCENARIOS["baseline_week"](seed=seed, weeks=weeks)
    path = workdir / "baseline_week.jsonl"
    write_jsonl(scenario, path)
    skipped: list[str] = []

    def bad(line: int, reason: str) -> None:
        skipped.append(f"{line}: {reason}")

    began = time.perf_counter()
    parsed = sum(1 for _ in bt.read_jsonl(path, on_bad=bad))
    parse_s = time.perf_counter() - began
    result = bt.backtest(bt.read_jsonl(path, on_bad=bad),
                         engine_factory=bt.engine_factory(cfg, scenario.terms), labels=[],
                         watches=scenario.watches, start=scenario.start, end=scenario.end)
    return {"watches": len(scenario.watches), "weeks": weeks, "mentions": parsed,
            "parse_only_s": round(parse_s, 2), "backtest_s": round(result.seconds, 2),
            "backtest_over_parse": round(result.seconds / parse_s, 2) if parse_s else None,
            "mentions_per_s": round(result.mentions / result.seconds) if result.seconds else None,
            "false_signals_per_watch_week": result.false_signals_per_watch_week,
            "skipped_lines": len(skipped)}


def bench_detect(cfg: DetectSettings, *, scenarios: Sequence[str] = LABELLED, seed: int = 0,
                 weeks: float | None = None, speed_weeks: float = 1.0,
                 progress: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    """Score ``scenarios`` and time a ``speed_weeks`` backtest of 10 watches (0 skips it).

    ``weeks`` shortens every scenario (a smoke run); None keeps each one's own length.
    """
    per: dict[str, dict[str, Any]] = {}
    for name in scenarios:
        progress(f"scenario {name}")
        per[name] = _score(SCENARIOS[name](seed=seed, weeks=weeks), cfg)
    labels = sum(s["labels"] for s in per.values())
    detected = sum(s["detected"] for s in per.values())
    false_signals = sum(s["false_signals"] for s in per.values())
    watch_weeks = sum(s["watch_weeks"] for s in per.values())
    # Pooled per kind over the scenarios (a kind can appear in several: sustained surges
    # in sustained_surge and new_watch_in_surge).
    kinds: dict[str, dict[str, Any]] = {}
    for s in per.values():
        for kind, fig in s["per_kind"].items():
            pool = kinds.setdefault(kind, {"labels": 0, "detected": 0, "times_s": []})
            pool["labels"] += fig["labels"]
            pool["detected"] += fig["detected"]
            pool["times_s"] = sorted([*pool["times_s"], *fig.get("times_s", [])])
    for pool in kinds.values():
        pool["recall"] = round(pool["detected"] / pool["labels"], 4) if pool["labels"] else None
        times = pool["times_s"]
        pool["median_time_to_detect_s"] = round(statistics.median(times), 1) if times else None
    everyday = [s for name, s in per.items() if name in EVERYDAY]
    ev_labels = sum(s["labels"] for s in everyday)
    out: dict[str, Any] = {
        "everyday_recall": round(sum(s["detected"] for s in everyday) / ev_labels, 4)
        if ev_labels else None,
        "quiet_false_signals_per_watch_week": per["quiet_weeks"]["false_signals_per_watch_week"]
        if "quiet_weeks" in per else None,
        "recall": round(detected / labels, 4) if labels else None,
        "labels": labels,
        "detected": detected,
        "false_signals_per_watch_week":
            round(false_signals / watch_weeks, 4) if watch_weeks else None,
        "spike_median_time_to_detect_s": kinds.get("spike", {}).get("median_time_to_detect_s"),
        "per_kind": kinds,
        "scenarios": {name: {k: v for k, v in s.items() if k != "per_kind"}
                      for name, s in per.items()},
    }
    if speed_weeks > 0:
        progress(f"speed: baseline_week, {speed_weeks} week(s) of 10 watches")
        with tempfile.TemporaryDirectory(prefix="escucha-bench-") as tmp:
            out["speed"] = _speed(cfg, weeks=speed_weeks, seed=seed, workdir=Path(tmp))
    return out


def _f(value: Any, unit: str = "") -> str:
    return "n/a" if value is None else f"{value}{unit}"


def format_report(report: dict[str, Any]) -> list[str]:
    """The human-readable table of :func:`bench_detect`'s figures."""
    lines = [f"{'scenario':<20}{'labels':>7}{'found':>7}{'signals':>9}{'false/ww':>10}"
             f"{'median TTD':>12}{'mentions':>10}{'secs':>7}"]
    for name, s in report["scenarios"].items():
        lines.append(f"{name:<20}{s['labels']:>7}{s['detected']:>7}{s['signals']:>9}"
                     f"{_f(s['false_signals_per_watch_week']):>10}"
                     f"{_f(s['median_time_to_detect_s'], 's'):>12}{s['mentions']:>10}"
                     f"{s['seconds']:>7}")
    lines.append(f"overall recall {_f(report['recall'])} ({report['detected']}/"
                 f"{report['labels']}), false signals per watch-week "
                 f"{_f(report['false_signals_per_watch_week'])}, 5x spike median time to "
                 f"detect {_f(report['spike_median_time_to_detect_s'], 's')}")
    if report.get("everyday_recall") is not None:
        lines.append(f"everyday volumes: recall {_f(report['everyday_recall'])}, false signals "
                     f"per watch-week in quiet weeks "
                     f"{_f(report['quiet_false_signals_per_watch_week'])}")
    for kind, fig in report["per_kind"].items():
        lines.append(f"  {kind:<20} {fig['detected']}/{fig['labels']} detected, median time "
                     f"to detect {_f(fig['median_time_to_detect_s'], 's')}")
    speed = report.get("speed")
    if speed:
        lines.append(f"backtest of {speed['weeks']} week(s) x {speed['watches']} watches: "
                     f"{speed['mentions']} mentions in {speed['backtest_s']}s "
                     f"({_f(speed['mentions_per_s'])} mentions/s; parsing alone "
                     f"{speed['parse_only_s']}s, so {speed['backtest_over_parse']}x parse)")
    return lines
