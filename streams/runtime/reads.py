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
- after a second seek, the record right after the highest one handed out also begins the
  run: it continues what was handed out, whether or not the seek moved the position back;
- a start that never comes (retention deleted it meanwhile, a transaction marker sits there)
  must not stall the partition: after ``start_wait_s`` of records that do not begin the run,
  the first one at or past ``start`` begins it;
- a partition sought again before it is revoked (Faust seeks from two places: a fetch
  that returns while the flow is stopped seeks back at once, and its recovery seeks
  again when it ends) does not hand out a second time what it handed out since it was
  assigned: those records are in the stream buffers or processed (nothing empties the
  buffers until the next revoke), and the new run is dropped up to the highest of them.
  Measured in the hand-over of the fault suite: each partition's first ~20 records after
  the first seek were classified twice, and a longer table recovery lets more through;
- a partition read again on purpose (the hole watch seeks it back) is handed everything
  until the next rebalance (``open``): dropping the re-read would undo the mend;
- changelog partitions are not this rule's business (table recovery reads them whole).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Hashable, Iterable
from typing import Generic, TypeVar

__all__ = ["ReadOnce"]

#: At DEBUG (``ESCUCHA_DEBUG_LOGGERS=streams.runtime.reads``): each seek, run start, gap and
#: what was dropped per partition, with the group generation, here and in the consumer.
log = logging.getLogger(__name__)

K = TypeVar("K", bound=Hashable)  # a topic-partition

#: Longest a partition drops records while it waits for the offset its seek went to.
START_WAIT_S = 30.0
#: A second seek this soon after the first is the same rebalance seeking twice (measured
#: 0.14-0.3 s apart); a later one (a broker back after a loss) may read new records.
RESEEK_S = 5.0


