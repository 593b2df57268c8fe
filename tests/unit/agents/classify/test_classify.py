"""The classify stage's pure part with the real bundled model: language, sentiment, priority."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from agents.classify.agent import Classifier
from agents.classify.classifier import classifier_for, enrich_in_batches
from agents.classify.matching import WatchMatcher
from models.loader import load_model
from models.priority import PriorityWeights
from streams.config.settings import Watch, load_settings
from streams.core.records import Author, Engagement, Mention


def _mention(n: int, text: str, language: str | None = None, followers: int = 10) -> Mention:
    return Mention(source="test", id=str(n), text=text, language=language,
                   author=Author(handle=f"u{n}", followers=followers),
                   engagement=Engagement(likes=0), created_at=datetime(2026, 1, 1, tzinfo=UTC))


def test_language_is_detected_before_matching_and_priority_explains_itself() -> None:
    watches = [Watch(id="acme-es", name="Acme España", terms=["acme"], languages=["es"]),
               Watch(id="acme", name="Acme", terms=["acme"])]
    clf = Classifier(matcher=WatchMatcher(watches), model=load_model(cache_size=100),
                     weights=PriorityWeights(anger=30))
    out = clf.enrich([
        # No language from the source, and a wrong one: the text decides.
        _mention(1, "Acme me cobró dos veces y nadie responde, es una estafa vergonzosa"),
        _mention(2, "I am furious, Acme's charger exploded and burned my desk!!", "es",
                 followers=2_000_000),
    ])
    by = {(e.mention.id, e.watch_id): e for e in out}
    assert set(by) == {("1", "acme-es"), ("1", "acme"), ("2", "acme")}
    spanish = by[("1", "acme-es")]
    assert spanish.mention.language == "es"
    assert spanish.sentiment.label == "negative"
    assert any(r.startswith("risk: fraud") for r in spanish.reasons)
    loud = by[("2", "acme")]
    assert loud.mention.language == "en"
    assert loud.sentiment.label == "negative"
    assert any(r.startswith("angry") for r in loud.reasons), loud.reasons
    assert any(r.startswith("reach") for r in loud.reasons)
    assert loud.priority > spanish.priority


def test_the_worker_and_the_backtest_build_the_same_classifier_and_batch_in_order() -> None:
    settings = load_settings(None, model={"languages": ["en", "es"], "priority": {"reach": 0}},
                             watches=[{"id": "acme", "name": "Acme", "terms": ["acme"]}])
    clf = classifier_for(settings, load_model(cache_size=100))
    assert clf.weights == PriorityWeights(**settings.model.priority.model_dump())
    assert clf.weights.reach == 0
    texts = ["Acme is fine", "nothing here", "Acme broke again, awful", "Acme rocks",
             "Acme ne marche pas"]
    mentions = [_mention(n, t) for n, t in enumerate(texts)]
    batches = list(enrich_in_batches(clf, iter(mentions), batch_size=2))
    assert len(batches) == 3  # 2 + 2 + 1, each batch enriched on its own
    flat = [e for batch in batches for e in batch]
    assert [e.mention.id for e in flat] == ["0", "2", "3", "4"]
    assert [e.mention.id for e in clf.enrich(mentions)] == ["0", "2", "3", "4"]
    assert flat[-1].mention.language in {"en", "es"}  # the config's languages only
    with pytest.raises(ValueError, match="at least 1"):
        next(enrich_in_batches(clf, mentions, batch_size=0))
