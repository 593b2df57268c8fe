"""escucha's Faust transport: the fetch wait from the config, and nothing lost to a rebalance."""

from __future__ import annotations

from faust.types import TP

from streams.config.settings import Settings, Watch
from streams.wiring import build_worker


def _pipeline(**kafka: object) -> object:
    settings = Settings(watches=[Watch(id="acme", name="Acme", terms=["acme"])],
                        kafka={"bootstrap": "127.0.0.1:9", **kafka})  # type: ignore[arg-type]
    return build_worker(settings, bootstrap="127.0.0.1:9", install_agents=False)


async def test_the_consumer_fetch_waits_what_the_config_says() -> None:
    for wait in (100, 750):
        app = _pipeline(fetch_max_wait_ms=wait).app  # type: ignore[attr-defined]
        client = app.consumer._thread._create_worker_consumer(app.transport)
        assert client._fetch_max_wait_ms == wait  # Faust alone would say 1500


def test_a_message_below_the_last_one_read_is_never_dropped_as_read() -> None:
    consumer = _pipeline().app.consumer  # type: ignore[attr-defined]
    consumer._read_offset["tp"] = 53  # what a message fetched before a seek leaves behind
    # Faust drops offsets below "last read" and commits jumps above it: with it unknown,
    # the re-fetched messages after a seek are processed (at worst twice), never skipped.
    assert consumer._read_offset["tp"] is None


async def test_resuming_flow_that_runs_keeps_what_the_streams_have_buffered() -> None:
    app = _pipeline().app  # type: ignore[attr-defined]
    flow = app.flow_control
    buffer = app.FlowControlQueue(maxsize=10, clear_on_resume=True)
    buffer.put_nowait("from before the rebalance")
    flow.resume()  # flow comes back after a rebalance: what was buffered is read again
    assert buffer.empty()
    buffer.put_nowait("fetched after the seek")
    flow.resume()  # Faust's recovery says it again once flow already runs
    assert buffer.qsize() == 1, "a message the consumer is past would be dropped unacked"
    flow.suspend()
    flow.resume()
    assert buffer.empty()


def test_a_commit_never_steps_over_an_unacknowledged_message() -> None:
    consumer = _pipeline().app.consumer  # type: ignore[attr-defined]
    tp = TP("escucha.mentions.raw", 0)
    consumer._committed_offset[tp] = 262
    consumer._acked[tp].extend([263, 264])
    # Faust alone returns 265 here: the hole is one message wide, its check wants two.
    assert consumer._new_offset(tp) is None
    consumer._acked[tp].append(262)
    assert consumer._new_offset(tp) == 265


def test_nothing_is_committed_while_the_committed_offset_is_unknown() -> None:
    consumer = _pipeline().app.consumer  # type: ignore[attr-defined]
    tp = TP("escucha.mentions.raw", 1)
    # From revoke until the end-of-recovery seek Faust does not know the committed offset:
    # a run of acks at 40-42 may sit above an unacked 39. Faust alone commits 43.
    consumer._acked[tp].extend([40, 41, 42])
    assert consumer._new_offset(tp) is None
    consumer._committed_offset[tp] = 40  # the seek says where the partition stands
    assert consumer._new_offset(tp) == 43


async def test_a_revoke_commits_what_is_acknowledged_after_the_stages_acked_theirs() -> None:
    app = _pipeline().app  # type: ignore[attr-defined]
    consumer = app.consumer
    tp = TP("escucha.mentions.enriched", 2)
    consumer._committed_offset[tp] = 10
    consumer._acked[tp].extend([10, 11])
    order: list[str] = []

    async def stage_acks() -> None:  # e.g. the aggregate stage storing its snapshots
        order.append("stage")
        consumer._acked[tp].append(12)

    committed: list[dict[TP, int]] = []

    async def commit_offsets(offsets: dict[TP, int], **kw: object) -> bool:
        order.append("commit")
        committed.append(dict(offsets))
        return True

    app.before_revoke.append(stage_acks)
    consumer._commit_offsets = commit_offsets
    consumer.assignment = lambda: {tp}
    await consumer._commit_before_revoke({tp})
    assert order == ["stage", "commit"] and committed == [{tp: 13}]


def test_a_mended_hole_is_counted_for_ops() -> None:
    pipeline = _pipeline()
    pipeline.app.on_hole("escucha.mentions.raw", "reread", 206)  # type: ignore[attr-defined]
    pipeline.app.on_hole("escucha.mentions.raw", "expired", 3)  # type: ignore[attr-defined]
    sample = pipeline.registry.get_sample_value  # type: ignore[attr-defined]
    assert sample("escucha_consumer_hole_messages_total",
                  {"topic": "escucha.mentions.raw", "action": "reread"}) == 206
    assert sample("escucha_consumer_hole_messages_total",
                  {"topic": "escucha.mentions.raw", "action": "expired"}) == 3
