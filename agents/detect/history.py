"""Backtest a history file: enriched mentions, or a raw export (CSV or JSON lines).

Raw mentions go through what a worker does to them, without Kafka: ``escucha replay``'s reader
(``--columns``, one :class:`~streams.connectors.replay.BadLine` per bad record), then the
classify stage's own classifier (the config's model, language detection, watches and priority
weights; :func:`agents.classify.classifier.classifier_for`) in batches of ``model.batch_size``,
then the detection engines the detect agent builds (:func:`agents.detect.backtest.
engine_factory_for`). Raw mentions are fed in post-time order (a stable sort, so a file already
in time order keeps its order): ``escucha replay`` publishes them so, and an export listed
newest first would otherwise make every mention but the first "late". To sort them the raw
mentions are held in memory, as ``escucha replay`` holds them (about a kB each); enriched files
stream. Bad lines are counted and reported through ``on_bad``, never dropped unseen; the run
goes on.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Final, Literal

from agents.classify.classifier import classifier_for, enrich_in_batches, model_for
from agents.detect.backtest import BacktestResult, backtest, engine_factory_for, read_jsonl
from agents.detect.scenarios import CrisisLabel
from models.errors import ModelError
from models.sentiment import SentimentModel
from streams.config.settings import Settings
from streams.connectors.replay import BadLine, ReplayError, read_file
from streams.core.records import EnrichedMention, Mention

__all__ = ["FORMATS", "HistoryError", "backtest_file", "sniff_format"]

Format = Literal["enriched", "jsonl", "csv"]
#: What ``backtest_file`` reads: enriched mentions (JSON lines), raw JSON lines, raw CSV.
FORMATS: Final[tuple[Format, ...]] = ("enriched", "jsonl", "csv")
_JSON_SUFFIXES: Final = (".jsonl", ".ndjson", ".json")
_SNIFF_LINES: Final = 50
_SNIFF_BYTES: Final = 2 * 1024 * 1024


class HistoryError(Exception):
    """The file as a whole cannot be backtested; the message says what to do about it."""


def sniff_format(path: Path) -> Format:
    """``csv`` for a ``.csv`` file; for JSON lines, ``enriched`` when the first JSON object
    among the first lines has an enriched mention's ``mention`` and ``watch_id``, else
    ``jsonl`` (raw). A file where no line is a JSON object: ``enriched`` for a JSON suffix
    (today's default, each line then reported bad), ``csv`` otherwise."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return "csv"
    with path.open("rb") as fh:
        for _ in range(_SNIFF_LINES):
            line = fh.readline(_SNIFF_BYTES)
            if not line:
                break
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except (ValueError, RecursionError):
                continue
            if isinstance(obj, dict):
                return "enriched" if "mention" in obj and "watch_id" in obj else "jsonl"
    return "enriched" if suffix in _JSON_SUFFIXES else "csv"


def backtest_file(
    path: Path,
    *,
    settings: Settings,
    fmt: Format | None = None,
    columns: Mapping[str, str] | None = None,
    source: str = "replay",
    labels: Sequence[CrisisLabel] | None = None,
    model_factory: Callable[[], SentimentModel] | None = None,
    on_bad: Callable[[int, str], None] = lambda line, reason: None,
) -> BacktestResult:
    """Backtest ``path`` with ``settings``; ``fmt`` None sniffs it (:func:`sniff_format`).

    ``columns`` (raw CSV only) and ``source`` are ``escucha replay``'s. ``model_factory``
    (raw only) defaults to the model the config names. Every bad line goes to ``on_bad(line,
    reason)`` as it is met and into the result's ``bad``. Raises :class:`HistoryError` for a
    file that cannot be read at all, a model that cannot be loaded, or raw input with no
    watch to match. ``seconds`` covers it all: reading, the model load, classification and
    detection.
    """
    path = Path(path)
    if not path.is_file():
        what = "is a directory, not a file" if path.is_dir() else "does not exist"
        raise HistoryError(f"cannot backtest {path}: it {what}; check the path")
    if fmt is None:
        fmt = "csv" if columns else sniff_format(path)
    if fmt not in FORMATS:
        raise HistoryError(f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}")
    if columns and fmt != "csv":
        raise HistoryError(f"a column map applies to raw CSV files only, not to {fmt}; "
                           f"drop it, or pass the csv format")
    bad: list[tuple[int, str]] = []

    def record(line: int, reason: str) -> None:
        bad.append((line, reason))
        on_bad(line, reason)

    began = time.perf_counter()
    if fmt == "enriched":
        result = backtest(read_jsonl(path, on_bad=record),
                          engine_factory=engine_factory_for(settings), labels=labels)
        result.read = result.mentions
    else:
        result = _raw(path, settings=settings, fmt=fmt, columns=columns, source=source,
                      labels=labels, model_factory=model_factory, on_bad=record)
    result.format = fmt
    result.bad = bad
    result.seconds = time.perf_counter() - began
    return result


def _raw(path: Path, *, settings: Settings, fmt: Literal["jsonl", "csv"],
         columns: Mapping[str, str] | None, source: str,
         labels: Sequence[CrisisLabel] | None,
         model_factory: Callable[[], SentimentModel] | None,
         on_bad: Callable[[int, str], None]) -> BacktestResult:
    if not settings.watches:
        raise HistoryError("raw mentions are matched to the config's watches, and it has "
                           "none: add watches to escucha.yaml (or pass --config FILE)")
    try:
        items = read_file(path, fmt=fmt, columns=columns, source=source)
        mentions: list[Mention] = []
        for item in items:
            if isinstance(item, BadLine):
                on_bad(item.line, item.reason)
            else:
                mentions.append(item)
    except ReplayError as exc:
        raise HistoryError(str(exc)) from exc
    mentions.sort(key=lambda m: m.created_at)  # as `escucha replay` publishes them
    try:
        model = (model_factory or (lambda: model_for(settings.model)))()
    except ModelError as exc:
        raise HistoryError(f"cannot load the model {settings.model.name!r}: {exc}") from exc
    classifier = classifier_for(settings, model)
    matched: set[str] = set()

    def enriched() -> Iterator[EnrichedMention]:
        for batch in enrich_in_batches(classifier, mentions,
                                       batch_size=settings.model.batch_size):
            for em in batch:
                matched.add(em.mention.key)
                yield em

    result = backtest(enriched(), engine_factory=engine_factory_for(settings), labels=labels)
    result.read = len(mentions)
    result.matched = len(matched)
    return result
