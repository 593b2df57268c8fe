"""Notice a partition whose commit is stuck behind a message nobody is working on.

The consumer commits a partition up to its first offset not yet acknowledged. If a message
is dropped inside the worker (Faust has had several ways to, around rebalances: see
streams/runtime/faust.py), that offset is never acknowledged, the commit stops there while the
worker reads on, and the message is only read again at the next restart or rebalance:
during a crisis that can be hours. :class:`HoleWatch` tells the consumer when such a hole
has lasted ``grace_s`` with nothing in flight below the acknowledged offsets; the consumer
then reads the partition again from the hole, or steps past it if retention has already
deleted those records (:func:`mend_for`).

A hole is read again once. One still open after that cannot fill by reading (offsets a
compacted or transactional topic does not hold, a message every attempt drops): reading it
again every ``grace_s`` would re-run the model on, and re-send, everything above it for ever.
It is "stuck": logged as an error with its offsets, counted (an alert), and stepped over so
the partition's commits move on; ``escucha replay`` can feed those offsets again by hand.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass
from typing import Literal, TypeVar

__all__ = ["Hole", "HoleWatch", "holes_in", "mend_for"]

K = TypeVar("K", bound=Hashable)  # a topic-partition


@dataclass(frozen=True)
class Hole:
    """Offsets ``start`` (the committed one) to ``end - 1`` of a partition were never
    acknowledged, while ``end`` (the lowest acknowledged) was."""

    start: int
    end: int

    @property
    def size(self) -> int:
        return self.end - self.start


def holes_in(
    *,
    acked: Mapping[K, Iterable[int]],
    committed: Mapping[K, int | None],
    in_flight: Iterable[tuple[K, int]],
    assigned: Iterable[K],
) -> dict[K, Hole]:
    """The assigned partitions whose lowest acknowledged offset is above the committed one,
    with no message of the hole still being processed (``in_flight``: partition, offset)."""
    lowest_in_flight: dict[K, int] = {}
    for tp, offset in in_flight:
        lowest_in_flight[tp] = min(offset, lowest_in_flight.get(tp, offset))
    found: dict[K, Hole] = {}
    for tp in assigned:
        start, end = committed.get(tp), min(acked.get(tp, ()), default=None)
        if start is None or end is None:
            continue
        if end > start and lowest_in_flight.get(tp, end) >= end:
            found[tp] = Hole(start, end)
    return found


class HoleWatch:
    """Remembers since when each hole has been open; reports it once it is ``grace_s`` old.

    A hole is the same hole while its start (the committed offset) stays; a report restarts
    its clock, so a partition that is read again and still stuck is reported again only
    after another ``grace_s``.
    """

    def __init__(self, *, grace_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.grace_s = grace_s
        self._clock = clock
        self._since: dict[Hashable, tuple[int, float]] = {}
        #: partition → start of the hole last read again there (kept across rebalances)
        self._reread: dict[Hashable, int] = {}

    def overdue(self, holes: Mapping[K, Hole]) -> dict[K, Hole]:
        now = self._clock()
        self._since = {tp: (hole.start, self._since[tp][1])
                       if tp in self._since and self._since[tp][0] == hole.start
                       else (hole.start, now)
                       for tp, hole in holes.items()}
        due = {tp: hole for tp, hole in holes.items()
               if now - self._since[tp][1] >= self.grace_s}
        for tp in due:
            self._since[tp] = (due[tp].start, now)
        return due

    def forget(self) -> None:
        """A rebalance re-reads every partition from its committed offset anyway.

        Which holes were read again is kept: one still open after the rebalance's own
        re-read is stuck, not new."""
        self._since.clear()

    def read_again(self, tp: Hashable, hole: Hole) -> None:
        """The consumer read ``tp`` again from ``hole``."""
        self._reread[tp] = hole.start

    def was_read_again(self, tp: Hashable, hole: Hole) -> bool:
        return self._reread.get(tp) == hole.start


Mend = Literal["reread", "expired", "stuck"]


def mend_for(hole: Hole, *, earliest: int, read_again: bool = False) -> tuple[Mend, int]:
    """What to do about an overdue hole, given the partition's earliest offset still on the
    broker and whether it was read again already: read again from its start; when
    retention deleted the start, treat the partition as committed from ``earliest`` (what
    lies below it can never be read); once read again and still open, step over it (the
    offset to commit from: its end)."""
    if earliest > hole.start:
        return "expired", earliest
    if read_again:
        return "stuck", hole.end
    return "reread", hole.start
