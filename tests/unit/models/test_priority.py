"""score_priority: urgent mentions score high with a reason for each factor."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from models.priority import RISK_TERMS, PriorityWeights, score_priority
from streams.core.records import Author, Engagement, Mention


def mention(text: str, *, followers: int = 0, verified: bool = False, likes: int = 0,
            shares: int = 0, replies: int = 0, language: str = "en") -> Mention:
    return Mention(
        source="test", id="1", author=Author(handle="h", followers=followers, verified=verified),
        text=text, language=language, created_at=datetime(2024, 5, 1, tzinfo=UTC),
        engagement=Engagement(likes=likes, shares=shares, replies=replies),
    )


def test_high_reach_verified_angry_risky_mention_scores_high_with_every_reason() -> None:
    m = mention("Acme, see you in court: lawsuit filed. Full RECALL now!", followers=2_500_000,
                verified=True, likes=5000, shares=1200, replies=800)
    score, reasons = score_priority(m, negative=0.97)
    assert score >= 90
    text = " | ".join(reasons)
    assert "negative (97%)" in reasons
    assert "reach: 2,500,000 followers" in reasons
    assert "verified author" in reasons
    assert any(r.startswith("engagement: ") for r in reasons)
    (risk,) = [r for r in reasons if r.startswith("risk: ")]
    assert "legal threat" in risk and "recall" in risk
    assert "safety" not in text


def test_neutral_small_account_scores_low_without_reasons() -> None:
    score, reasons = score_priority(mention("Just bought an acme phone", followers=40),
                                    negative=0.05)
    assert score <= 15
    assert reasons == []


def test_risk_terms_ignored_for_clearly_positive_mentions() -> None:
    _, reasons = score_priority(mention("no lawsuit here, love it"), negative=0.1)
    assert not any(r.startswith("risk") for r in reasons)


@pytest.mark.parametrize(
    ("text", "language", "risk"),
    [
        ("Voy a poner una demanda a Acme, mi abogado ya lo sabe", "es", "legal threat"),
        ("El producto es peligroso, mi hijo salió herido", "es", "safety"),
        ("Acme anuncia la retirada del modelo", "es", "recall"),
        ("La batería explotó, voy a llamar a mi abogado", "es", "safety"),
        ("La batería explotó, voy a llamar a mi abogado", "es", "legal threat"),
        ("Incendio en la tienda de Acme", "es", "safety"),
        ("A bateria explodiu no meu bolso", "pt", "safety"),
        ("Je vais porter plainte, mon avocat est prêt", "fr", "legal threat"),
        ("Rappel de produit chez Acme", "fr", "recall"),
        ("Arnaque totale, fuite de données", "fr", "fraud"),
        ("Arnaque totale, fuite de données", "fr", "data breach"),
        ("Acme ist gefährlich, Rückruf jetzt", "de", "recall"),
    ],
)
def test_non_english_risk_terms_are_detected(text: str, language: str, risk: str) -> None:
    _, reasons = score_priority(mention(text, language=language), negative=0.8)
    (found,) = [r for r in reasons if r.startswith("risk: ")]
    assert risk in found


@pytest.mark.parametrize("text", ["a suede jacket", "the recalled memories", "download speeds",
                                  "a firewall", "lawsuits"])
def test_risk_terms_match_whole_words_only(text: str) -> None:
    _, reasons = score_priority(mention(text), negative=0.9)
    assert not any(r.startswith("risk") for r in reasons)


def test_every_risk_category_is_reachable() -> None:
    for name, terms in RISK_TERMS.items():
        _, reasons = score_priority(mention(f"this is {terms[0]}!"), negative=0.9)
        assert any(r.startswith("risk: ") and name in r for r in reasons), name


@pytest.mark.parametrize("negative", [0.0, 0.5, 1.0])
@pytest.mark.parametrize(
    "m",
    [
        mention(""),
        mention("lawsuit recall fire scam hacked boycott outage", followers=2**63 - 1,
                verified=True, likes=2**63 - 1, shares=2**63 - 1, replies=2**63 - 1),
    ],
)
def test_score_is_always_within_0_and_100(m: Mention, negative: float) -> None:
    score, _ = score_priority(m, negative=negative)
    assert isinstance(score, int)
    assert 0 <= score <= 100


def test_extreme_weights_are_clamped() -> None:
    heavy = PriorityWeights(negativity=1000, reach=1000)
    assert score_priority(mention("x", followers=10**6), 1.0, weights=heavy)[0] == 100
    negative_weights = PriorityWeights(negativity=-1000)
    assert score_priority(mention("x"), 1.0, weights=negative_weights)[0] == 0


def test_more_negative_never_scores_lower() -> None:
    m = mention("acme lawsuit", followers=5000)
    scores = [score_priority(m, negative=n / 20)[0] for n in range(21)]
    assert scores == sorted(scores)
