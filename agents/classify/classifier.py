"""The pure part of classify: mentions in, enriched mentions out (no Kafka, no Faust)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from itertools import islice
from typing import Any

from agents.classify.matching import WatchMatcher
from models.language import LanguageDetector
from models.loader import load_model
from models.priority import PriorityWeights, score_priority
from models.sentiment import Prediction, SentimentModel
from streams.config.model import ModelSettings
from streams.config.settings import Settings
from streams.core.records import (
    EnrichedMention,
    Mention,
    ModelInfo,
    Sentiment,
)

__all__ = ["Classifier", "classifier_for", "enrich_in_batches", "model_for"]


def model_for(cfg: ModelSettings) -> SentimentModel:
    """The model the ``model`` config names, loaded (seconds: run it off the event loop).

    ``isolation: process`` loads it in a child process; the repeated-text cache stays here,
    so a repost costs no trip to the child.
    """
    kwargs: dict[str, Any] = dict(
        name=cfg.name, label_map=cfg.label_map, allow_download=cfg.allow_download,
        threads=cfg.threads, batch_size=cfg.batch_size, quantize=cfg.quantize,
        cache_size=cfg.cache_size, languages=cfg.languages, runtime=cfg.runtime,
        cache_dir=cfg.cache_dir)
    if cfg.isolation != "process":
        return load_model(**kwargs)
    from models.cache import CachedModel
    from models.isolated import ProcessModel

    model: SentimentModel = ProcessModel(factory=load_model, kwargs=kwargs | {"cache_size": 0},
                                         batch_timeout_s=cfg.batch_timeout_s)
    return CachedModel(model, max_entries=cfg.cache_size) if cfg.cache_size else model


def classifier_for(settings: Settings, model: SentimentModel) -> Classifier:
    """The classifier the worker runs: the config's watches, languages and priority weights.

    The classify agent and ``escucha backtest`` on raw history both build it here, so a
    backtest matches and scores exactly as the live stage does.
    """
    cfg = settings.model
    return Classifier(matcher=WatchMatcher(settings.watches), model=model,
                      languages=LanguageDetector(languages=cfg.languages),
                      weights=PriorityWeights(**cfg.priority.model_dump()))


def enrich_in_batches(classifier: Classifier, mentions: Iterable[Mention], *,
                      batch_size: int) -> Iterator[list[EnrichedMention]]:
    """:meth:`Classifier.enrich` over ``mentions`` in order, ``batch_size`` at a time.

    Yields one list per batch (empty when nothing in it matched a watch), lazily, so a history
    larger than memory streams through; the caller sees how far it got after each batch.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, not {batch_size}")
    it = iter(mentions)
    while batch := list(islice(it, batch_size)):
        yield classifier.enrich(batch)

class Classifier:
    """The pure part of the stage: mentions in, enriched mentions out (no Kafka)."""

    def __init__(self, *, matcher: WatchMatcher, model: SentimentModel,
                 languages: LanguageDetector | None = None,
                 weights: PriorityWeights | None = None) -> None:
        self.matcher = matcher
        self.model = model
        self.languages = languages or LanguageDetector()
        self.weights = weights or PriorityWeights()

    def _with_language(self, mention: Mention) -> Mention:
        # Watches filter by language, so it is known before matching. A source's own tag is
        # kept when the text is too short to tell.
        found = self.languages.detect(mention.text)
        if found is None or found == mention.language:
            return mention
        return mention.model_copy(update={"language": found})

    def enrich(self, mentions: Sequence[Mention]) -> list[EnrichedMention]:
        mentions = [self._with_language(m) for m in mentions]
        matched = [(m, self.matcher.match(m)) for m in mentions]
        matched = [(m, w) for m, w in matched if w]
        if not matched:
            return []
        predictions = self.model.predict([m.text for m, _ in matched])
        now = datetime.now(UTC)
        out = []
        for (mention, watch_ids), pred in zip(matched, predictions, strict=True):
            out.extend(self._enriched(mention, watch_ids, pred, now))
        return out

    def _enriched(
        self, mention: Mention, watch_ids: list[str], pred: Prediction, now: datetime
    ) -> list[EnrichedMention]:
        anger = (pred.emotion or {}).get("anger", 0.0)
        priority, reasons = score_priority(mention, pred.scores.get("negative", 0.0),
                                           anger=anger, weights=self.weights)
        sentiment = Sentiment(label=pred.label, scores=pred.scores)  # type: ignore[arg-type]
        info = ModelInfo(id=pred.model_id, version=pred.model_version)
        return [
            EnrichedMention(
                mention=mention, watch_id=wid, watch_ids=watch_ids, sentiment=sentiment,
                priority=priority, reasons=reasons, model=info, classified_at=now,
            )
            for wid in watch_ids
        ]


