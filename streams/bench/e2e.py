"""``escucha bench e2e``: the whole pipeline, its model's own limit and a naive loop, one run.

On a fresh embedded broker, in this order (each step alone on the machine, so none steals
the others' cores):

1. **model-only limit**: the classify model, loaded exactly as a worker loads it, on the
   stream's texts in full batches of ``model.batch_size``: the most classify could do.
2. **naive baseline**: a plain consumer loop calling a ``transformers`` pipeline once per
   message on the same broker and texts (naive.py).
3. **cold start**: one mention waits on the raw topic; ``escucha worker`` is started as its
   own process; the time until that mention is on the enriched topic.
4. **throughput**, per duplicate ratio: a burst of mentions written as fast as the producer
   can; the rate at which they reach the enriched topic over the middle 80% of them.
5. **half rate**: mentions at half the measured maximum for a while, with critical posts
   (a 2M-follower account, furious) for separate watches among them: p50/p99 from ingest to
   enriched for all, and from a critical post's ingest to its alert at a local Slack endpoint
   (slack_sink.py).
6. **spike** (optional): a watch with 40 minutes of quiet history gets an 8x burst live;
   the wall time from its first burst mention to the Slack alert.
7. **variants** (``--variants``): for each other model runtime, its model-only limit and then
   a fresh worker running it through one throughput run at 0% duplicates, so every variant's
   pipeline/model-only ratio comes from the same run, beside the naive loop's.

Latencies come from the records' own Kafka timestamps (the enriched record's is set by the
worker when it writes it) against the wall time each mention was handed to the producer.
CPU and peak RSS per process come from /proc (Linux); a worker's include its model process
(``model.isolation: process``).
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from aiokafka import AIOKafkaConsumer

from streams.bench.naive import naive_classifier, run_naive
from streams.bench.procs import (
    Worker,
    batch_figures,
    family_cpu_s,
    family_peak_rss_mb,
    proc_cpu_s,
    proc_peak_rss_mb,
)
from streams.bench.slack_sink import SlackSink
from streams.bench.texts import BRAND, TextSource
from streams.config.settings import Settings
from streams.connectors.publish import Publisher
from streams.connectors.simulate import Crisis, SimBrand, simulate
from streams.core import topics
from streams.core.records import Author, Engagement, Mention
from streams.runtime.broker import EmbeddedBroker, ensure_topics

__all__ = ["E2EOptions", "format_report", "run_e2e"]

Progress = Callable[[str], None]
_SPIKE_HISTORY = timedelta(minutes=40)
_SPIKE_WAIT_S = 240.0


@dataclass(frozen=True)
class E2EOptions:
    mentions: int = 4000  # per throughput run
    duplicate_ratios: tuple[float, ...] = (0.0, 0.4)
    half_rate_s: float = 30.0
    critical: int = 20  # critical posts in the half-rate phase, one watch each
    naive_mentions: int = 300
    workers: int = 1
    spike: bool = True
    partitions: int = 4
    seed: int = 0
    texts_file: Path | None = None
    batch_size: int = 32  # the worker's model.batch_size, and the model-only batches
    #: Model runtimes measured after the main run (model-only and one throughput run each);
    #: empty: the configured one only.
    variants: tuple[str, ...] = ()
    #: Also the store's cost: two fresh workers of the configured runtime, one with the
    #: mention store and one without, on the same texts (issue 24: a drop of at most 5%).
    store_cost: bool = False
    #: Such pairs run, in alternating order (off-on, on-off, ...): one pair's drop is within
    #: the noise of a shared 2-core machine; the median of several is the figure.
    store_cost_pairs: int = 3


# --- the enriched topic, read back ---------------------------------------------------------

class _Enriched:
    """Reads the enriched topic from the start; keeps the first write time of each mention."""

    def __init__(self, bootstrap: str) -> None:
        self._consumer = AIOKafkaConsumer(topics.ENRICHED.name, bootstrap_servers=bootstrap,
                                          group_id=None, auto_offset_reset="earliest",
                                          enable_auto_commit=False)
        self.written: dict[str, float] = {}
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self._consumer.start()
        self._task = asyncio.create_task(self._read())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self._consumer.stop()

    async def _read(self) -> None:
        async for msg in self._consumer:
            try:
                mention = json.loads(msg.value or b"{}")["mention"]
                key = f"{mention['source']}:{mention['id']}"
            except (ValueError, KeyError, TypeError):
                continue
            self.written.setdefault(key, msg.timestamp / 1000)

    async def wait_for(self, keys: Iterable[str], *, within_s: float, workers: list[Worker],
                       what: str) -> None:
        wanted = set(keys)
        await _until(lambda: wanted <= self.written.keys(), within_s=within_s, what=what,
                     workers=workers, detail=lambda: f"{len(wanted - self.written.keys())} of "
                     f"{len(wanted)} mentions not classified")


class BenchError(Exception):
    """The bench could not measure what it set out to (a worker died, a deadline passed)."""


# --- mentions ---------------------------------------------------------------------------------

def _mention(phase: str, i: int, text: str) -> Mention:
    # Small accounts only: nothing here may alert by itself; the language is left to the
    # pipeline's detector, as for most sources.
    return Mention(source="bench", id=f"{phase}-{i}", author=Author(
        handle=f"reader{i % 5000}", followers=50 + (i * 37) % 2000),
        text=text, created_at=datetime.now(UTC))


def _critical(i: int) -> Mention:
    name = f"Critco{i:02d}"
    return Mention(
        source="bench", id=f"critical-{i}", url=f"https://example.com/critic/{i}",
        author=Author(handle=f"critic{i}", name="Critic", followers=2_000_000, verified=True),
        text=(f"{name} is a disaster. Terrible, broken, dangerous product, awful support. "
              f"I hate it and I am furious. Never buying {name} again."),
        language="en", created_at=datetime.now(UTC),
        engagement=Engagement(likes=900, shares=400, replies=300))


async def _publish(bootstrap: str, mentions: Sequence[Mention]) -> dict[str, float]:
    """Write mentions as fast as the producer takes them; the wall time each was handed over."""
    sent: dict[str, float] = {}
    async with Publisher(bootstrap=bootstrap) as pub:
        for m in mentions:
            sent[m.key] = time.time()
            await pub.mention(m)
    return sent


def _percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def _sustained(times: Sequence[float]) -> float:
    """Mentions per second over the middle 80% of arrivals: no ramp-up, no tail."""
    ordered = sorted(times)
    lo, hi = int(0.1 * len(ordered)), int(0.9 * len(ordered)) - 1
    span = ordered[hi] - ordered[lo]
    return (hi - lo) / span if span > 0 else float(len(ordered))


# --- the steps -----------------------------------------------------------------------------

def _model_limit(settings: Settings, texts: Sequence[str], batch_size: int,
                 runtime: str | None = None) -> dict[str, Any]:
    from models.loader import load_model

    cfg = settings.model
    # In this process, not the worker's model process: the limit is the model's own pace.
    model = load_model(name=cfg.name, label_map=cfg.label_map,
                       allow_download=cfg.allow_download, threads=cfg.threads,
                       batch_size=batch_size, quantize=cfg.quantize,
                       cache_size=cfg.cache_size, languages=cfg.languages,
                       runtime=runtime or cfg.runtime, cache_dir=cfg.cache_dir)
    model.predict(list(texts[:batch_size]))  # warm-up: the first calls allocate
    began = time.perf_counter()
    for start in range(0, len(texts), batch_size):
        model.predict(list(texts[start:start + batch_size]))
    took = time.perf_counter() - began
    return {"texts": len(texts), "seconds": round(took, 2), "batch_size": batch_size,
            "per_s": round(len(texts) / took, 1)}


def _config(tmp: Path, sink: SlackSink, opts: E2EOptions, model: dict[str, Any],
            name: str = "bench", *, store: bool = True) -> Path:
    watches: list[dict[str, Any]] = [{"id": "brand", "name": BRAND, "terms": [BRAND.lower()]}]
    watches += [{"id": f"crit{i:02d}", "name": f"Critco{i:02d}", "terms": [f"critco{i:02d}"]}
                for i in range(opts.critical)]
    watches.append({"id": "spike", "name": "Spikeco", "terms": ["spikeco"],
                    "detect": {"warmup_min": 30}})
    config = {
        "datadir": str(tmp / "var"),
        "kafka": {"partitions": opts.partitions},
        "model": {"batch_size": opts.batch_size} | model,
        "notifiers": {"slack": {"token": "xoxb-bench", "channel": "#bench",
                                "base_url": sink.base_url}},
        # One alert per critical post, none rolled into a digest: each is a latency sample.
        "escalation": {"rate_limit_per_min": 10_000},
        "console": {"enabled": False},
        "watches": watches,
    }
    if not store:
        config["store"] = {"enabled": False}
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


async def _until(probe: Callable[[], bool], *, within_s: float, what: str,
                 workers: list[Worker], detail: Callable[[], str] = lambda: "") -> None:
    """Poll ``probe`` until true; a dead worker or the deadline ends the bench with why."""
    deadline = time.monotonic() + within_s
    while not probe():
        dead = [w for w in workers if not w.alive()]
        if dead:
            raise BenchError(f"a worker exited while waiting for {what}:\n{dead[0].tail()}")
        if time.monotonic() > deadline:
            said = detail()
            raise BenchError(f"timed out after {within_s:.0f}s waiting for {what}"
                             f"{f' ({said})' if said else ''}:\n{workers[0].tail()}")
        await asyncio.sleep(0.2)


async def _half_rate(bootstrap: str, texts: TextSource, rate: float, seconds: float,
                     critical: int, enriched: _Enriched, sink: SlackSink,
                     workers: list[Worker]) -> dict[str, Any]:
    """Mentions at ``rate``/s for ``seconds``, with ``critical`` alerting posts among them."""
    sent: dict[str, float] = {}
    crit_sent: dict[str, float] = {}
    total = int(rate * seconds)
    crit_every = seconds / max(1, critical)
    tick = 0.05
    async with Publisher(bootstrap=bootstrap) as pub:
        began = time.monotonic()
        n = c = 0
        while n < total or c < critical:
            elapsed = time.monotonic() - began
            while n < min(total, int(elapsed * rate)):
                m = _mention("half", n, texts.fresh())
                sent[m.key] = time.time()
                await pub.mention(m)
                n += 1
            if c < critical and elapsed >= (c + 0.5) * crit_every:
                m = _critical(c)
                crit_sent[f"crit{c:02d}"] = sent[m.key] = time.time()
                await pub.mention(m)
                await pub.flush()  # an alert does not wait for the producer's linger
                c += 1
            await asyncio.sleep(tick)
    await enriched.wait_for(sent, within_s=120, workers=workers, what="the half-rate phase")
    await _until(lambda: all(sink.first_post(w) for w in crit_sent), within_s=60,
                 what="every critical alert in Slack", workers=workers)
    lat = [max(0.0, enriched.written[k] - t) for k, t in sent.items()]
    notify = [max(0.0, (sink.first_post(w) or 0) - t) for w, t in crit_sent.items()]
    return {
        "rate_per_s": round(rate, 1), "seconds": seconds, "mentions": len(sent),
        "ingest_to_enriched_p50_s": round(_percentile(lat, 0.5), 3),
        "ingest_to_enriched_p99_s": round(_percentile(lat, 0.99), 3),
        "critical_alerts": len(notify),
        "critical_to_notify_p50_s": round(_percentile(notify, 0.5), 3),
        "critical_to_notify_p99_s": round(_percentile(notify, 0.99), 3),
        "critical_to_notify_max_s": round(max(notify), 3),
    }


async def _spike(bootstrap: str, sink: SlackSink, seed: int,
                 workers: list[Worker]) -> dict[str, Any]:
    """40 minutes of quiet history, then an 8x burst live; wall time to the Slack alert."""
    now = datetime.now(UTC)
    start = now - _SPIKE_HISTORY
    brand = SimBrand(name="Spikeco", terms=("Spikeco",))
    crisis = Crisis(brand="Spikeco", start=_SPIKE_HISTORY, duration=timedelta(minutes=10),
                    multiplier=8.0, topic="outage")
    # Small accounts only: the alert must come from the burst, not from one big post.
    stream = [m for m in simulate(brands=[brand], start=start,
                                  duration=_SPIKE_HISTORY + timedelta(seconds=_SPIKE_WAIT_S),
                                  rate_per_min=12, crises=[crisis], seed=seed)
              if m.author.followers < 50_000]
    history = [m for m in stream if m.created_at <= now]
    live = [m for m in stream if m.created_at > now]
    async with Publisher(bootstrap=bootstrap) as pub:
        for m in history:
            await pub.mention(m)
        await pub.flush()
        burst_at = (start + _SPIKE_HISTORY).timestamp()
        first_live = None
        for m in live:
            delay = m.created_at.timestamp() - time.time()
            if delay > 0:
                await asyncio.sleep(delay)
            if sink.first_post("spike"):
                break
            if any(not w.alive() for w in workers):
                raise BenchError("a worker exited during the spike")
            first_live = first_live or time.time()
            await pub.mention(m)
            await pub.flush()
    alerted = sink.first_post("spike")
    return {"history_mentions": len(history), "burst_multiplier": 8.0,
            "time_to_alert_s": round(alerted - burst_at, 1) if alerted else None,
            "burst_mentions_sent": sum(1 for m in live
                                       if alerted is None or m.created_at.timestamp() <= alerted)}


def _model_config(settings: Settings) -> dict[str, Any]:
    """The ``model`` settings the bench's workers run with: the ones it measures alone."""
    cfg = settings.model
    out: dict[str, Any] = {"name": cfg.name, "runtime": cfg.runtime,
                           "isolation": cfg.isolation, "threads": cfg.threads}
    return out | ({"cache_dir": str(cfg.cache_dir)} if cfg.cache_dir else {})


