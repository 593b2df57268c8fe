"""The contract with Faust's internals: every private name streams/runtime/faust.py relies on
exists in the installed Faust, and Faust's own code paths still reach each override.

Calling an override directly would pass even after a Faust release renamed the method it
overrides (the override would then silently never run); these tests go through Faust's
public or calling code instead.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import re
import tomllib
from collections.abc import AsyncIterator
from importlib.metadata import version
from pathlib import Path
from typing import Any

import faust
import faust.streams
import pytest
from faust import streams as faust_streams
from faust.tables import recovery
from faust.transport import consumer as faust_consumer
from faust.transport.drivers import aiokafka as driver
from faust.types import TP

from streams.config.settings import Settings, Watch
from streams.runtime import faust as patches
from streams.wiring import build_worker

ROOT = Path(__file__).resolve().parents[4]


def _owner(dotted: str) -> Any:
    module, _, name = dotted.rpartition(".")
    try:
        return importlib.import_module(dotted)
    except ImportError:
        return getattr(importlib.import_module(module), name)


def _declared(owner: Any, name: str) -> bool:
    if hasattr(owner, name):
        return True
    if not inspect.isclass(owner):
        return False
    # An instance attribute: declared in a class body's annotations somewhere in the MRO, or
    # set by a constructor.
    return any(name in vars(k).get("__annotations__", {})
               or ("__init__" in vars(k) and f"self.{name} =" in inspect.getsource(k.__init__))
               for k in owner.__mro__ if k is not object)


def _app() -> Any:
    settings = Settings(watches=[Watch(id="acme", name="Acme", terms=["acme"])],
                        kafka={"bootstrap": "127.0.0.1:9", "fetch_max_wait_ms": 123})  # type: ignore[arg-type]
    return build_worker(settings, bootstrap="127.0.0.1:9", install_agents=False).app


def test_faust_is_the_exact_version_pinned() -> None:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    [pin] = [d for d in deps if d.startswith("faust-streaming")]
    assert re.fullmatch(r"faust-streaming==[\d.]+", pin.split()[0]), pin
    assert version("faust-streaming") == pin.split("==")[1]


@pytest.mark.parametrize(("owner", "name"), patches.FAUST_NAMES,
                         ids=[f"{o}.{n}" for o, n in patches.FAUST_NAMES])
def test_every_private_name_relied_on_exists(owner: str, name: str) -> None:
    assert _declared(_owner(owner), name), f"{owner}.{name} is gone from the installed Faust"


def test_the_instance_attributes_exist_on_a_built_consumer() -> None:
    consumer = _app().consumer
    for owner, name in patches.FAUST_NAMES:
        if owner.endswith(".Consumer") and not callable(getattr(type(consumer), name, None)):
            assert hasattr(consumer, name), name


def test_faust_builds_escucha_transport_consumer_thread_web_and_flow_control() -> None:
    app = _app()
    # Each is made by Faust's own properties and constructors, through the overridden hooks.
    assert type(app.transport) is patches._Transport      # App.transport → _new_transport
    assert type(app.consumer) is patches._Consumer         # Transport.Consumer
    assert type(app.consumer._thread) is patches._ConsumerThread  # _new_consumer_thread
    assert type(app.web) is patches._Web                   # App.web → _new_web
    assert type(app.flow_control) is patches._FlowControl  # App.flow_control
    assert isinstance(app.consumer._read_offset, patches._NothingReadYet)


async def test_faust_creating_the_kafka_consumer_reaches_the_fetch_wait() -> None:
    app = _app()
    # AIOKafkaConsumerThread._create_consumer is Faust's; it calls _create_worker_consumer.
    client = app.consumer._thread._create_consumer(loop=asyncio.get_running_loop())
    assert client._fetch_max_wait_ms == 123


def test_faust_commit_path_reaches_the_commit_guard() -> None:
    consumer = _app().consumer
    tp = TP("escucha.mentions.raw", 0)
    consumer._committed_offset[tp] = 262
    consumer._acked[tp].extend([263, 264])
    # Faust's own filter (used by every commit) asks _new_offset; Faust alone commits 265.
    assert consumer._filter_committable_offsets({tp}) == {}
    consumer._acked[tp].append(262)
    assert consumer._filter_committable_offsets({tp}) == {tp: 265}


def test_faust_recovery_and_assignment_still_call_perform_seek() -> None:
    assert patches._Consumer.perform_seek is not faust_consumer.Consumer.perform_seek
    for source in (inspect.getsource(recovery.Recovery), inspect.getsource(faust_consumer)):
        assert "perform_seek()" in source


def test_faust_fetch_loop_reads_through_the_once_per_seek_filter() -> None:
    # The fetcher's drain loop takes self.getmany, the override when the consumer is ours.
    assert patches._Consumer.getmany is not faust_consumer.Consumer.getmany
    assert "getmany = self.getmany" in inspect.getsource(faust_consumer.Consumer._drain_messages)


async def test_the_consumer_hands_a_stream_partition_nothing_until_it_is_sought(
    monkeypatch: pytest.MonkeyPatch
) -> None:
    consumer = _app().consumer
    tp = TP("escucha.mentions.raw", 0)
    records = [(tp, type("M", (), {"offset": o})()) for o in (262, 263, 262, 264)]

    async def fetched(self: object, timeout: float  # noqa: ASYNC109 (Faust's signature)
                      ) -> AsyncIterator[tuple[TP, object]]:
        for record in records:
            yield record

    # What the broker returned, in place of Faust's fetch: the filter is what is under test.
    monkeypatch.setattr(faust_consumer.Consumer, "getmany", fetched)
    before = [m.offset async for _, m in consumer.getmany(1.0)]
    consumer._reads.seeking(tp, 262)
    after = [m.offset async for _, m in consumer.getmany(1.0)]
    assert before == [] and consumer._unsought == 4
    assert after == [262, 263, 264]


def test_faust_seek_to_committed_goes_through_the_thread_that_marks_the_starts() -> None:
    assert patches._ConsumerThread.seek_to_committed is not (
        driver.AIOKafkaConsumerThread.seek_to_committed)
    assert "self._thread.seek_to_committed()" in inspect.getsource(
        driver.Consumer.seek_to_committed)
    assert "self.seek_to_committed()" in inspect.getsource(faust_consumer.Consumer.perform_seek)


def test_faust_rebalance_listener_reaches_the_revoke_commit() -> None:
    # aiokafka's listener → the consumer thread → Consumer.threadsafe_partitions_revoked,
    # which queues self.on_partitions_revoked: the override, when the consumer is ours.
    assert patches._Consumer.on_partitions_revoked is not (
        faust_consumer.Consumer.on_partitions_revoked)
    source = inspect.getsource(faust_consumer.ThreadDelegateConsumer.threadsafe_partitions_revoked)
    assert "self.on_partitions_revoked" in source
    assert isinstance(_app().consumer, patches._Consumer)


def test_faust_take_without_acks_leaves_acking_to_the_stage() -> None:
    # classify takes its batches with noack_take and acks through handle_batch: Faust's
    # take_events acks in its finally, whatever the handler did.
    source = inspect.getsource(faust_streams.Stream.noack_take)
    assert "await self.ack(event)" not in source.replace("#     await self.ack(event)", "")
    assert "await self.ack(event)" in inspect.getsource(faust_streams.Stream.take_events)


def test_faust_starting_the_web_server_installs_the_route_guard() -> None:
    app = _app()
    app.web.init_server()  # Faust's: applies blueprints, then calls app.on_webserver_init
    middlewares = app.web.web_app.middlewares
    assert any(getattr(m, "__name__", "") == "_guard" for m in middlewares)
    assert patches._security_headers in list(app.web.web_app.on_response_prepare)


def test_handling_sets_the_event_faust_tables_write_for() -> None:
    class Event:  # Faust keeps a weak reference to it
        pass

    event = Event()
    assert faust.streams.current_event() is None
    with patches.handling(event):
        assert faust.streams.current_event() is event  # Faust's reader of the context var
    assert faust.streams.current_event() is None
