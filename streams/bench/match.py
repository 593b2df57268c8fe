"""``escucha bench match``: watch matching throughput on one core, against the naive way.

200 watches of 20 terms each (the issue's figure): every watch is a boolean query over a
brand's names, products, executives and risk words, with phrases, a wildcard, a hashtag and a
handle, e.g. ``("brand 7" OR brand7 OR #brand7 OR @brand7 ...) AND NOT (giveaway OR ...)``.
Mentions are simulator texts (tweet length, several languages) about some of those brands and
about nothing, so most texts hit few or no watches, as on a real firehose.

The baseline, in the same run on the same texts: one compiled regex per watch searched in
turn (how the matcher worked before queries, and how most teams write it first), which has to
be OR-only, so it answers a simpler question and still costs more.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from agents.classify.matching import WatchMatcher
from streams.config.settings import Watch
from streams.connectors.simulate import SimBrand, simulate
from streams.core.query import fold, positive_terms
from streams.core.records import Mention

__all__ = ["bench_match", "bench_watches", "format_report"]

_RISK = ["outage", "recall", "lawsuit", "boycott", "fraud", "breach", "refund", "scam"]
_NOISE = ["giveaway", "sweepstakes", "promo code", "affiliate"]


def bench_watches(n_watches: int = 200, terms_per_watch: int = 20, *,
                  seed: int = 0) -> list[Watch]:
    """``n_watches`` boolean queries of ``terms_per_watch`` terms each."""
    rng = random.Random(seed)
    watches = []
    for i in range(n_watches):
        brand = f"brand{i}"
        names = [brand, f'"brand {i}"', f"#{brand}", f"@{brand}", f"{brand}app",
                 f'"{brand} support"', f"{brand}*", f"ceo{i}", f"product{i}x", f"product{i}y"]
        risk = rng.sample(_RISK, 6)
        noise = rng.sample(_NOISE, terms_per_watch - len(names) - len(risk))
        names = names[:terms_per_watch - len(risk) - len(noise)]
        query = (f"({' OR '.join(names)}) AND ({' OR '.join(risk)} OR lang:es) "
                 f"AND NOT ({' OR '.join(noise)})")
        watches.append(Watch(id=f"w{i}", name=f"Brand {i}", query=query))
    return watches


def _texts(n: int, watches: list[Watch], *, seed: int) -> list[Mention]:
    """Simulator mentions: a quarter about the benchmark's brands, the rest about others."""
    brands = [SimBrand(name=f"Brand {i}", terms=(f"brand{i}", f"brand {i}", f"#brand{i}"))
              for i in range(0, len(watches), max(1, len(watches) // 20))]
    brands += [SimBrand(name=f"Other {i}", terms=(f"other{i}",)) for i in range(60)]
    start = datetime(2025, 1, 6, tzinfo=UTC)
    stream = simulate(brands=brands, start=start, duration=timedelta(days=30),
                      rate_per_min=max(60, n // 1000), crises=[], seed=seed)
    out: list[Mention] = []
    for mention in stream:
        out.append(mention)
        if len(out) >= n:
            break
    return out


def _naive(watches: list[Watch]) -> Callable[[Mention], list[str]]:
    """One alternation regex per watch over its positive terms, searched watch by watch."""
    def term(t: str) -> str:
        return r"(?<![\w@$])" + re.escape(t) + r"(?!\w)"

    compiled = [(w.id, re.compile("|".join(term(t) for t in positive_terms(w.query_tree))))
                for w in watches]

    def match(mention: Mention) -> list[str]:
        text = fold(mention.text)
        return [wid for wid, pattern in compiled if pattern.search(text)]

    return match


def _rate(fn: Callable[[Mention], Any], mentions: list[Mention], *,
          min_seconds: float) -> float:
    """Mentions per second over whole passes, at least ``min_seconds`` long."""
    done, began = 0, time.perf_counter()
    while True:
        for m in mentions:
            fn(m)
        done += len(mentions)
        elapsed = time.perf_counter() - began
        if elapsed >= min_seconds:
            return done / elapsed


def bench_match(*, watches: int = 200, terms: int = 20, mentions: int = 20_000, seed: int = 0,
                min_seconds: float = 3.0) -> dict[str, Any]:
    """Figures for ``escucha bench match`` (single thread: the matcher is pure Python + C)."""
    ws = bench_watches(watches, terms, seed=seed)
    items = _texts(mentions, ws, seed=seed)
    began = time.perf_counter()
    matcher = WatchMatcher(ws)
    compile_s = time.perf_counter() - began
    naive_match = _naive(ws)
    fast = _rate(matcher.match, items, min_seconds=min_seconds)
    # The naive way is slow enough that a tenth of the texts measures it just as well.
    sample = items[:max(1, len(items) // 10)]
    naive = _rate(naive_match, sample, min_seconds=min_seconds)
    matched = sum(1 for m in items if matcher.match(m))
    naive_matched = sum(1 for m in sample if naive_match(m))
    return {
        "watches": watches, "terms_per_watch": terms, "mentions": len(items),
        "matched_share": round(matched / len(items), 3),
        "naive_matched_share": round(naive_matched / len(sample), 3),
        "compile_s": round(compile_s, 3),
        "mentions_per_s": round(fast),
        "naive_regex_per_s": round(naive),
        "speedup_over_naive": round(fast / naive, 2),
        "target_per_s": 20_000,
        "note": "one core; the naive baseline matches OR-only term lists (no AND/NOT/fields)",
    }


def format_report(r: dict[str, Any]) -> list[str]:
    ok = "meets" if r["mentions_per_s"] >= r["target_per_s"] else "BELOW"
    return [
        f"{r['watches']} watches x {r['terms_per_watch']} terms, {r['mentions']} simulator "
        f"mentions ({r['matched_share']:.0%} match a watch); compiled in {r['compile_s']}s",
        f"matcher (Aho-Corasick + boolean trees): {r['mentions_per_s']:>9,} mentions/s "
        f"({ok} the {r['target_per_s']:,}/s target)",
        f"naive (one regex per watch)           : {r['naive_regex_per_s']:>9,} mentions/s",
        f"speed-up over naive: {r['speedup_over_naive']}x",
    ]
