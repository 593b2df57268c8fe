"""Backtests: replay enriched mentions through the real detection code and score the signals.

No Kafka: each watch gets its own engine and its own state dict, exactly what the detect agent
keeps in its table, and mentions are fed in the order given (event-time order for a scenario;
a file's disorder is the engine's to handle, as it is live). :func:`evaluate` compares the
signals with labelled crises: a signal is a true positive when its watch has a label and its
``window_end`` falls in ``[label.start, label.end + grace]``; everything is in event time.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from agents.classify.matching import fold
from agents.detect.detectors import DetectionEngine
from agents.detect.scenarios import CrisisLabel
from streams.config.settings import DetectSettings, Settings
from streams.core.records import EnrichedMention, RecordError, Signal, parse

__all__ = [
    "BacktestResult",
    "backtest",
    "engine_factory",
    "engine_factory_for",
    "evaluate",
    "format_signal",
    "format_summary",
    "read_jsonl",
    "run",
    "signal_json",
]

_WEEK_S = 7 * 24 * 3600.0
_VERDICTS = ("false", "excused", "hit")  # an episode takes the best of its signals


class _Engine(Protocol):
    def observe(self, state: dict[str, Any], em: EnrichedMention) -> list[Signal]: ...


@dataclass
class BacktestResult:
    """Signals of one backtest and, when labels were given, how good they were."""

    signals: list[Signal]
    mentions: int
    seconds: float
    """Wall time of the replay (detection, and reading or generating the mentions)."""
    per_watch_weeks: float
    """Watches x weeks of event time covered: the denominator of the false-signal rate."""
    precision: float | None = None
    recall: float | None = None
    median_time_to_detect_s: float | None = None
    false_signals_per_watch_week: float | None = None
    per_kind: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Per label kind: labels, detected, recall, median_time_to_detect_s."""
    format: str = "enriched"
    """What the file held: ``enriched`` mentions, or raw ones as ``jsonl`` or ``csv``."""
    read: int | None = None
    """Good records read from the file (raw mentions, or enriched ones)."""
    matched: int | None = None
    """Raw mentions that matched at least one watch, by distinct ``source:id`` (None for
    enriched input)."""
    bad: list[tuple[int, str]] = field(default_factory=list)
    """Lines that could not be read: (line number, reason), in file order."""

    def to_json(self) -> dict[str, Any]:
        """The figures, then every signal (``signal_list``) and every bad line."""
        return {
            "precision": self.precision,
            "recall": self.recall,
            "median_time_to_detect_s": self.median_time_to_detect_s,
            "false_signals_per_watch_week": self.false_signals_per_watch_week,
            "signals": len(self.signals),
            "mentions": self.mentions,
            "seconds": round(self.seconds, 3),
            "per_kind": self.per_kind,
            "format": self.format,
            "read": self.read,
            "matched": self.matched,
            "bad_lines": len(self.bad),
            "bad": [{"line": line, "reason": reason} for line, reason in self.bad],
            "signal_list": [signal_json(s) for s in self.signals],
        }


def run(mentions: Iterable[EnrichedMention], *,
        engine_factory: Callable[[str], Any]) -> tuple[list[Signal], int]:
    """Feed ``mentions`` in the given order; one engine and one state per watch.

    ``engine_factory(watch_id)`` makes a watch's engine on its first mention; engines need an
    ``observe(state, em) -> list[Signal]`` method. Returns the signals and the mention count.
    """
    engines: dict[str, _Engine] = {}
    states: dict[str, dict[str, Any]] = {}
    signals: list[Signal] = []
    n = 0
    for em in mentions:
        n += 1
        engine = engines.get(em.watch_id)
        if engine is None:
            engine = engines[em.watch_id] = engine_factory(em.watch_id)
            states[em.watch_id] = {}
        signals.extend(engine.observe(states[em.watch_id], em))
    return signals, n


def _median(values: list[float]) -> float | None:
    return round(statistics.median(values), 3) if values else None


