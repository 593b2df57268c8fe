"""Publishing mentions to the raw topic from outside the worker (replay, simulate, connectors).

A plain aiokafka producer: ~20x faster than going through a Faust app, and connectors do not
need one. Dedups by (source, id) within the process so a source that repeats itself (a
paginated API overlapping pages, a re-sent webhook) does not inflate counts.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Iterator
from types import TracebackType

from aiokafka import AIOKafkaProducer

from streams.core import topics
from streams.core.records import DeadLetter, Mention, dumps

__all__ = ["Publisher", "RecentKeys"]


class RecentKeys:
    """The last ``size`` keys seen, oldest forgotten first (``size`` 0: remembers nothing)."""

    def __init__(self, size: int, keys: Iterable[str] = ()) -> None:
        self._size = size
        self._keys: OrderedDict[str, None] = OrderedDict()
        for key in keys:
            self.add(key)

    def __contains__(self, key: str) -> bool:
        return key in self._keys

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    def add(self, key: str) -> bool:
        """True if ``key`` is new; either way it is now the most recent."""
        if key in self._keys:
            self._keys.move_to_end(key)
            return False
        if self._size > 0:
            self._keys[key] = None
            if len(self._keys) > self._size:
                self._keys.popitem(last=False)
        return True


class Publisher:
    def __init__(self, *, bootstrap: str, dedup_size: int = 100_000) -> None:
        self._producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap, acks="all", linger_ms=5,
            client_id="escucha-publisher",
        )
        self._seen = RecentKeys(dedup_size)
        self.sent = 0
        self.duplicates = 0
        self.dead = 0

    async def start(self) -> None:
        await self._producer.start()

    async def stop(self) -> None:
        await self._producer.stop()  # flushes what is buffered

    async def __aenter__(self) -> Publisher:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def mention(self, mention: Mention) -> bool:
        """Queue one mention; False if this (source, id) was already sent."""
        key = mention.key
        if not self._seen.add(key):
            self.duplicates += 1
            return False
        await self._producer.send(topics.RAW.name, key=key.encode(), value=dumps(mention))
        self.sent += 1
        return True

    async def dead_letter(self, record: DeadLetter) -> None:
        self.dead += 1
        await self._producer.send(topics.DLQ.name, key=record.stage.encode(), value=dumps(record))

    async def flush(self) -> None:
        await self._producer.flush()
