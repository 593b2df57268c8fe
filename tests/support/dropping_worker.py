"""A Faust worker on escucha's transport whose agent drops one message, once (or always).

``python -m tests.support.dropping_worker BOOTSTRAP TOPIC GROUP OFFSET DATADIR [always]``

It stands in for the ways Faust has dropped a fetched message inside the worker (see
streams/runtime/faust.py): the agent takes the message at OFFSET the first time and never
acknowledges it, and acknowledges everything else; with ``always``, every time it sees it (a
hole that cannot fill by reading again). It prints ``seen PARTITION OFFSET`` for every
message, so a test can tell whether the consumer read the dropped one again.
"""

from __future__ import annotations

import sys
from typing import Any

import faust

from streams.config.settings import Settings
from streams.runtime.faust import App
from streams.runtime.logs import setup_logging
from streams.runtime.pipeline import faust_settings


def main(bootstrap: str, topic: str, group: str, drop: int, datadir: str,
         always: bool = False) -> None:
    setup_logging("warning")
    # The worker's own Faust settings (timeouts, offsets reset, stream_wait_empty), with a
    # short commit interval so the hole is found quickly; no web server.
    kafka = {"bootstrap": bootstrap, "commit_interval_s": 0.5, "partitions": 1}
    settings = Settings(kafka=kafka, datadir=datadir)  # type: ignore[arg-type]
    app = App(group, fetch_max_wait_ms=settings.kafka.fetch_max_wait_ms,
              **{**faust_settings(settings, bootstrap=bootstrap), "web_enabled": False})
    source = app.topic(topic, key_type=bytes, value_type=bytes, key_serializer="raw",
                       value_serializer="raw", partitions=1)
    dropped: set[int] = set()

    @app.agent(source)
    async def take(stream: Any) -> None:
        async for event in stream.noack().events():
            msg = event.message
            print(f"seen {msg.partition} {msg.offset}", flush=True)
            if msg.offset == drop and (always or drop not in dropped):
                dropped.add(drop)
                continue  # never acknowledged, as if lost inside Faust
            await stream.ack(event)

    faust.Worker(app, loglevel="warning", quiet=True,
                 override_logging=False).execute_from_commandline()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5],
         always=sys.argv[6:] == ["always"])
