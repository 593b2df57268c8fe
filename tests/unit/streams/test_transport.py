"""escucha's Faust transport: the fetch wait from the config, and no "already read" drops."""

from __future__ import annotations

from streams.app import build_pipeline
from streams.settings import Settings, Watch


def _pipeline(**kafka: object) -> object:
    settings = Settings(watches=[Watch(id="acme", name="Acme", terms=["acme"])],
                        kafka={"bootstrap": "127.0.0.1:9", **kafka})  # type: ignore[arg-type]
    return build_pipeline(settings, bootstrap="127.0.0.1:9", install_agents=False)


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
