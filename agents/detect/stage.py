"""The detect stage without Faust: one enriched mention in, the signals it fires out.

The agent (``agents/detect/agent.py``) feeds it records and sends what it returns. State per
watch lives in ``table`` (a Faust table in the worker, a dict in tests) and in a working copy
here: the table gets a copy at most once per ``save_every_s`` per watch, and at once when a
signal fires. The state is tens of kB, and writing it per mention would cost more than the
detection itself. A crash replays the uncommitted mentions onto the last saved copy, and the
offsets saved with it make that replay harmless.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, MutableMapping
from typing import Any

from agents.detect.detectors import DetectionEngine
from streams.core.records import EnrichedMention, Signal

__all__ = ["DetectStage"]


class DetectStage:
    def __init__(self, *, detectors: Mapping[str, DetectionEngine],
                 table: MutableMapping[str, Any], save_every_s: float = 1.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.detectors = detectors
        self.table = table
        self.save_every_s = save_every_s
        self._clock = clock
        #: watch id → (working state, when it was last saved to the table)
        self._live: dict[str, tuple[dict[str, Any], float]] = {}

    def forget(self) -> None:
        """Drop the working copies: after a rebalance another worker may have moved them on."""
        self._live.clear()

    def observe(self, em: EnrichedMention, *, topic: str, partition: int,
                offset: int) -> list[Signal]:
        """Fold one mention into its watch's state; the signals it fires (often none)."""
        detector = self.detectors.get(em.watch_id)
        if detector is None:
            return []  # a watch removed from config since the mention was classified
        live = self._live.get(em.watch_id)
        state, saved = live if live is not None else (dict(self.table[em.watch_id]), 0.0)
        # The state remembers the last offset it absorbed, and is saved with it: after a
        # crash, re-delivered mentions are skipped instead of counted twice (which would look
        # exactly like a spike).
        position = f"{topic}:{partition}"
        if offset <= state.get("offsets", {}).get(position, -1):
            return []
        fired = detector.observe(state, em)
        state.setdefault("offsets", {})[position] = offset  # saved with the counts
        now = self._clock()
        if fired or now - saved >= self.save_every_s:
            self.table[em.watch_id] = state
            saved = now
        self._live[em.watch_id] = (state, saved)
        return fired