def _main_runtime(settings: Settings, opts: E2EOptions) -> str:
    """The configured runtime's real name (``auto`` resolved); variants need the bundled
    model, the only one with several."""
    from models.loader import BUNDLED, RUNTIME_CHOICES, resolve_runtime

    cfg = settings.model
    if opts.variants and cfg.name != BUNDLED:
        raise ValueError(f"--variants needs model.name 'bundled', not {cfg.name!r}")
    unknown = [v for v in opts.variants if v not in RUNTIME_CHOICES[1:]]
    if unknown:
        raise ValueError(f"unknown variants {unknown}: use some of {list(RUNTIME_CHOICES[1:])}")
    if cfg.name != BUNDLED:
        return cfg.name
    return resolve_runtime(cfg.runtime, quantize=cfg.quantize)


async def _variant(runtime: str, *, settings: Settings, opts: E2EOptions, tmp: Path,
                   sink: SlackSink, bootstrap: str, enriched: _Enriched, texts: Sequence[str],
                   progress: Progress, store: bool = True,
                   model_only: bool = True, run: int = 0) -> dict[str, Any]:
    """One runtime alone: its model-only limit, then one worker's throughput at 0% dups
    (with the mention store, or without it for the store's cost)."""
    limit: dict[str, Any] = {"per_s": None}
    if model_only:
        progress(f"{runtime}: model-only limit on {len(texts)} texts")
        limit = await asyncio.to_thread(_model_limit, settings, texts, opts.batch_size,
                                        runtime)
    name = (runtime if store else f"{runtime}-nostore") + (f"-{run}" if run else "")
    config = _config(tmp, sink, opts, _model_config(settings) | {"runtime": runtime},
                     name=f"bench-{name}", store=store)
    worker = Worker(config=config, bootstrap=bootstrap, log=tmp / f"worker-{name}.log",
                    datadir=tmp / f"var-{name}")
    runtime = name  # the mentions' ids below: each run its own
    progress(f"{runtime}: a worker, then {len(texts)} mentions")
    worker.start()
    try:
        first = _mention(f"{runtime}-cold", 0, f"{BRAND} {runtime} warm-up")
        await _publish(bootstrap, [first])
        await enriched.wait_for([first.key], within_s=180, workers=[worker],
                                what=f"the {runtime} worker's first mention")
        mentions = [_mention(f"{runtime}-d0", i, t) for i, t in enumerate(texts)]
        cpu0 = family_cpu_s(worker.pid)
        await _publish(bootstrap, mentions)
        await enriched.wait_for([m.key for m in mentions], within_s=600, workers=[worker],
                                what=f"{runtime} at 0% duplicates")
        # CPU the worker and its model process spent on them: on a shared machine less
        # noisy than the pace, which other tenants' load moves by ±10%. Read a moment after
        # the last one is enriched: the stages behind classify (the store's last batch) are
        # still at work then.
        await asyncio.sleep(2.0)
        cpu_ms = (family_cpu_s(worker.pid) - cpu0) * 1000 / len(mentions)
        per_s = _sustained([enriched.written[m.key] for m in mentions])
        rss = family_peak_rss_mb(worker.pid)
    finally:
        worker.stop()
    return {"model_only_per_s": limit["per_s"], "pipeline_per_s": round(per_s, 1),
            "peak_rss_mb": rss, "cpu_ms_per_mention": round(cpu_ms, 2)}


