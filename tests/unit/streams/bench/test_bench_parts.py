"""The end-to-end bench's own parts: its texts, its Slack endpoint, its arithmetic."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from agents.classify.matching import WatchMatcher
from models.cache import normalise
from streams.bench.e2e import _percentile, _sustained
from streams.bench.slack_sink import SlackSink
from streams.bench.texts import BRAND, TextSource
from streams.config.settings import Watch
from tests.support.store import enriched


def test_a_stream_at_zero_duplicates_makes_the_model_read_every_text() -> None:
    source = TextSource(seed=1)
    texts = source.stream(2000, 0.0)
    assert len({normalise(t) for t in texts}) == 2000
    assert all(BRAND in t for t in texts)
    lengths = sorted(len(t) for t in texts)
    assert 70 <= lengths[len(lengths) // 2] <= 160  # tweet length, not a few words


def test_the_duplicate_ratio_is_what_was_asked_and_streams_never_share_texts() -> None:
    source = TextSource(seed=2)
    first = source.stream(4000, 0.4)
    repeats = sum(n - 1 for n in Counter(normalise(t) for t in first).values())
    assert 0.36 <= repeats / len(first) <= 0.44
    assert any(t.startswith("RT @") for t in first)  # retweets count as repeats too
    second = source.stream(500, 0.0)
    assert not {normalise(t) for t in first} & {normalise(t) for t in second}


def test_real_texts_come_from_the_file_and_run_out_loudly(tmp_path: Path) -> None:
    file = tmp_path / "tweets.txt"
    file.write_text("first tweet\n\nsecond   tweet\n")
    source = TextSource(file=file)
    assert sorted(source.unique(2)) == [f"first tweet {BRAND}", f"second tweet {BRAND}"]
    # Each one matches the bench's main watch (its terms do not match inside a handle).
    matcher = WatchMatcher([Watch(id="brand", name=BRAND, terms=[BRAND.lower()])])
    assert matcher.match(enriched(1, f"first tweet {BRAND}").mention) == ["brand"]
    with pytest.raises(ValueError, match="has 2 texts"):
        source.fresh()
    with pytest.raises(ValueError, match="duplicate ratio"):
        TextSource(seed=0).stream(10, 1.0)


def test_sustained_rate_ignores_ramp_and_tail() -> None:
    # 100 arrivals at 10/s, then a straggler 60 s later: the middle 80% says 10/s.
    times = [i / 10 for i in range(100)] + [70.0]
    assert _sustained(times) == pytest.approx(10.0, rel=0.05)
    assert _percentile([1, 2, 3, 4, 100], 0.5) == 3
    assert _percentile([1, 2, 3, 4, 100], 0.99) == 100


async def test_the_slack_endpoint_answers_slacks_own_client() -> None:
    sink = SlackSink()
    await sink.start()
    try:
        client = AsyncWebClient(token="xoxb-bench", base_url=sink.base_url)
        resp = await client.chat_postMessage(
            channel="#bench", text="alert", metadata={
                "event_type": "escucha_incident",
                "event_payload": {"incident_id": "crit03.ab12", "key": "n1"}})
        assert resp["ok"] and resp["channel"] and resp["ts"]
        await client.chat_postMessage(channel=resp["channel"], thread_ts=resp["ts"],
                                      text="reply", metadata={
                                          "event_type": "escucha_incident",
                                          "event_payload": {"incident_id": "crit03.ab12"}})
        updated = await client.chat_update(channel=resp["channel"], ts=resp["ts"], text="x")
        assert updated["ok"]
        history = await client.conversations_history(channel=resp["channel"])
        assert history["messages"] == []
        # Only the top-level alert counts as an arrival, by its watch.
        assert [a.watch for a in sink.arrivals] == ["crit03"]
        assert sink.first_post("crit03") is not None and sink.first_post("other") is None
    finally:
        await sink.stop()


def test_variants_are_named_runtimes_of_the_bundled_model() -> None:
    from streams.bench.e2e import E2EOptions, _main_runtime
    from streams.cli.bench import _variant_list
    from streams.config.settings import load_settings

    assert _variant_list("") == ()
    assert _variant_list("onnx, torch,onnx") == ("onnx", "torch")
    assert _variant_list("all") == ("torch", "torch-bf16", "torch-int8", "onnx", "onnx-int8",
                                    "onnx-checked")
    settings = load_settings(None, model={"runtime": "onnx-int8"})
    assert _main_runtime(settings, E2EOptions(variants=("torch",))) == "onnx-int8"
    with pytest.raises(ValueError, match=r"unknown variants.*'cuda'"):
        _main_runtime(settings, E2EOptions(variants=("cuda",)))
    with pytest.raises(ValueError, match=r"needs model\.name 'bundled'"):
        _main_runtime(load_settings(None, model={"name": "minilm"}),
                      E2EOptions(variants=("onnx",)))


def test_the_store_cost_is_the_share_of_the_pace_lost_with_the_store_on() -> None:
    from streams.bench.e2e import store_cost

    assert store_cost(95.0, 100.0)["drop"] == 0.05
    assert store_cost(101.0, 100.0)["drop"] == -0.01
    assert store_cost(10.0, 0.0)["drop"] is None


def test_the_store_cost_of_several_pairs_is_the_median_drop() -> None:
    from streams.bench.e2e import store_cost_of

    told = store_cost_of([(90.0, 100.0), (99.0, 100.0), (40.0, 50.0)])
    assert [p["drop"] for p in told["pairs"]] == [0.1, 0.01, 0.2]
    assert told["drop"] == 0.1  # the median pair, not 1 - median(on) / median(off)
    assert (told["store_on_per_s"], told["store_off_per_s"]) == (90.0, 100.0)
    assert store_cost_of([(1.0, 0.0)])["drop"] is None
    with_cpu = store_cost_of([(90.0, 100.0), (99.0, 100.0), (40.0, 50.0)],
                             cpu=[(22.0, 20.0), (21.0, 20.0), (30.0, 20.0)])
    assert [p["cpu_extra"] for p in with_cpu["pairs"]] == [0.1, 0.05, 0.5]
    assert with_cpu["cpu_extra"] == 0.1 and with_cpu["drop"] == 0.1


def test_the_store_off_worker_config_is_valid_and_has_no_store(tmp_path: Path) -> None:
    from streams.bench.e2e import E2EOptions, _config
    from streams.config.settings import load_settings

    class _Sink:
        base_url = "http://127.0.0.1:9"

    off = load_settings(str(_config(tmp_path, _Sink(), E2EOptions(), {}, "off",  # type: ignore[arg-type]
                                    store=False)))
    on = load_settings(str(_config(tmp_path, _Sink(), E2EOptions(), {}, "on")))  # type: ignore[arg-type]
    assert not off.store.enabled and on.store.enabled
