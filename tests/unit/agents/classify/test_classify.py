"""The classify stage's pure part with the real bundled model: language, sentiment, priority."""

from __future__ import annotations

from datetime import UTC, datetime

from agents.classify.agent import Classifier
from agents.classify.matching import WatchMatcher
from models.loader import load_model
from models.priority import PriorityWeights
from streams.config.settings import Watch
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
