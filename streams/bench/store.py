"""``escucha bench store``: the mention store filled to a million rows, written and searched.

The mentions are synthetic but shaped like the simulator's (six languages, handles, hashtags,
two sentences each, ~120 characters), spread over 90 days and 10 watches, with words of known
frequency put in so each query has a known selectivity: ``battery`` (~4% of mentions with
the simulator's own, ``bateria`` in Spanish), ``refund`` (~0.5%) and ``lawsuit`` (~0.02%),
and an ``acmesupport`` author (~1%); ``acme`` is in ~75%.

Measured, on the backend asked for (the SQLite file by default):

- **writing**: rows per second through :meth:`MentionStore.write` (records to rows, one
  transaction per batch of the agent's size) while the store fills, and again on the full
  store, against the classifier's pace (~150-200 mentions/s on 2 cores, bench/RESULTS.md);
- **searching**: each query of :data:`QUERIES` repeated over different 30-day windows,
  p50/p95/max, first page of 50; the filtered full-text query of the issue is the first;
  a deep page (the 20th, by cursor) shows keyset paging costs what page 1 does;
- the **baseline** in the same run: the first query and the rare-word one with ``LIKE``
  over the stored words instead of the index (what a store without full-text search does);
- the store's **size** on disk, per million mentions.

``--path`` keeps the filled store, so later runs measure searches without filling again.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

from agents.store.search import Search, search_from_params
from agents.store.store import MentionStore
from streams.connectors.simulate import SimBrand, simulate
from streams.core.records import Author, Engagement, EnrichedMention, Mention, ModelInfo, Sentiment

__all__ = ["CLASSIFIER_RATE", "QUERIES", "bench_store", "format_report", "synthetic"]

#: The classifier's pace on 2 cores (bench/RESULTS.md, issue 3): the writer must keep up.
CLASSIFIER_RATE: Final = 200.0
START: Final = datetime(2026, 1, 1, tzinfo=UTC)
DAYS: Final = 90
WATCHES: Final = ("acme", "globex", "initech", "umbrella", "hooli", "stark", "wayne",
                  "wonka", "tyrell", "cyberdyne")
_MODEL = ModelInfo(id="bench", version="1")
_LABELS = ("negative", "neutral", "positive")
#: (word in English, in Spanish, share of mentions): selectivities the queries rely on.
_INJECT = (("battery", "bateria", 0.02), ("refund", "reembolso", 0.005),
           ("lawsuit", "demanda", 0.0002))

#: name -> API parameters; the first is the issue's "filtered full-text query".
QUERIES: Final[dict[str, dict[str, list[str]]]] = {
    "filtered_fts": {"q": ['"battery" AND lang:es -author:acmesupport'], "watch": ["acme"]},
    "fts_or_filters": {"q": ["battery OR refund"], "lang": ["en"], "sentiment": ["negative"]},
    "rare_term": {"q": ["lawsuit OR demanda"]},
    "common_term_priority": {"q": ["acme"], "watch": ["acme"], "min_priority": ["50"],
                             "sort": ["priority"]},
    "common_term_rare_filters": {"q": ["acme"], "lang": ["de"], "verified": ["true"]},
    "by_reach_verified": {"q": ["battery"], "verified": ["true"], "sort": ["reach"]},
    "prefix_wildcard": {"q": ["refun*"], "watch": ["acme", "globex"]},
    "inner_wildcard": {"q": ["bat?ery"], "sentiment": ["negative"]},
    "phrase": {"q": ['"release notes"'], "watch": ["globex"]},
    "phrase_accents": {"q": ['"voce precisa"'], "lang": ["pt"]},
    "filters_only": {"watch": ["initech"], "sentiment": ["negative"], "lang": ["fr"]},
}
_DEEP_PAGE: Final = 20


def _pool(seed: int) -> tuple[list[tuple[str, str]], list[str]]:
    brands = [SimBrand(name="Acme", terms=("Acme",)), SimBrand(name="Globex", terms=("Globex",))]
    texts: dict[str, str] = {}
    handles: set[str] = set()
    for m in simulate(brands=brands, start=START, duration=timedelta(hours=12),
                      rate_per_min=20, seed=seed):
        texts.setdefault(m.text, m.language or "en")
        handles.add(m.author.handle)
    return sorted(texts.items()), sorted(handles)


def synthetic(count: int, *, seed: int = 0, prefix: str = "b") -> Iterator[EnrichedMention]:
    """``count`` enriched mentions in post-time order over :data:`DAYS` days, with ids
    ``<prefix><n>``."""
    rng = random.Random(seed)
    pool, handles = _pool(seed)
    step = DAYS * 86400 / max(count, 1)
    for n in range(count):
        (first, lang), (second, _) = rng.choice(pool), rng.choice(pool)
        words = [first.rstrip(".!?") + ".", second]
        for en, es, share in _INJECT:
            if rng.random() < share:
                words.insert(rng.randrange(len(words) + 1), es if lang == "es" else en)
        author = "acmesupport" if rng.random() < 0.01 else rng.choice(handles)
        watch = WATCHES[min(int(rng.paretovariate(1.2)) - 1, len(WATCHES) - 1)]
        watch_ids = [watch] if rng.random() > 0.1 else sorted({watch, rng.choice(WATCHES)})
        label = _LABELS[rng.randrange(3)]
        followers = int(math.exp(rng.gauss(5.5, 2.0)))
        mention = Mention(
            source=rng.choice(("x", "bluesky", "mastodon", "reddit", "rss")), id=f"{prefix}{n}",
            url=f"https://example.com/p/{n}", text=" ".join(words), language=lang,
            author=Author(handle=author, followers=followers, verified=rng.random() < 0.03),
            created_at=START + timedelta(seconds=n * step),
            engagement=Engagement(likes=rng.randrange(50)))
        yield EnrichedMention(
            mention=mention, watch_id=watch_ids[0], watch_ids=watch_ids,
            sentiment=Sentiment(label=label, scores={label: 1.0}),  # type: ignore[arg-type]
            priority=rng.randrange(101), model=_MODEL, classified_at=mention.created_at)


def _write(store: MentionStore, mentions: Iterator[EnrichedMention], *, batch: int,
           progress: Callable[[str], None], total: int) -> dict[str, Any]:
    written, seconds, chunk = 0, 0.0, []
    last_report = time.monotonic()
    for em in mentions:
        chunk.append(em)
        if len(chunk) < batch:
            continue
        t0 = time.perf_counter()
        store.write(chunk)
        seconds += time.perf_counter() - t0
        written += len(chunk)
        chunk = []
        if time.monotonic() - last_report > 15:
            progress(f"{written:,} of {total:,} written ({written / seconds:,.0f}/s)")
            last_report = time.monotonic()
    if chunk:
        t0 = time.perf_counter()
        store.write(chunk)
        seconds += time.perf_counter() - t0
        written += len(chunk)
    return {"mentions": written, "seconds": round(seconds, 2),
            "rows_per_s": round(written / seconds) if seconds else None}


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)]


def _timed(store: MentionStore, search: Search) -> tuple[float, int]:
    t0 = time.perf_counter()
    page = store.search(search)
    return time.perf_counter() - t0, len(page.mentions)


def _windows(reps: int, seed: int) -> list[tuple[datetime, datetime]]:
    rng = random.Random(seed)
    out = []
    for _ in range(reps):
        start = START + timedelta(days=rng.uniform(0, DAYS - 30))
        out.append((start, start + timedelta(days=30)))
    return out


def _measure(store: MentionStore, params: dict[str, list[str]], windows: list[tuple[datetime,
             datetime]]) -> dict[str, Any]:
    base = search_from_params(params)
    took, found = [], []
    for since, until in windows:
        seconds, n = _timed(store, replace(base, since=since, until=until))
        took.append(seconds)
        found.append(n)
    return {"p50_ms": round(_percentile(took, 0.5) * 1000, 1),
            "p95_ms": round(_percentile(took, 0.95) * 1000, 1),
            "max_ms": round(max(took) * 1000, 1), "runs": len(took),
            "rows_min": min(found), "rows_max": max(found)}


def _deep_page(store: MentionStore, params: dict[str, list[str]]) -> dict[str, Any]:
    search = search_from_params(params)
    times = []
    for _ in range(_DEEP_PAGE):
        seconds, _n = _timed(store, search)
        times.append(seconds)
        page = store.search(search)
        if page.cursor is None:
            break
        search = search_from_params({**params, "cursor": [page.cursor]})
    return {"pages": len(times), "first_ms": round(times[0] * 1000, 1),
            "last_ms": round(times[-1] * 1000, 1)}


def _baseline(store: MentionStore, reps: int) -> dict[str, dict[str, Any]]:
    """The first query and the rare-word one as LIKE scans of the stored words instead of
    the full-text index, with the same filters, window and page."""
    ph = store.backend.placeholder

    def words(n: int) -> str:
        likes = " OR ".join([f"t.words LIKE {ph}"] * n)
        return f"EXISTS (SELECT 1 FROM mention_texts t WHERE t.id = m.id AND ({likes}))"

    window = f"m.posted_at >= {ph} AND m.posted_at < {ph}"
    order = "ORDER BY m.posted_at DESC, m.id DESC LIMIT 51"
    acme = (f"EXISTS (SELECT 1 FROM mention_watches w WHERE w.mention_id = m.id AND "
            f"w.watch_id = {ph})")
    cases = {
        "filtered_fts": (f"SELECT m.id FROM mentions m WHERE {acme} AND {words(1)} AND "
                         f"m.language = {ph} AND m.author <> {ph} AND {window} {order}",
                         ("acme", "% battery %", "es", "acmesupport")),
        "rare_term": (f"SELECT m.id FROM mentions m WHERE {words(2)} AND {window} {order}",
                      ("% lawsuit %", "% demanda %")),
    }
    out = {}
    for name, (sql, params) in cases.items():
        took = []
        for since, until in _windows(reps, 99):
            bound = (*params, int(since.timestamp() * 1000), int(until.timestamp() * 1000))
            with store._conn("read") as conn:  # the bench reaches in; the product never does
                cur = conn.cursor()
                t0 = time.perf_counter()
                cur.execute(sql, bound)
                cur.fetchall()
                took.append(time.perf_counter() - t0)
                if store.backend.name == "postgresql":
                    conn.rollback()
        out[name] = {"p50_ms": round(_percentile(took, 0.5) * 1000, 1),
                     "p95_ms": round(_percentile(took, 0.95) * 1000, 1), "runs": len(took)}
    return out


def bench_store(store: MentionStore, *, mentions: int = 1_000_000, batch: int = 500,
                reps: int = 40, seed: int = 0, more: int = 20_000,
                progress: Callable[[str], None] = lambda _msg: None) -> dict[str, Any]:
    store.open()
    have = store.count()
    fill: dict[str, Any] | None = None
    if have < mentions:
        progress(f"filling {store.location} from {have:,} to {mentions:,} mentions")
        source = synthetic(mentions, seed=seed)
        for _ in range(have):  # a kept store resumes where it stopped
            next(source)
        fill = _write(store, source, batch=batch, progress=progress, total=mentions - have)
    progress(f"writing {more:,} more into the full store")
    written = _write(store, synthetic(more, seed=seed + 1, prefix=f"more{store.count()}-"),
                     batch=batch, progress=progress, total=more)
    stored = store.count()
    size = store.size_bytes()
    windows = _windows(reps, seed)
    progress(f"searching: {len(QUERIES)} queries x {reps} windows")
    searches = {name: _measure(store, params, windows) for name, params in QUERIES.items()}
    deep = _deep_page(store, {"q": ["battery"], "sort": ["time"], "limit": ["50"]})
    progress("baseline: LIKE scans instead of the index")
    baseline = _baseline(store, max(3, reps // 8))
    return {
        "backend": store.backend.name, "mentions": stored, "batch": batch,
        "fill": fill, "write_full_store": written,
        "writer_vs_classifier": round((written["rows_per_s"] or 0) / CLASSIFIER_RATE, 1),
        "size_bytes": size, "bytes_per_million": round(size / stored * 1_000_000),
        "searches": searches, "deep_page": deep, "baseline_like": baseline,
        "speedup_vs_like": {name: round(b["p50_ms"] / searches[name]["p50_ms"], 1)
                            if searches[name]["p50_ms"] else None
                            for name, b in baseline.items()},
    }


def format_report(r: dict[str, Any]) -> list[str]:
    lines = [f"{r['mentions']:,} mentions on {r['backend']}, "
             f"{r['bytes_per_million'] / 2**30:.2f} GiB per million on disk"]
    if r["fill"]:
        f = r["fill"]
        lines.append(f"fill: {f['mentions']:,} in {f['seconds']:.0f}s = {f['rows_per_s']:,}/s "
                     f"(batches of {r['batch']})")
    w = r["write_full_store"]
    lines.append(f"writing into the full store: {w['rows_per_s']:,}/s = "
                 f"{r['writer_vs_classifier']}x the classifier's {CLASSIFIER_RATE:.0f}/s")
    lines.append(f"{'query':<22} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}  rows")
    for name, s in r["searches"].items():
        lines.append(f"{name:<22} {s['p50_ms']:>8.1f} {s['p95_ms']:>8.1f} {s['max_ms']:>8.1f}"
                     f"  {s['rows_min']}-{s['rows_max']}")
    d = r["deep_page"]
    lines.append(f"keyset paging: page 1 {d['first_ms']:.1f} ms, page {d['pages']} "
                 f"{d['last_ms']:.1f} ms")
    for name, b in r["baseline_like"].items():
        lines.append(f"baseline {name} as a LIKE scan: p50 {b['p50_ms']:.0f} ms, "
                     f"{r['speedup_vs_like'][name]}x the indexed search's")
    return lines


def default_path(datadir: Path) -> Path:
    return datadir / "bench" / "store-bench.sqlite3"