async def _store_cost(runtime: str, *, pairs: int, **kw: Any) -> dict[str, Any]:
    """Throughput of fresh workers on the same texts, the store off and on, ``pairs`` times
    in alternating order (so a machine slowing down over the run favours neither side): the
    share of the pipeline's pace that writing the store costs, per pair and the median."""
    runs: list[tuple[float, float]] = []
    cpu: list[tuple[float, float]] = []
    for k in range(pairs):
        figs: dict[bool, dict[str, Any]] = {}
        for store in (False, True) if k % 2 == 0 else (True, False):
            figs[store] = await _variant(runtime, store=store, model_only=False, run=k, **kw)
        runs.append((figs[True]["pipeline_per_s"], figs[False]["pipeline_per_s"]))
        cpu.append((figs[True]["cpu_ms_per_mention"], figs[False]["cpu_ms_per_mention"]))
    return store_cost_of(runs, cpu=cpu)


def store_cost(on_per_s: float, off_per_s: float) -> dict[str, Any]:
    """The pace with the store on against without: ``drop`` is the share lost (negative:
    the run with the store was faster, within noise)."""
    drop = round(1 - on_per_s / off_per_s, 3) if off_per_s > 0 else None
    return {"store_off_per_s": off_per_s, "store_on_per_s": on_per_s, "drop": drop}