class ReadOnce(Generic[K]):
    """Per stream partition: where its run must begin, or the next offset, or "anything"."""

    def __init__(self, *, start_wait_s: float = START_WAIT_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        # Absent: not being sought in this generation (drop). None: hand out everything.
        self._next: dict[K, int | None] = {}
        # Partitions whose run has not begun: the offset it must begin at, and since when.
        self._start: dict[K, tuple[int, float]] = {}
        # Since the partition was assigned (or opened): the highest offset handed out, and
        # after a second seek, the offset below which the new run's records are copies.
        self._handed_high: dict[K, int] = {}
        self._copies_below: dict[K, int] = {}
        self._last_seek: dict[K, tuple[int, float]] = {}
        self.start_wait_s, self._clock = start_wait_s, clock
        # seeking() runs in the consumer's thread, the rest in the event loop's.
        self._lock = threading.Lock()
        #: The consumer group generation, for the trace only.
        self.generation: int | None = None
        # For the trace: records dropped per partition and why, since its last seek; the
        # highest offset ever handed out (kept across seeks: what a seek reads again).
        self._dropped: dict[K, Counter[str]] = {}
        self._high: dict[K, int] = {}

    def seeking(self, tp: K, start: int | None) -> None:
        """``tp`` is about to be sought to ``start`` (None: unknown, hand out everything).

        Called from the consumer's thread."""
        with self._lock:
            self._seeking(tp, start)

    def _seeking(self, tp: K, start: int | None) -> None:
        handed = self._handed_high.get(tp)
        if start is None:
            self._next[tp] = None
            self._start.pop(tp, None)
            self._copies_below.pop(tp, None)
        elif (tp in self._next and handed is not None and handed >= start
              and (prev := self._last_seek.get(tp)) is not None
              and self._clock() - prev[1] <= RESEEK_S):
            # Sought again moments later (Faust's second seek of one rebalance): start..handed
            # are already on their way. Not after a longer while: a broker that came back
            # empty numbers its records from 0 again, and those are new records, not copies
            # (measured: dropping them lost the alert of the broker-loss fault test in 3 runs
            # of 6).
            self._copies_below[tp] = handed + 1
        else:
            self._copies_below.pop(tp, None)
        if log.isEnabledFor(logging.DEBUG):
            high, again = self._high.get(tp), ""
            if tp in self._copies_below and handed is not None:
                again = f"; {start}-{handed} handed out since the assignment, not again"
            elif high is not None and start is not None and high >= start:
                again = f"; handed out up to {high} before ({high + 1 - start} to read again)"
            log.debug("%s gen %s: seeking to %s%s%s", _name(tp), self.generation, start,
                      again, self._drops(tp))
        if start is not None:
            self._start[tp] = (start, self._clock())
            self._last_seek[tp] = (start, self._clock())
            self._next[tp] = start

    def open(self, tp: K) -> None:
        """``tp`` is read again on purpose: hand out whatever comes."""
        with self._lock:
            log.debug("%s gen %s: opened (everything handed out until the next rebalance)%s",
                      _name(tp), self.generation, self._drops(tp))
            self._start.pop(tp, None)
            self._next[tp] = None
            self._handed_high.pop(tp, None)
            self._copies_below.pop(tp, None)
            self._last_seek.pop(tp, None)

    def forget(self, tps: Iterable[K]) -> None:
        """``tps`` were revoked: nothing of theirs is handed out until sought again."""
        with self._lock:
            for tp in tps:
                if tp in self._next:
                    log.debug("%s gen %s: revoked; handed out up to %s%s", _name(tp),
                              self.generation, self._high.get(tp), self._drops(tp))
                self._next.pop(tp, None)
                self._start.pop(tp, None)
                self._handed_high.pop(tp, None)
                self._copies_below.pop(tp, None)
                self._last_seek.pop(tp, None)

    def is_sought(self, tp: K) -> bool:
        return tp in self._next

    def first_time(self, tp: K, offset: int) -> bool:
        """Whether the record at ``offset`` of stream partition ``tp`` goes to the streams."""
        with self._lock:
            return self._first_time(tp, offset)

    def _first_time(self, tp: K, offset: int) -> bool:
        if tp not in self._next:
            return self._drop(tp, "unsought")
        expected = self._next[tp]
        if expected is None:
            self._handed(tp, offset)
            return True
        if tp in self._start:
            start, since = self._start[tp]
            waited = self._clock() - since
            # After a second seek, the record right after the last one handed out continues
            # what was handed out: nothing is missing before it. Waiting for the seek's own
            # run instead dropped it when the seek did not move the position back (measured
            # in the broker-loss fault test: a batch published after the rejoin dropped
            # whole, "before its run", and its alert never came in 1 run of 2).
            follows = offset == self._copies_below.get(tp)
            if (offset != start and not follows
                    and not (offset > start and waited >= self.start_wait_s)):
                return self._drop(tp, "before its run")  # not the run the seek began
            del self._start[tp]
            log.debug("%s gen %s: run begins at %d (sought to %d, %.1f s after the seek)%s",
                      _name(tp), self.generation, offset, start, waited, self._drops(tp))
        elif offset < expected:
            return self._drop(tp, "second copy")  # handed out already since the seek
        elif offset > expected:
            # Handed out: retention deleted those records, or a transactional topic's
            # markers; waiting for them would stall the partition.
            log.debug("%s gen %s: gap, %d follows %d", _name(tp), self.generation, offset,
                      expected - 1)
        self._next[tp] = offset + 1
        below = self._copies_below.get(tp)
        if below is not None:
            if offset < below:
                return self._drop(tp, "handed out before this seek")
            del self._copies_below[tp]
            log.debug("%s gen %s: the run passes %d, the last offset handed out before this "
                      "seek%s", _name(tp), self.generation, below - 1, self._drops(tp))
        self._handed(tp, offset)
        return True

    def _handed(self, tp: K, offset: int) -> None:
        if offset > self._high.get(tp, -1):
            self._high[tp] = offset
        if offset > self._handed_high.get(tp, -1):
            self._handed_high[tp] = offset

    def _drop(self, tp: K, why: str) -> bool:
        self._dropped.setdefault(tp, Counter())[why] += 1
        return False

    def _drops(self, tp: K) -> str:
        """What ``tp`` dropped since this was last said, for the trace (and reset)."""
        dropped = self._dropped.pop(tp, None)
        if not dropped:
            return ""
        return "; dropped " + ", ".join(f"{n} {why}" for why, n in sorted(dropped.items()))


def _name(tp: object) -> str:
    """``topic-partition`` for a Kafka topic-partition, else its repr (the trace's name)."""
    topic, partition = getattr(tp, "topic", None), getattr(tp, "partition", None)
    return f"{topic}-{partition}" if topic is not None else repr(tp)
