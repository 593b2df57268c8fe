"""The detect stage without Faust: one enriched mention in, the signals it fires out.

The agent (``agents/detect/agent.py``) feeds it records and sends what it returns. State per
watch lives in ``table`` (a Faust table in the worker, a dict in tests) and in a working copy
here: the table gets a copy at most once per ``save_every_s`` per watch, and at once when a
signal fires. The state is tens of kB, and writing it per mention would cost more than the
detection itself. A crash replays the uncommitted mentions onto the last saved copy: the
offsets saved with it skip what that copy absorbed at the same positions, and the mention
keys it keeps (agents/detect/detectors.py) skip a mention classify wrote again at a new
offset.

A record is done only once a saved state counts it: :meth:`observe` takes a token for it
(the agent's Faust event) and hands back, through :meth:`done`, the tokens a save covered;
the agent acknowledges those. The consumer commits no further than the lowest
unacknowledged offset and flushes the producer (the table's changelog) before it commits, so
a kill -9 re-reads what the last saved state does not count instead of losing it. A watch
whose traffic stops has its state saved by :meth:`save_due` (the agent's timer), so its
commit does not wait for the next mention.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, MutableMapping
from typing import Any

from agents.detect.bounds import BUDGET, fit_state
from agents.detect.detectors import DetectionEngine
from streams.core.records import EnrichedMention, Signal

__all__ = ["DetectStage"]

log = logging.getLogger(__name__)


class DetectStage:
    def __init__(self, *, detectors: Mapping[str, DetectionEngine],
                 table: MutableMapping[str, Any], save_every_s: float = 1.0,
                 clock: Callable[[], float] = time.monotonic,
                 on_trim: Callable[[str], None] = lambda watch: None,
                 budget: int = BUDGET) -> None:
        """``on_trim(watch)``: a state had to be trimmed to fit a record (the metric)."""
        self.detectors = detectors
        self._on_trim, self._budget = on_trim, budget
        self.table = table
        self.save_every_s = save_every_s
        self._clock = clock
        #: watch id → (working state, when it was last saved to the table)
        self._live: dict[str, tuple[dict[str, Any], float]] = {}
        #: watch id → tokens of the records its working state counts and the table lacks
        self._unsaved: dict[str, list[Any]] = {}
        #: tokens whose records a saved state covers, to acknowledge (see :meth:`done`)
        self._done: list[Any] = []

    def done(self) -> list[Any]:
        """The tokens of records now covered by a saved state (removed): acknowledge them."""
        out, self._done = self._done, []
        return out

    def unsaved(self, watch_id: str) -> list[Any]:
        """Tokens waiting for ``watch_id``'s next save, oldest first (not removed)."""
        return list(self._unsaved.get(watch_id, ()))

    def save_due(self, *, force: bool = False) -> list[str]:
        """Watches whose working state counts records the table lacks, and was last saved
        ``save_every_s`` ago or more (any age with ``force``): call :meth:`save` on each."""
        now = self._clock()
        return [w for w, tokens in self._unsaved.items() if tokens
                and (force or now - self._live[w][1] >= self.save_every_s)]

    def save(self, watch_id: str) -> None:
        """Write ``watch_id``'s working state to the table; its tokens become :meth:`done`."""
        live = self._live.get(watch_id)
        if live is not None:
            # Never a record the broker refuses: that error would crash the worker
            # (agents/detect/bounds.py).
            before, after, taken = fit_state(live[0], budget=self._budget)
            if taken:
                log.warning("detect: the state of watch %r was %d bytes, over %d: trimmed %s "
                            "to %d bytes (alerts still fire; their explanations are shorter)",
                            watch_id, before, self._budget, ", ".join(taken), after)
                self._on_trim(watch_id)
            self.table[watch_id] = live[0]
            self._live[watch_id] = (live[0], self._clock())
        self._done.extend(self._unsaved.pop(watch_id, ()))

    def forget(self) -> None:
        """Drop the working copies: after a rebalance another worker may have moved them on.

        Their unsaved tokens go too: the consumer forgot those offsets at revoke, and the
        partition's new reader reads those records again."""
        self._live.clear()
        self._unsaved.clear()
        self._done.clear()

    def observe(self, em: EnrichedMention, *, topic: str, partition: int,
                offset: int, token: Any = None) -> list[Signal]:
        """Fold one mention into its watch's state; the signals it fires (often none)."""
        detector = self.detectors.get(em.watch_id)
        if detector is None:
            if token is not None:
                self._done.append(token)
            return []  # a watch removed from config since the mention was classified
        if token is not None:
            self._unsaved.setdefault(em.watch_id, []).append(token)
        live = self._live.get(em.watch_id)
        state, saved = live if live is not None else (dict(self.table[em.watch_id]), 0.0)
        # The state remembers the last offset it absorbed, and is saved with it: after a
        # crash, re-delivered mentions are skipped instead of counted twice (which would look
        # exactly like a spike).
        position = f"{topic}:{partition}"
        if offset <= state.get("offsets", {}).get(position, -1):
            self._live[em.watch_id] = (state, saved)
            return []
        fired = detector.observe(state, em)
        state.setdefault("offsets", {})[position] = offset  # saved with the counts
        self._live[em.watch_id] = (state, saved)
        if fired or self._clock() - saved >= self.save_every_s:
            self.save(em.watch_id)
        return fired