def store_cost_of(runs: Sequence[tuple[float, float]],
                  cpu: Sequence[tuple[float, float]] = ()) -> dict[str, Any]:
    """:func:`store_cost` of each (on, off) pair, and the medians: ``drop`` is the median of
    the pairs' drops (not the drop of the medians: each pair shares its moment's load).
    ``cpu``: each pair's (on, off) CPU ms per mention of the worker and its model process;
    ``cpu_extra`` is the median share the store adds, which bounds the drop of a pipeline
    that is CPU-bound on its cores."""
    pairs = [store_cost(on, off) for on, off in runs]
    for pair, (on_ms, off_ms) in zip(pairs, cpu, strict=False):
        pair.update(cpu_ms_on=on_ms, cpu_ms_off=off_ms,
                    cpu_extra=round(on_ms / off_ms - 1, 3) if off_ms > 0 else None)
    drops = [p["drop"] for p in pairs if p["drop"] is not None]
    extra = [p["cpu_extra"] for p in pairs if p.get("cpu_extra") is not None]
    return {"store_off_per_s": statistics.median(p["store_off_per_s"] for p in pairs),
            "store_on_per_s": statistics.median(p["store_on_per_s"] for p in pairs),
            "drop": round(statistics.median(drops), 3) if drops else None,
            "cpu_extra": round(statistics.median(extra), 3) if extra else None,
            "pairs": pairs}


