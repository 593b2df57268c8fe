"""Hand each record of a stream partition to the stages once per seek, not once per fetch.

After a rebalance Faust resumes the stream partitions and only then seeks them to their
committed offsets (streams/runtime/faust.py). What the consumer fetched before that seek
landed in the stream buffers, and the seek read it all again: measured in the kill -9
scenario of the fault suite, a new worker classified 1,100-1,200 of 4,000 mentions twice
(what it fetched while the model loaded), against a dead worker's uncommitted tail of 40-80.

A record does not say whether it was fetched before or after the seek, but its offset says
where its run began. :class:`ReadOnce` is the rule the consumer applies to every record:

- a stream partition not yet being sought in this generation gets nothing: its records are
  dropped (the seek that follows reads them again; never tracked, they leave no hole);
- the seek says where it goes (``seeking(tp, start)``, told by the consumer thread before it
  moves the position): then only a run that begins exactly at ``start`` is handed out (an
  earlier fetch that began there is the same data; one that began elsewhere is dropped, the
  seek reads it again), each offset once: a record below the highest offset already handed
  out is a second copy;
- a start that never comes (retention deleted it meanwhile, a transaction marker sits there)
  must not stall the partition: after ``start_wait_s`` of records that do not begin the run,
  the first one at or past ``start`` begins it;
- a partition read again on purpose (the hole watch seeks it back) is handed everything
  until the next rebalance (``open``): dropping the re-read would undo the mend;
- changelog partitions are not this rule's business (table recovery reads them whole).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable, Iterable
from typing import Generic, TypeVar

__all__ = ["ReadOnce"]

K = TypeVar("K", bound=Hashable)  # a topic-partition

#: Longest a partition drops records while it waits for the offset its seek went to.
START_WAIT_S = 30.0


class ReadOnce(Generic[K]):
    """Per stream partition: where its run must begin, or the next offset, or "anything"."""

    def __init__(self, *, start_wait_s: float = START_WAIT_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        # Absent: not being sought in this generation (drop). None: hand out everything.
        self._next: dict[K, int | None] = {}
        # Partitions whose run has not begun: the offset it must begin at, and since when.
        self._start: dict[K, tuple[int, float]] = {}
        self.start_wait_s, self._clock = start_wait_s, clock

    def seeking(self, tp: K, start: int | None) -> None:
        """``tp`` is about to be sought to ``start`` (None: unknown, hand out everything).

        Called from the consumer's thread: two dict writes, each atomic."""
        if start is None:
            self._next[tp] = None
            self._start.pop(tp, None)
            return
        self._start[tp] = (start, self._clock())
        self._next[tp] = start

    def open(self, tp: K) -> None:
        """``tp`` is read again on purpose: hand out whatever comes."""
        self._start.pop(tp, None)
        self._next[tp] = None

    def forget(self, tps: Iterable[K]) -> None:
        """``tps`` were revoked: nothing of theirs is handed out until sought again."""
        for tp in tps:
            self._next.pop(tp, None)
            self._start.pop(tp, None)

    def is_sought(self, tp: K) -> bool:
        return tp in self._next

    def first_time(self, tp: K, offset: int) -> bool:
        """Whether the record at ``offset`` of stream partition ``tp`` goes to the streams."""
        if tp not in self._next:
            return False
        expected = self._next[tp]
        if expected is None:
            return True
        if tp in self._start:
            start, since = self._start[tp]
            if offset != start and not (offset > start
                                        and self._clock() - since >= self.start_wait_s):
                return False  # not the run the seek began
            del self._start[tp]
        elif offset < expected:
            return False  # handed out already since the seek
        # A gap (offset > expected) is handed out: retention deleted those records, or a
        # transactional topic's markers; waiting for them would stall the partition.
        self._next[tp] = offset + 1
        return True