def evaluate(signals: Sequence[Signal], labels: Sequence[CrisisLabel], *,
             watches: Sequence[str], start: datetime, end: datetime,
             grace: timedelta = timedelta(minutes=30)) -> dict[str, Any]:
    """Score ``signals`` against ``labels`` over ``watches`` x ``[start, end]``.

    Signals of one episode count as one alert, true if any of them falls in a labelled
    crisis. Labels that are not ``required`` excuse the alerts inside them and are left out
    of recall.

    Returns precision (None without signals), recall (None without labels), the median
    time-to-detect in seconds over detected labels (None if none), false signals per
    watch-week (None for an empty span), the raw counts and ``per_kind``.
    """
    by_watch: dict[str, list[CrisisLabel]] = {}
    for label in labels:
        by_watch.setdefault(label.watch, []).append(label)
    required = [x for x in labels if x.required]
    first_hit: dict[int, datetime] = {}
    # One alert per episode: the surge detector updates its incident as it grows (same
    # ``episode``), and a person sees one incident, not one per update.
    alerts: dict[str, str] = {}  # episode -> "hit", "excused" or "false"
    for signal in signals:
        verdict = "false"
        for label in by_watch.get(signal.watch_id, ()):
            if label.start <= signal.window_end <= label.end + grace:
                if not label.required:
                    verdict = "hit" if verdict == "hit" else "excused"
                    continue
                verdict = "hit"
                key = id(label)
                if key not in first_hit or signal.window_end < first_hit[key]:
                    first_hit[key] = signal.window_end
        episode = signal.episode or signal.id
        before = alerts.get(episode, "false")
        alerts[episode] = max(before, verdict, key=_VERDICTS.index)
    true_positives = sum(v == "hit" for v in alerts.values())
    false_signals = sum(v == "false" for v in alerts.values())
    counted = true_positives + false_signals
    labels = required
    ttd = {id(x): max(0.0, (first_hit[id(x)] - x.start).total_seconds())
           for x in labels if id(x) in first_hit}
    per_kind: dict[str, dict[str, Any]] = {}
    for kind in sorted({x.kind for x in labels}):
        of_kind = [x for x in labels if x.kind == kind]
        times = [ttd[id(x)] for x in of_kind if id(x) in ttd]
        per_kind[kind] = {"labels": len(of_kind), "detected": len(times),
                          "recall": round(len(times) / len(of_kind), 4),
                          "median_time_to_detect_s": _median(times),
                          "times_s": sorted(round(t, 1) for t in times)}
    watch_weeks = len(watches) * (end - start).total_seconds() / _WEEK_S
    return {
        "precision": round(true_positives / counted, 4) if counted else None,
        "recall": round(len(ttd) / len(labels), 4) if labels else None,
        "median_time_to_detect_s": _median(list(ttd.values())),
        "false_signals_per_watch_week":
            round(false_signals / watch_weeks, 4) if watch_weeks > 0 else None,
        "true_positives": true_positives,
        "false_signals": false_signals,
        "labels": len(labels),
        "detected": len(ttd),
        "watch_weeks": watch_weeks,
        "per_kind": per_kind,
    }


def engine_factory(cfg: DetectSettings,
                   terms: Mapping[str, Iterable[str]] | None = None) -> Callable[[str], Any]:
    """A factory of the real detection engine, as the detect agent builds it.

    ``terms`` maps watch ids to their terms (from the config or a scenario); a watch not in it
    gets its own id as its only term.
    """
    known = {w: frozenset(fold(t) for t in ts) for w, ts in (terms or {}).items()}

    def make(watch_id: str) -> DetectionEngine:
        return DetectionEngine(cfg, watch_terms=known.get(watch_id, frozenset({fold(watch_id)})))

    return make


def engine_factory_for(settings: Settings) -> Callable[[str], Any]:
    """The engines a worker with ``settings`` runs: each configured watch with its own
    detection settings (``settings.detect_for``) and terms, as the detect agent builds them.

    A watch the config lacks (a scenario's) gets the global settings and its id as its term.
    """
    watches = {w.id: w for w in settings.watches}
    fallback = engine_factory(settings.detect)

    def make(watch_id: str) -> Any:
        watch = watches.get(watch_id)
        if watch is None:
            return fallback(watch_id)
        return DetectionEngine(settings.detect_for(watch), watch_terms=frozenset(watch.all_terms))

    return make