async def run_e2e(settings: Settings, opts: E2EOptions,
                  progress: Progress = lambda _: None) -> dict[str, Any]:
    out: dict[str, Any] = {"machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
                           "options": {"mentions": opts.mentions, "workers": opts.workers,
                                       "duplicate_ratios": list(opts.duplicate_ratios),
                                       "batch_size": opts.batch_size,
                                       "partitions": opts.partitions,
                                       "texts": str(opts.texts_file or "simulated")}}
    out["options"]["runtime"] = _main_runtime(settings, opts)
    texts = TextSource(seed=opts.seed, file=opts.texts_file)
    with tempfile.TemporaryDirectory(prefix="escucha-bench-") as tmpdir:
        tmp = Path(tmpdir)
        broker = EmbeddedBroker(partitions=opts.partitions, datadir=tmp / "broker",
                                log_path=tmp / "broker.log")
        progress("starting the embedded broker")
        bootstrap = broker.start()
        ensure_topics(bootstrap, partitions=opts.partitions)
        sink = SlackSink()
        workers: list[Worker] = []
        enriched = _Enriched(bootstrap)
        try:
            streams = {d: texts.stream(opts.mentions, d) for d in opts.duplicate_ratios}
            zero = streams.get(0.0) or texts.unique(opts.mentions)
            progress(f"model-only limit on {len(zero)} texts, batches of {opts.batch_size}")
            out["model_only"] = await asyncio.to_thread(_model_limit, settings, zero,
                                                        opts.batch_size)
            # The same model one text a call (the fair baseline), then the issue-9 MiniLM
            # loop (comparable with earlier runs): streams/bench/naive.py.
            cfg, naive_texts = settings.model, texts.unique(opts.naive_mentions)
            for key, model in (("naive", "same"), ("naive_minilm", "minilm")):
                progress(f"naive baseline ({model} model) on {opts.naive_mentions} messages")
                classify = await asyncio.to_thread(naive_classifier, model, name=cfg.name,
                                                   cache_dir=cfg.cache_dir)
                out[key] = await run_naive(bootstrap, naive_texts, classify, tag=model)
                del classify

            await sink.start()
            await enriched.start()
            config = _config(tmp, sink, opts, _model_config(settings))
            first = _mention("cold", 0, texts.fresh())
            await _publish(bootstrap, [first])
            progress(f"starting {opts.workers} worker(s)")
            for i in range(opts.workers):
                workers.append(Worker(config=config, bootstrap=bootstrap,
                                       log=tmp / f"worker-{i}.log", datadir=tmp / f"var-{i}"))
                workers[-1].start()
            await enriched.wait_for([first.key], within_s=120, workers=workers,
                                    what="the cold start")
            out["cold_start_s"] = round(enriched.written[first.key] - workers[0].started_at, 2)
            await _until(lambda: all(w.ready() for w in workers), within_s=120,
                         what="every worker ready", workers=workers)

            out["throughput"] = {}
            pids = [w.pid for w in workers] + ([broker.pid] if broker.pid else [])
            for ratio, stream in streams.items():
                progress(f"throughput at {ratio:.0%} duplicates: {len(stream)} mentions")
                mentions = [_mention(f"d{int(ratio * 100)}", i, t) for i, t in enumerate(stream)]
                cpu0, wall0 = {p: family_cpu_s(p) for p in pids}, time.monotonic()
                bench_cpu0, calls0 = proc_cpu_s(os.getpid()), batch_figures(workers[0].port)
                await _publish(bootstrap, mentions)
                await enriched.wait_for([m.key for m in mentions], within_s=600,
                                        workers=workers, what=f"{ratio:.0%} duplicates")
                wall = time.monotonic() - wall0
                calls = {k: v - calls0[k] for k, v in batch_figures(workers[0].port).items()}
                out["throughput"][f"{ratio:.0%}"] = {
                    "mentions": len(mentions),
                    "per_s": round(_sustained([enriched.written[m.key] for m in mentions]), 1),
                    "cpu_cores": {("broker" if p == broker.pid else f"worker-{pids.index(p)}"):
                                  round((family_cpu_s(p) - cpu0[p]) / wall, 2) for p in pids}
                    | {"bench": round((proc_cpu_s(os.getpid()) - bench_cpu0) / wall, 2)},
                    # Worker 0's model calls in this run: how full the batches were, and the
                    # texts/s inside the calls (the model's pace under the pipeline's load).
                    "model_calls": int(calls["calls"]),
                    "mean_batch": round(calls["texts"] / calls["calls"], 1)
                    if calls["calls"] else None,
                    "texts_per_model_second": round(calls["texts"] / calls["seconds"], 1)
                    if calls["seconds"] else None,
                }
            base = out["throughput"].get("0%") or next(iter(out["throughput"].values()))
            rate = base["per_s"] / 2
            progress(f"half rate: {rate:.0f} mentions/s for {opts.half_rate_s:.0f}s with "
                     f"{opts.critical} critical posts")
            out["half_rate"] = await _half_rate(bootstrap, texts, rate, opts.half_rate_s,
                                                opts.critical, enriched, sink, workers)
            if opts.spike:
                progress("spike: 40 min of history, then an 8x burst live (up to 4 min)")
                out["spike"] = await _spike(bootstrap, sink, opts.seed, workers)
            out["peak_rss_mb_per_worker"] = [family_peak_rss_mb(w.pid) for w in workers]
            out["broker_peak_rss_mb"] = proc_peak_rss_mb(broker.pid) if broker.pid else None
            out["bench_process_peak_rss_mb"] = proc_peak_rss_mb(os.getpid())
            for w in workers:  # the variants' workers join the same group: alone, one each
                w.stop()
            main = out["options"]["runtime"]
            out["variants"] = {main: {"model_only_per_s": out["model_only"]["per_s"],
                                      "pipeline_per_s": base["per_s"]}}
            for runtime in (v for v in opts.variants if v != main):
                out["variants"][runtime] = await _variant(
                    runtime, settings=settings, opts=opts, tmp=tmp, sink=sink,
                    bootstrap=bootstrap, enriched=enriched, texts=texts.unique(opts.mentions),
                    progress=progress)
            if opts.store_cost:
                out["store_cost"] = await _store_cost(
                    main, pairs=opts.store_cost_pairs, settings=settings, opts=opts, tmp=tmp,
                    sink=sink, bootstrap=bootstrap, enriched=enriched,
                    texts=texts.unique(opts.mentions),
                    progress=progress)
        finally:
            for w in workers:
                w.stop()
            await enriched.stop()
            await sink.stop()
            broker.stop()

    zero_tp = out["throughput"].get("0%", base)["per_s"]
    limit, naive = out["model_only"]["per_s"], out["naive"]["per_s"]
    minilm = out["naive_minilm"]["per_s"]
    out.update({
        "throughput_per_s": zero_tp,
        "model_limit_per_s": limit,
        "naive_baseline_per_s": naive,
        "naive_minilm_per_s": minilm,
        "ratio_to_model_limit": round(zero_tp / limit, 2) if limit else None,
        "ratio_to_naive": round(zero_tp / naive, 2) if naive else None,
        "ratio_to_naive_minilm": round(zero_tp / minilm, 2) if minilm else None,
        "p99_critical_to_notify_s": out["half_rate"]["critical_to_notify_p99_s"],
        "p99_ingest_to_enriched_s": out["half_rate"]["ingest_to_enriched_p99_s"],
        "peak_rss_mb": max(out["peak_rss_mb_per_worker"]),
        "spike_time_to_alert_s": (out.get("spike") or {}).get("time_to_alert_s"),
    })
    for fig in out["throughput"].values():
        fig["ratio_to_model_limit"] = round(fig["per_s"] / limit, 2) if limit else None
    for fig in out["variants"].values():
        only = fig["model_only_per_s"]
        fig["ratio_to_model_limit"] = round(fig["pipeline_per_s"] / only, 2) if only else None
        fig["ratio_to_naive"] = round(fig["pipeline_per_s"] / naive, 2) if naive else None
        fig["ratio_to_naive_minilm"] = (round(fig["pipeline_per_s"] / minilm, 2)
                                        if minilm else None)
    return out


