"""Malformed input at every entry: each bad item lands in the dead-letter topic with its reason,
the good ones still go through at their usual pace, and the worker's memory stays bounded.

Real parts: the embedded broker, one `escucha worker` process with the bundled model, and raw
bytes produced straight onto each topic a stage consumes (raw mentions, enriched mentions,
signals and acks, notifications) and POSTed to the webhook.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

from streams.connectors.simulate import SimBrand, simulate
from streams.core import topics
from streams.runtime.broker import EmbeddedBroker
from tests.support.kafka import produce_raw, read_all
from tests.support.procs import EscuchaProcess, free_port, write_config

TOKEN = "ingest-token-0123456789abcdef"
_NOW = datetime.now(UTC).replace(microsecond=0)

_GOOD = {"source": "test", "id": "x", "author": {"handle": "ana"}, "text": "acme rocks",
         "created_at": _NOW.isoformat()}
# Each kind of garbage the issue names, as raw bytes; all must be refused with a reason.
_BAD_RAW: dict[str, bytes] = {
    "not json": b"this is not json {",
    "wrong types": json.dumps({**_GOOD, "author": "ana", "text": 42}).encode(),
    "missing fields": json.dumps({"source": "test", "text": "acme"}).encode(),
    "1 MB text": json.dumps({**_GOOD, "id": "big", "text": "acme " * 200_000}).encode(),
    "invalid utf-8": b'{"source": "test", "id": "u", "text": "acme \xff\xfe"}',
    "deeply nested": ("[" * 100_000 + "]" * 100_000).encode(),
    "beyond 64 bits": json.dumps({**_GOOD, "id": "n", "author": {
        "handle": "a", "followers": 2**70}}).encode(),
    "empty": b"",
}


def _mentions(n: int, start: datetime, tag: str) -> list[bytes]:
    out = []
    for m in simulate(brands=[SimBrand(name="Acme", terms=("Acme",))], start=start,
                      duration=timedelta(minutes=10), rate_per_min=max(1, n // 10), seed=3):
        out.append(m.model_copy(update={"id": f"{tag}-{m.id}"}).model_dump_json().encode())
    return out[:n]


async def _until(predicate, *, timeout: float, what: str):  # type: ignore[no-untyped-def]  # noqa: ASYNC109
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = await predicate()
        if found:
            return found
        await asyncio.sleep(1.0)
    raise AssertionError(f"timed out waiting for {what}")


async def _enriched_ids(bootstrap: str, tag: str) -> set[str]:
    records = await read_all(bootstrap, topics.ENRICHED.name, idle_s=1.0, skip_invalid=True)
    return {r["mention"]["id"] for r in records
            if isinstance(r.get("mention"), dict) and str(r["mention"].get("id", "")
                                                          ).startswith(tag)}


def _utf8(raw: bytes) -> bool:
    try:
        raw.decode()
    except UnicodeDecodeError:
        return False
    return True


def _rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for pid {pid}")


def _record(scenario: str, figures: dict[str, object]) -> None:
    # One JSON line per scenario for the closing note (ESCUCHA_FAULT_REPORT names the file).
    path = os.environ.get("ESCUCHA_FAULT_REPORT")
    if path:
        with open(path, "a") as fh:
            fh.write(json.dumps({"scenario": scenario, **figures}) + "\n")


def _post(url: str, body: bytes) -> int:
    req = urllib.request.Request(url, data=body, method="POST", headers={
        "Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


async def test_garbage_at_every_entry_goes_to_the_dlq_and_good_input_keeps_flowing(
    tmp_path: Path, broker: EmbeddedBroker
) -> None:
    port = free_port()
    config = write_config(
        tmp_path / "escucha.yaml",
        connectors={"webhook": {"tokens": [TOKEN]}},
        watches=[{"id": "acme", "name": "Acme", "terms": ["acme"]}],
        datadir=str(tmp_path / "var"))
    env = {"ESCUCHA_KAFKA_BOOTSTRAP": broker.bootstrap, "ESCUCHA_WEB_PORT": str(port)}
    worker = EscuchaProcess(["worker", "--config", str(config)], env=env,
                            log=tmp_path / "worker.log")
    bootstrap = broker.bootstrap
    try:
        # Baseline: clean mentions only, timed from the first send to the last enriched one.
        clean = _mentions(300, _NOW - timedelta(hours=2), "clean")
        await produce_raw(bootstrap, topics.RAW.name, clean[:1])
        await _until(lambda: _enriched_ids(bootstrap, "clean"), timeout=120,
                     what="the worker to classify its first mention")
        t0 = time.monotonic()
        await produce_raw(bootstrap, topics.RAW.name, clean[1:])
        await _until(lambda: _has(bootstrap, "clean", len(clean)), timeout=180,
                     what="the clean batch")
        clean_s = time.monotonic() - t0
        rss_before = _rss(worker.proc.pid)

        # The same number of good mentions with garbage between them, on every topic.
        mixed = _mentions(300, _NOW - timedelta(hours=1), "mixed")
        garbage = list(_BAD_RAW.values()) * 5
        interleaved: list[bytes] = []
        for i, good in enumerate(mixed):
            interleaved.append(good)
            if i % 7 == 0 and garbage:
                interleaved.append(garbage.pop())
        t0 = time.monotonic()
        await produce_raw(bootstrap, topics.RAW.name, interleaved + garbage)
        for spec in (topics.ENRICHED, topics.SIGNALS, topics.ACKS, topics.NOTIFICATIONS):
            await produce_raw(bootstrap, spec.name, list(_BAD_RAW.values()))
        await _until(lambda: _has(bootstrap, "mixed", len(mixed)), timeout=180,
                     what="the mixed batch")
        mixed_s = time.monotonic() - t0
        # The webhook: the same garbage as bodies, and as items of one array.
        url = f"http://127.0.0.1:{port}/ingest"
        statuses = [_post(url, body) for body in _BAD_RAW.values()]
        assert all(400 <= s < 500 for s in statuses), statuses
        # Items that are each valid JSON but bad mentions: refused one by one (422), with
        # per-item errors; a body that is not JSON or too large is refused whole above.
        items = [v for v in _BAD_RAW.values() if v.startswith(b"{") and len(v) < 10_000
                 and _utf8(v)]
        assert _post(url, b"[" + b",".join(items) + b"]") == 422

        stages = {"classify": len(_BAD_RAW) * 5, "detect": len(_BAD_RAW),
                  "escalate": 2 * len(_BAD_RAW), "deliver": len(_BAD_RAW)}

        async def dead() -> list[dict[str, object]] | None:
            letters = await read_all(bootstrap, topics.DLQ.name, idle_s=1.0)
            counts = {s: sum(1 for d in letters if d["stage"] == s) for s in stages}
            return letters if all(counts[s] >= n for s, n in stages.items()) else None

        letters = await _until(dead, timeout=90, what="every bad item in the DLQ")
        assert all(d["reason"] for d in letters)
        reasons = " | ".join(str(d["reason"]) for d in letters).lower()
        for hint in ("json", "field required", "100000", "utf-8", "less than or equal"):
            assert hint in reasons, f"no reason mentions {hint!r}: {reasons[:2000]}"
        assert any(d["stage"] == "ingest" for d in letters)  # the webhook's bad items
        assert all(len(str(d["payload"])) <= 4096 for d in letters)  # the 1 MB one is cut
        rss_after = _rss(worker.proc.pid)
        assert worker.proc.poll() is None, worker.output()[-3000:]
        processed = (len(await _enriched_ids(bootstrap, "clean"))
                     + len(await _enriched_ids(bootstrap, "mixed")))
        assert processed == len(clean) + len(mixed)
        ratio = clean_s / mixed_s
        # A generous floor: the point is that garbage does not stall or crash the stream.
        assert ratio > 0.5, (clean_s, mixed_s)
        assert rss_after < rss_before * 1.5 + 200e6, (rss_before, rss_after)
        _record("bad input at every entry", {
            "good_in": len(clean) + len(mixed), "good_processed": processed,
            "bad_in": sum(stages.values()) + len(_BAD_RAW) + 1,
            "dead_letters": len(letters), "clean_batch_s": round(clean_s, 2),
            "mixed_batch_s": round(mixed_s, 2), "throughput_ratio": round(ratio, 2),
            "rss_mb_before": round(rss_before / 1e6), "rss_mb_after": round(rss_after / 1e6)})
    finally:
        worker.close()


async def _has(bootstrap: str, tag: str, n: int) -> bool:
    return len(await _enriched_ids(bootstrap, tag)) >= n

