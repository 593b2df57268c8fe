"""A Faust worker on escucha's transport whose agent drops one message, once.

``python -m tests.support.dropping_worker BOOTSTRAP TOPIC GROUP OFFSET DATADIR``

It stands in for the ways Faust has dropped a fetched message inside the worker (see
streams/transport.py): the agent takes the message at OFFSET the first time and never
acknowledges it, and acknowledges everything else. It prints ``seen PARTITION OFFSET`` for
every message, so a test can tell whether the consumer read the dropped one again.
"""

from __future__ import annotations

import sys
from typing import Any

import faust

from streams.logs import setup_logging
from streams.transport import App


def main(bootstrap: str, topic: str, group: str, drop: int, datadir: str) -> None:
    setup_logging("warning")
    app = App(group, broker=f"kafka://{bootstrap}", store="memory://", datadir=datadir,
              web_enabled=False, broker_commit_interval=0.5, topic_partitions=1,
              consumer_auto_offset_reset="earliest", broker_session_timeout=10.0,
              broker_heartbeat_interval=3.0, broker_rebalance_timeout=20.0,
              stream_wait_empty=False)
    source = app.topic(topic, key_type=bytes, value_type=bytes, key_serializer="raw",
                       value_serializer="raw", partitions=1)
    dropped: set[int] = set()

    @app.agent(source)
    async def take(stream: Any) -> None:
        async for event in stream.noack().events():
            msg = event.message
            print(f"seen {msg.partition} {msg.offset}", flush=True)
            if msg.offset == drop and drop not in dropped:
                dropped.add(drop)
                continue  # never acknowledged, as if lost inside Faust
            await stream.ack(event)

    faust.Worker(app, loglevel="warning", quiet=True,
                 override_logging=False).execute_from_commandline()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5])