def format_report(r: dict[str, Any]) -> list[str]:
    tp = r["throughput"]
    lines = [
        f"model-only limit        {r['model_limit_per_s']:>8.1f} texts/s "
        f"(batches of {r['model_only']['batch_size']})",
        f"naive baseline          {r['naive_baseline_per_s']:>8.1f} msgs/s "
        "(consumer loop, the same model one text a call)",
        f"naive MiniLM loop       {r['naive_minilm_per_s']:>8.1f} msgs/s "
        "(the issue-9 loop: a transformers pipeline over MiniLM per message)",
    ]
    for ratio, fig in tp.items():
        lines.append(f"pipeline at {ratio:>3} dups  {fig['per_s']:>8.1f} mentions/s  "
                     f"{fig['ratio_to_model_limit']}x the model limit; CPU cores "
                     + ", ".join(f"{k} {v}" for k, v in fig["cpu_cores"].items()))
    h = r["half_rate"]
    lines += [
        f"ratio to naive baseline {r['ratio_to_naive']}x, to the MiniLM loop "
        f"{r['ratio_to_naive_minilm']}x (at 0% duplicates)",
        f"half rate {h['rate_per_s']}/s: ingest→enriched p50 {h['ingest_to_enriched_p50_s']}s "
        f"p99 {h['ingest_to_enriched_p99_s']}s; critical→Slack p50 "
        f"{h['critical_to_notify_p50_s']}s p99 {h['critical_to_notify_p99_s']}s "
        f"({h['critical_alerts']} alerts)",
        f"cold start              {r['cold_start_s']} s (escucha worker → first classified)",
        f"peak RSS per worker     {r['peak_rss_mb_per_worker']} MB",
    ]
    if r.get("spike"):
        lines.append(f"spike (8x) time to alert {r['spike']['time_to_alert_s']} s")
    lines.append(f"{'variant':<12}{'model-only/s':>13}{'pipeline/s':>12}{'x model':>9}"
                 f"{'x naive':>9}{'x MiniLM loop':>15}")
    for name, fig in r["variants"].items():
        lines.append(f"{name:<12}{fig['model_only_per_s']:>13.1f}{fig['pipeline_per_s']:>12.1f}"
                     f"{fig['ratio_to_model_limit']!s:>9}{fig['ratio_to_naive']!s:>9}"
                     f"{fig['ratio_to_naive_minilm']!s:>15}")
    lines.append(f"{'naive loop':<12}{'':>13}{r['naive_baseline_per_s']:>12.1f}")
    lines.append(f"{'MiniLM loop':<12}{'':>13}{r['naive_minilm_per_s']:>12.1f}")
    if r.get("store_cost"):
        c = r["store_cost"]
        lines.append(f"mention store's cost    {c['store_on_per_s']} mentions/s with it, "
                     f"{c['store_off_per_s']} without (medians): a drop of {c['drop']:.1%}, "
                     "pairs " + ", ".join(f"{p['drop']:.1%}" for p in c.get("pairs", [])
                                          if p["drop"] is not None)
                     + (f"; CPU per mention +{c['cpu_extra']:.1%} (median)"
                        if c.get("cpu_extra") is not None else "")
                     if c["drop"] is not None else "mention store's cost    not measured")
    return lines