def backtest(mentions: Iterable[EnrichedMention], *, engine_factory: Callable[[str], Any],
             labels: Sequence[CrisisLabel] | None = None, watches: Sequence[str] | None = None,
             start: datetime | None = None, end: datetime | None = None,
             grace: timedelta = timedelta(minutes=30)) -> BacktestResult:
    """:func:`run` then, if ``labels`` is not None, :func:`evaluate`.

    ``watches`` defaults to those seen plus those labelled, ``start``/``end`` to the first and
    last post time seen. Without labels the scores stay None: there is nothing to judge by.
    """
    seen: set[str] = set()
    span: list[datetime] = []

    def observed() -> Iterator[EnrichedMention]:
        for em in mentions:
            seen.add(em.watch_id)
            at = em.mention.created_at
            if not span:
                span.extend((at, at))
            elif at < span[0]:
                span[0] = at
            elif at > span[1]:
                span[1] = at
            yield em

    began = time.perf_counter()
    signals, n = run(observed(), engine_factory=engine_factory)
    seconds = time.perf_counter() - began
    all_watches = list(watches) if watches is not None else sorted(
        seen | {x.watch for x in labels or ()})
    lo = start or (span[0] if span else None)
    hi = end or (span[1] if span else None)
    weeks = ((hi - lo).total_seconds() / _WEEK_S) if lo and hi else 0.0
    result = BacktestResult(signals=signals, mentions=n, seconds=seconds,
                            per_watch_weeks=round(len(all_watches) * weeks, 4))
    if labels is not None and lo is not None and hi is not None:
        scores = evaluate(signals, labels, watches=all_watches, start=lo, end=hi, grace=grace)
        result.precision = scores["precision"]
        result.recall = scores["recall"]
        result.median_time_to_detect_s = scores["median_time_to_detect_s"]
        result.false_signals_per_watch_week = scores["false_signals_per_watch_week"]
        result.per_kind = scores["per_kind"]
    return result


def read_jsonl(path: str | Path, *,
               on_bad: Callable[[int, str], None]) -> Iterator[EnrichedMention]:
    """Enriched mentions from a JSON-lines file, lazily; ``on_bad(line, reason)`` for the rest.

    Blank lines are skipped silently; a line that is not an EnrichedMention costs that line.
    """
    with Path(path).open("rb") as fh:
        for number, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            try:
                yield parse(EnrichedMention, raw)
            except RecordError as exc:
                on_bad(number, str(exc))


#: The fields of a signal a backtest reports, in the signals topic's own names.
_SIGNAL_FIELDS = ("id", "watch_id", "detector", "severity", "scale_min", "window_start",
                  "window_end", "observed", "expected", "p_value", "score", "episode",
                  "trigger_posted_at", "summary")


def signal_json(signal: Signal) -> dict[str, Any]:
    """A signal's reported fields as JSON values (times in ISO 8601, UTC)."""
    return signal.model_dump(mode="json", include=set(_SIGNAL_FIELDS))


def _window(signal: Signal) -> str:
    start, end = signal.window_start, signal.window_end
    if start.date() == end.date():
        return f"{start:%Y-%m-%d %H:%M}-{end:%H:%M}Z"
    return f"{start:%Y-%m-%d %H:%M}Z-{end:%Y-%m-%d %H:%M}Z"


def format_signal(signal: Signal) -> str:
    """One line: window, watch, detector, scale, severity, observed against expected, p-value,
    then the summary."""
    scale = f"{signal.scale_min}m" if signal.scale_min is not None else "post"
    p = "n/a" if signal.p_value is None else f"{signal.p_value:.2g}"
    return (f"{_window(signal)}  {signal.watch_id:<12} {signal.detector:<16} {scale:>5} "
            f"{signal.severity:<8} observed {signal.observed:g} expected {signal.expected:.3g} "
            f"p {p}  {signal.summary}")


def _fmt(value: float | None, unit: str = "", digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}{unit}"


def format_summary(result: BacktestResult, *, labelled: bool) -> list[str]:
    """The human summary: counts and speed, then the scores if there were labels."""
    rate = result.mentions / result.seconds if result.seconds > 0 else 0.0
    lines = [f"{len(result.signals)} signals from {result.mentions} mentions over "
             f"{result.per_watch_weeks:.2f} watch-weeks in {result.seconds:.1f}s "
             f"({rate:,.0f} mentions/s)"]
    if labelled:
        lines.append(
            f"precision {_fmt(result.precision)}  recall {_fmt(result.recall)}  "
            f"median time to detect {_fmt(result.median_time_to_detect_s, 's', 0)}  "
            f"false signals per watch-week {_fmt(result.false_signals_per_watch_week)}")
        for kind, figures in result.per_kind.items():
            lines.append(f"  {kind:<16} {figures['detected']:.0f}/{figures['labels']:.0f} "
                         f"detected, median time to detect "
                         f"{_fmt(figures['median_time_to_detect_s'], 's', 0)}")
    return lines
