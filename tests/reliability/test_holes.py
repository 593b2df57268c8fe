"""A message dropped inside a worker is read again, without a restart.

The hole watch (streams/runtime/holes.py, run by the consumer in streams/runtime/faust.py)
against the real embedded broker and a real Faust worker on escucha's transport, whose agent
drops one message the first time it sees it (tests/support/dropping_worker.py).
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

from aiokafka import AIOKafkaConsumer, TopicPartition

from streams.core.topics import TopicSpec
from streams.runtime.broker import EmbeddedBroker, ensure_topics
from tests.support.faults import report_figures, until
from tests.support.kafka import produce_raw

_TOPIC, _GROUP, _DROP, _COUNT = "escucha.test.holes", "escucha-holes-test", 7, 40
_GRACE_S = 10.0  # streams/runtime/faust.py HOLE_GRACE_S (the worker commits every 0.5 s)


async def _committed(bootstrap: str) -> int | None:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=_GROUP,
                                enable_auto_commit=False)
    await consumer.start()
    try:
        committed: int | None = await consumer.committed(TopicPartition(_TOPIC, 0))
        return committed
    finally:
        await consumer.stop()


def _start(log: Path, bootstrap: str, datadir: Path, *, always: bool = False,
           topic_group: tuple[str, str] = (_TOPIC, _GROUP)) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "tests.support.dropping_worker", bootstrap, *topic_group,
             str(_DROP), str(datadir), *(["always"] if always else [])],
            stdout=out, stderr=subprocess.STDOUT)


def _stop(worker: subprocess.Popen[bytes]) -> None:
    worker.terminate()
    try:
        worker.wait(20)
    except subprocess.TimeoutExpired:
        worker.kill()
        worker.wait(10)


async def test_a_message_dropped_in_the_worker_is_read_again_and_committed(
    tmp_path: Path, broker: EmbeddedBroker
) -> None:
    ensure_topics(broker.bootstrap, partitions=1, specs=[TopicSpec(_TOPIC, key="none")])
    await produce_raw(broker.bootstrap, _TOPIC, [b"m%d" % i for i in range(_COUNT)])
    log = tmp_path / "worker.log"
    worker = _start(log, broker.bootstrap, tmp_path / "data")
    try:
        def seen(offset: int) -> int:
            return log.read_text().count(f"seen 0 {offset}\n")

        await until(lambda: seen(_COUNT - 1) >= 1, timeout=60, what="every message read once",
                    context=log.read_text)
        read_at = time.monotonic()
        # Without the hole watch the commit stays at the dropped offset until a restart.
        await until(lambda: seen(_DROP) >= 2, timeout=45,
                    what=f"offset {_DROP} read again", context=log.read_text)
        mended_s = time.monotonic() - read_at

        async def all_committed() -> bool | None:
            return await _committed(broker.bootstrap) == _COUNT or None

        await until(all_committed, timeout=20, what="the commit to reach the end",
                    context=log.read_text)
        text = log.read_text()
        assert f"offsets {_DROP}-{_DROP} were fetched but never processed" in text, text
        # Read again from the hole on: the messages above it a second time (at-least-once).
        again = [o for o in range(_COUNT) if seen(o) > 1]
        report_figures("hole-watch", messages_in=_COUNT, dropped=1, read_twice=len(again),
                       mended_after_s=round(mended_s, 1))
        assert min(again) == _DROP, again
    finally:
        _stop(worker)


async def test_a_hole_that_cannot_fill_is_read_again_once_then_alerted_and_stepped_over(
    tmp_path: Path, broker: EmbeddedBroker
) -> None:
    topic_group = (f"{_TOPIC}.stuck", f"{_GROUP}-stuck")
    ensure_topics(broker.bootstrap, partitions=1, specs=[TopicSpec(topic_group[0], key="none")])
    await produce_raw(broker.bootstrap, topic_group[0], [b"m%d" % i for i in range(_COUNT)])
    log = tmp_path / "worker.log"
    worker = _start(log, broker.bootstrap, tmp_path / "data", always=True,
                    topic_group=topic_group)
    try:
        def seen(offset: int) -> int:
            return log.read_text().count(f"seen 0 {offset}\n")

        await until(lambda: "still unprocessed after being read again" in log.read_text(),
                    timeout=60, what="the hole reported stuck", context=log.read_text)
        stuck_at = time.monotonic()
        assert seen(_DROP) == 2, log.read_text()  # read, read again once, then left

        async def committed_to_end() -> bool | None:
            consumer = AIOKafkaConsumer(bootstrap_servers=broker.bootstrap,
                                        group_id=topic_group[1], enable_auto_commit=False)
            await consumer.start()
            try:
                return await consumer.committed(TopicPartition(topic_group[0], 0)) == _COUNT \
                    or None
            finally:
                await consumer.stop()

        await until(committed_to_end, timeout=20, what="the commit to step over the hole",
                    context=log.read_text)
        # Two more grace periods: the old watch read it again every 10 s, for ever.
        await asyncio.sleep(max(0.0, 2.5 * _GRACE_S - (time.monotonic() - stuck_at)))
        text = log.read_text()
        assert seen(_DROP) == 2, text
        assert text.count("were fetched but never processed; reading them again") == 1, text
        report_figures("hole-stuck", messages_in=_COUNT, reads_of_the_hole=seen(_DROP),
                       rereads_logged=1, waited_after_stuck_s=round(2.5 * _GRACE_S))
    finally:
        _stop(worker)

