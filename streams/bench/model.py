"""``escucha model bench``: how fast the offline models classify tweets on this machine.

All in one process, on real tweet texts: the raw forward-pass limit (tokenised batches
through the encoder alone, no heads, no n-grams, no language detection) and the full
``predict`` at several batch sizes for every variant (the bundled model: every runtime of
``models.multilingual.RUNTIMES``; MiniLM: fp32 and int8), then the repeated-text cache at
a stated duplicate ratio. Figures read as ratios against the forward-pass limit.
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

__all__ = ["bench_model"]


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _time_batches(call: Callable[[Sequence[str]], Any], texts: Sequence[str],
                  size: int) -> dict[str, float]:
    call(texts[:size])  # warm-up: first calls allocate
    latencies = []
    began = time.perf_counter()
    for start in range(0, len(texts) - size + 1, size):
        t0 = time.perf_counter()
        call(texts[start:start + size])
        latencies.append(time.perf_counter() - t0)
    total = time.perf_counter() - began
    done = len(latencies) * size
    return {"batch_size": size, "texts_per_s": round(done / total, 1),
            "p50_batch_ms": round(1000 * statistics.median(latencies), 1),
            "p99_batch_ms": round(1000 * _percentile(latencies, 0.99), 1)}


def _variants(name: str, *, threads: int | None, batch: int,
              cache_dir: Path | None) -> tuple[dict[str, Any], Callable[[Sequence[str]], Any]]:
    """The model's variants by name, and its forward-pass limit (tokenise + encoder only)."""
    if name == "minilm":
        from models.bundled import BundledModel, run_layers

        fp32 = BundledModel(threads=threads, batch_size=batch)
        tokenizer, embeddings, layers = fp32._tokenizer, fp32._embeddings, fp32._layers

        def forward_only(texts: Sequence[str]) -> None:
            with torch.inference_mode():
                enc = tokenizer(list(texts), padding=True, truncation=True,
                                max_length=fp32.max_length, return_tensors="pt")
                hidden = embeddings(input_ids=enc["input_ids"],
                                    token_type_ids=enc.get("token_type_ids"))
                run_layers(layers, hidden, enc["attention_mask"])

        int8 = BundledModel(threads=threads, batch_size=batch, quantize=True)
        return {"fp32": fp32, "int8": int8}, forward_only
    from models.multilingual import RUNTIMES, MultilingualModel

    cache = cache_dir or Path("var") / "models"
    models = {runtime: MultilingualModel(cache_dir=cache, runtime=runtime, threads=threads,
                                         batch_size=batch) for runtime in RUNTIMES}
    return models, models[RUNTIMES[0]].logits  # logits: no n-grams, no language detection


def bench_model(texts: Sequence[str], *, batch_sizes: Sequence[int] = (1, 8, 32, 64),
                duplicate_ratio: float = 0.4, threads: int | None = None, seed: int = 0,
                model: str = "bundled", cache_dir: Path | None = None,
                progress: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    """Time ``model`` (bundled: every runtime; minilm: fp32 and int8) on ``texts``."""
    from models.cache import CachedModel

    out: dict[str, Any] = {"texts": len(texts), "threads": threads or torch.get_num_threads(),
                           "model": model}
    variants, forward_only = _variants(model, threads=threads, batch=max(batch_sizes),
                                       cache_dir=cache_dir)
    size = 32 if 32 in batch_sizes else max(batch_sizes)
    progress(f"forward-pass limit at batch {size}")
    out["forward_limit"] = _time_batches(forward_only, texts, size)
    limit = out["forward_limit"]["texts_per_s"]
    out["variants"] = list(variants)
    for name, variant in variants.items():
        out[name] = []
        for b in batch_sizes:
            progress(f"{name} predict at batch {b}")
            row = _time_batches(variant.predict, texts, b)
            row["of_forward_limit"] = round(row["texts_per_s"] / limit, 2)
            out[name].append(row)
    fp32 = next(iter(variants.values()))
    # A stream where duplicate_ratio of the texts repeat an earlier one (reposts).
    rng = random.Random(seed)
    stream: list[str] = []
    for text in texts:
        stream.append(rng.choice(stream) if stream and rng.random() < duplicate_ratio else text)
    progress(f"cache at {duplicate_ratio:.0%} duplicates, batch {size}")
    without = _time_batches(fp32.predict, stream, size)
    cached = CachedModel(fp32, max_entries=50_000)
    with_cache = _time_batches(cached.predict, stream, size)
    out["cache"] = {"duplicate_ratio": duplicate_ratio, "without": without, "with": with_cache,
                    "speedup": round(with_cache["texts_per_s"] / without["texts_per_s"], 2),
                    "hit_rate": round(cached.hits / max(1, cached.hits + cached.misses), 3)}
    return out


def format_bench(result: dict[str, Any]) -> list[str]:
    lim = result["forward_limit"]
    lines = [f"{result.get('model', 'minilm')}: {result['texts']} real tweets, "
             f"{result['threads']} threads",
             f"forward-pass limit (encoder only, batch {lim['batch_size']}): "
             f"{lim['texts_per_s']} texts/s",
             f"{'variant':<11}{'batch':>6}{'texts/s':>10}{'p50 ms':>9}{'p99 ms':>9}"
             f"{'x limit':>9}"]
    for name in result.get("variants", ("fp32", "int8")):
        for row in result[name]:
            lines.append(f"{name:<11}{row['batch_size']:>6}{row['texts_per_s']:>10}"
                         f"{row['p50_batch_ms']:>9}{row['p99_batch_ms']:>9}"
                         f"{row['of_forward_limit']:>9}")
    c = result["cache"]
    lines.append(f"cache at {c['duplicate_ratio']:.0%} duplicates: {c['without']['texts_per_s']}"
                 f" -> {c['with']['texts_per_s']} texts/s ({c['speedup']}x, hit rate "
                 f"{c['hit_rate']:.0%})")
    return lines
