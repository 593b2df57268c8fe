"""POST /ingest on a real worker: auth, limits, per-item errors, dead letters, dedup, fuzzing."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streams.runtime.broker import EmbeddedBroker
from tests.support.connectors import dead_letters, raw_mentions
from tests.support.procs import EscuchaProcess, free_port, metric_value, write_config

TOKEN = "ingest-token-0123456789"


@pytest.fixture
def worker(tmp_path: Path, broker: EmbeddedBroker) -> Iterator[str]:
    port = free_port()
    config = write_config(
        tmp_path / "escucha.yaml",
        kafka={"bootstrap": broker.bootstrap},
        web={"port": port},
        datadir=str(tmp_path / "var"),
        watches=[{"id": "acme", "name": "Acme", "query": "acme"}],
        connectors={"webhook": {"tokens": [TOKEN], "max_bytes": 65536, "max_items": 50}},
    )
    proc = EscuchaProcess(["worker", "--config", str(config)], env={},
                          log=tmp_path / "worker.log")
    try:
        proc.wait_serving(port)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.close()


def item(i: int, **extra: Any) -> dict[str, Any]:
    return {"id": f"z{i}", "text": f"acme post {i}", "author": {"handle": f"user{i}"},
            "created_at": "2025-03-01T12:00:00Z", **extra}


async def post(url: str, body: bytes | str, *, token: str | None = TOKEN,
               ctype: str = "application/json") -> tuple[int, dict[str, Any]]:
    headers = {"Content-Type": ctype}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    async with aiohttp.ClientSession() as s, s.post(f"{url}/ingest", data=body,
                                                    headers=headers) as resp:
        return resp.status, await resp.json(content_type=None)


async def test_ingest_end_to_end(worker: str, broker: EmbeddedBroker) -> None:
    # Auth: nothing without the token, and nothing published.
    assert (await post(worker, json.dumps(item(0)), token=None))[0] == 401
    assert (await post(worker, json.dumps(item(0)), token="wrong"))[0] == 401

    # One object; then an array with good and bad items: the good ones go through.
    status, body = await post(worker, json.dumps(item(1)))
    assert (status, body["accepted"]) == (202, 1)
    batch = [item(2), {"text": "no author"}, "not an object", item(3, text=5),
             {"text": "acme by a bare handle", "author": "zapier_user"}, item(1)]
    status, body = await post(worker, json.dumps(batch))
    assert status == 202
    assert body["accepted"] == 2 and body["duplicates"] == 1
    errors = {e["index"]: e["error"] for e in body["errors"]}
    assert set(errors) == {1, 2, 3}
    assert "author" in errors[1] and "JSON object" in errors[2] and "text" in errors[3]

    # Whole-body problems.
    assert (await post(worker, "{not json"))[0] == 400
    assert (await post(worker, "[" * 100_000 + "]" * 100_000))[0] in (400, 413)
    assert (await post(worker, json.dumps([item(i) for i in range(51)])))[0] == 413
    assert (await post(worker, json.dumps(item(9, text="x" * 70_000))))[0] == 413
    assert (await post(worker, "a=b", ctype="application/x-www-form-urlencoded"))[0] == 415
    status, body = await post(worker, json.dumps([{"text": 1}]))
    assert status == 422 and body["accepted"] == 0

    raw = await raw_mentions(broker.bootstrap)
    ids = [m["id"] for m in raw]
    assert ids.count("z1") == 1 and ids.count("z2") == 1  # z1 posted twice, published once
    assert "z3" not in ids and all(m["source"] == "webhook" for m in raw)
    assert any(m["author"]["handle"] == "zapier_user" and m["id"].startswith("h") for m in raw)
    dead = await dead_letters(broker.bootstrap)
    reasons = [d["reason"] for d in dead]
    assert sum("webhook: item" in r for r in reasons) == 4  # 3 in the batch, 1 in the 422
    assert any("not JSON" in r for r in reasons)
    assert all(d["stage"] == "ingest" for d in dead)


_json = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False) | st.text(max_size=50),
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=10), kids,
                                                               max_size=4),
    max_leaves=20)
_mention_like = st.fixed_dictionaries(
    {}, optional={"id": _json | st.text(max_size=20), "text": _json | st.text(max_size=200),
                  "author": _json | st.fixed_dictionaries({"handle": st.text(max_size=20)}),
                  "created_at": _json | st.just("2025-01-01T00:00:00Z"),
                  "engagement": _json, "source": _json | st.text(max_size=10)})


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(payload=st.one_of(_json, st.lists(_mention_like, max_size=5), _mention_like,
                         st.binary(max_size=200)))
def test_fuzzed_bodies_get_a_clear_answer_and_the_worker_lives(worker: str,
                                                                 payload: object) -> None:
    body = payload if isinstance(payload, bytes) else json.dumps(payload)
    status, answer = asyncio.run(post(worker, body))
    assert status in (202, 400, 413, 422), (status, answer)
    assert "error" in answer or "accepted" in answer
    if "accepted" in answer:
        assert answer["accepted"] + answer["duplicates"] + len(answer["errors"]) >= 1


async def test_the_readme_example_sent_three_times_is_one_mention_across_workers_and_restarts(
    tmp_path: Path, broker: EmbeddedBroker
) -> None:
    # The README's curl body: no id, no created_at. Each send defaults the time to now.
    body = json.dumps([{"text": "Acme is down again", "author": "someone",
                        "url": "https://example.com/p/1"}])

    async def start(name: str) -> tuple[EscuchaProcess, str]:
        port = free_port()
        config = write_config(
            tmp_path / f"{name}.yaml", kafka={"bootstrap": broker.bootstrap},
            web={"port": port}, datadir=str(tmp_path / f"var-{name}"),
            watches=[{"id": "acme", "name": "Acme", "query": "acme"}],
            connectors={"webhook": {"tokens": [TOKEN]}})
        proc = EscuchaProcess(["worker", "--config", str(config)], env={},
                              log=tmp_path / f"{name}.log")
        proc.wait_serving(port)
        deadline = time.monotonic() + 120
        while metric_value(port, "escucha_ready") != 1:  # in the group, views read
            assert time.monotonic() < deadline, proc.output()[-3000:]
            await asyncio.sleep(0.5)
        return proc, f"http://127.0.0.1:{port}"

    first, a = await start("a")
    second: EscuchaProcess | None = None
    again: EscuchaProcess | None = None
    try:
        second, b = await start("b")
        answers = [await post(a, body)]
        await asyncio.sleep(2)  # a tool retrying after a timeout, seconds later
        answers.append(await post(b, body))  # another worker behind the load balancer
        first.close()
        again, c = await start("a-restarted")  # the first worker, restarted
        answers.append(await post(c, body))
    finally:
        for proc in (first, second, again):
            if proc is not None:
                proc.close()
    assert [(s, r["accepted"], r["duplicates"]) for s, r in answers] == [
        (202, 1, 0), (202, 0, 1), (202, 0, 1)], answers
    raw = [m for m in await raw_mentions(broker.bootstrap) if m["text"] == "Acme is down again"]
    assert len(raw) == 1 and raw[0]["id"].startswith("h"), raw
