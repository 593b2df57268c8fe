"""Priority 0-100 with reasons a person can read: how much this mention needs a human now."""

from __future__ import annotations

import math
from dataclasses import dataclass

from streams.core.records import Mention

__all__ = ["PriorityWeights", "RISK_TERMS", "score_priority"]

#: Terms that make a negative mention urgent, in the languages the model knows.
RISK_TERMS: dict[str, tuple[str, ...]] = {
    "legal threat": ("lawsuit", "sue", "lawyer", "demanda", "abogado", "plainte", "avocat",
                     "klage", "anwalt", "processo", "avvocato", "advogado", "denuncia"),
    # Past and noun forms too: whole words only, and "the battery exploded" is what people
    # write ("explotó", not "explotar").
    "safety": ("injured", "injury", "fire", "explode", "exploded", "explosion", "burned",
               "dangerous", "herido", "peligroso", "explotó", "explota", "explosión",
               "incendio", "quemadura", "quemó", "incendie", "explosé", "brûlé", "dangereux",
               "verletzt", "explodiert", "gefährlich", "perigoso", "explodiu", "incêndio",
               "pericoloso", "esploso", "esplosa"),
    "recall": ("recall", "retirada", "rappel", "rückruf", "richiamo", "recolhimento"),
    "boycott": ("boycott", "boicot", "boycotter", "boykott", "boicote", "boicottare"),
    "outage": ("outage", "down", "caído", "caida", "panne", "ausfall", "fora do ar",
               "guasto", "offline"),
    "data breach": ("breach", "hacked", "leak", "leaked", "hackeo", "filtración", "fuite",
                    "datenleck", "vazamento", "violazione"),
    "fraud": ("fraud", "scam", "estafa", "fraude", "arnaque", "betrug", "truffa", "golpe"),
}


@dataclass(frozen=True, kw_only=True)
class PriorityWeights:
    negativity: float = 40.0   # scaled by P(negative)
    reach: float = 20.0        # scaled by log10(followers)/6, capped
    verified: float = 5.0
    engagement: float = 10.0   # scaled by log10(likes + 2*shares + replies)/4, capped
    anger: float = 10.0        # scaled by P(anger), for mentions that are not positive
    risk_term: float = 20.0    # once, if any risk term appears in a non-positive mention


def score_priority(
    mention: Mention, negative: float, *, anger: float = 0.0,
    weights: PriorityWeights | None = None,
) -> tuple[int, list[str]]:
    """Return (priority, reasons); every point of the score is explained by a reason."""
    w = weights or PriorityWeights()
    reasons: list[str] = []
    total = 0.0
    neg_points = w.negativity * negative
    total += neg_points
    if negative >= 0.5:
        reasons.append(f"negative ({negative:.0%})")
    followers = mention.author.followers
    reach_points = w.reach * min(1.0, math.log10(followers + 1) / 6)
    total += reach_points
    if followers >= 10_000:
        reasons.append(f"reach: {followers:,} followers")
    if mention.author.verified:
        total += w.verified
        reasons.append("verified author")
    eng = mention.engagement
    interactions = eng.likes + 2 * eng.shares + eng.replies
    total += w.engagement * min(1.0, math.log10(interactions + 1) / 4)
    if interactions >= 100:
        reasons.append(f"engagement: {interactions:,} interactions")
    if negative >= 0.34:
        # Anger is what turns a complaint into a pile-on; joy or sadness do not.
        total += w.anger * anger
        if anger >= 0.5:
            reasons.append(f"angry ({anger:.0%})")
        text = mention.text.casefold()
        hits = [name for name, terms in RISK_TERMS.items()
                if any(_has_word(text, t) for t in terms)]
        if hits:
            total += w.risk_term
            reasons.append("risk: " + ", ".join(hits))
    return max(0, min(100, round(total))), reasons


def _has_word(text: str, term: str) -> bool:
    idx = text.find(term)
    while idx >= 0:
        before = text[idx - 1] if idx > 0 else " "
        after = text[idx + len(term)] if idx + len(term) < len(text) else " "
        if not before.isalnum() and not after.isalnum():
            return True
        idx = text.find(term, idx + 1)
    return False
