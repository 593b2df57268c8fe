"""DetectStage alone: offsets make re-deliveries harmless, saves are throttled, signals save."""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

from agents.detect.stage import DetectStage
from tests.unit.agents.detect.test_detectors import WATCH, engine, negative_burst, warm


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Table(dict[str, Any]):
    """Like a Faust table: what is stored is a copy (it went through the changelog)."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[int] = []

    def __missing__(self, key: str) -> dict[str, Any]:
        return {}

    def __setitem__(self, key: str, value: Any) -> None:
        self.writes.append(value.get("offsets", {}).get("enriched:0", -1))
        super().__setitem__(key, json.loads(json.dumps(value)))


def stage(table: dict[str, Any] | None = None, clock: Clock | None = None) -> DetectStage:
    store = Table()
    for key, value in (table or {}).items():
        store[key] = value
    return DetectStage(detectors={WATCH: engine()}, table=store, clock=clock or Clock())


def test_a_redelivered_offset_is_not_counted_again() -> None:
    mentions, _ = negative_burst()
    s = stage({WATCH: warm()})
    first = [sig for i, em in enumerate(mentions)
             for sig in s.observe(em, topic="enriched", partition=0, offset=i)]
    assert first, "the burst fires"
    again = [sig for i, em in enumerate(mentions)
             for sig in s.observe(em, topic="enriched", partition=0, offset=i)]
    assert again == []  # the same offsets: skipped, not a second spike
    other = s.observe(mentions[0], topic="enriched", partition=1, offset=0)
    assert other == []  # another partition's offsets are its own (this one is quiet)


def test_state_is_saved_at_most_once_a_second_and_at_once_when_a_signal_fires() -> None:
    mentions, _ = negative_burst()
    clock = Clock()
    s = stage({WATCH: warm()}, clock)
    table = s.table
    s.observe(mentions[0], topic="enriched", partition=0, offset=0)
    saved = table[WATCH]["offsets"]["enriched:0"]
    assert saved == 0  # the first one saves (nothing saved by this worker yet)
    clock.now += 0.5
    fired_at = None
    for i, em in enumerate(mentions[2:], start=2):
        if s.observe(em, topic="enriched", partition=0, offset=i):
            fired_at = i
            break
    assert fired_at is not None
    assert table[WATCH]["offsets"]["enriched:0"] == fired_at  # saved with the signal


def test_saves_are_throttled_by_the_clock() -> None:
    mentions, _ = negative_burst()
    clock = Clock()
    s = stage(clock=clock)
    writes = s.table.writes  # type: ignore[attr-defined]
    for i, em in enumerate(mentions[:5]):  # quiet: before the burst
        s.observe(em, topic="enriched", partition=0, offset=i)
    assert writes == [0]  # one save in the same second
    clock.now += 1.0
    s.observe(mentions[5], topic="enriched", partition=0, offset=5)
    assert writes == [0, 5]


def test_forget_reads_the_table_again() -> None:
    mentions, _ = negative_burst()
    s = stage()
    s.observe(mentions[0], topic="enriched", partition=0, offset=7)
    s.forget()
    stored = dict(s.table[WATCH], offsets={"enriched:0": 3})  # as another worker left it
    s.table[WATCH] = stored
    s.observe(mentions[1], topic="enriched", partition=0, offset=5)
    assert s._live[WATCH][0]["offsets"]["enriched:0"] == 5


def test_a_watch_removed_from_config_is_ignored() -> None:
    mentions, _ = negative_burst()
    s = DetectStage(detectors={}, table=defaultdict(dict), clock=Clock())
    assert s.observe(mentions[0], topic="enriched", partition=0, offset=0) == []
    assert dict(s.table) == {}


def test_a_mention_reclassified_at_a_new_offset_is_counted_once() -> None:
    mentions, _ = negative_burst()
    s = stage({WATCH: warm()})
    fired = [sig for i, em in enumerate(mentions)
             for sig in s.observe(em, topic="enriched", partition=0, offset=i)]
    assert fired
    # classify ran again over the tail (a crash): the same mentions at later offsets.
    n = len(mentions)
    again = [sig for i, em in enumerate(mentions[-100:])
             for sig in s.observe(em, topic="enriched", partition=0, offset=n + i)]
    assert again == []
    assert s.detectors[WATCH].duplicates == 100


def test_records_are_done_only_once_a_saved_state_counts_them() -> None:
    mentions, _ = negative_burst()
    clock = Clock()
    s = stage(clock=clock)
    quiet = mentions[:4]  # before the burst: no signal, saves throttled
    s.observe(quiet[0], topic="enriched", partition=0, offset=0, token="t0")
    assert s.done() == ["t0"]  # the first observation saves
    for i, em in enumerate(quiet[1:], start=1):
        s.observe(em, topic="enriched", partition=0, offset=i, token=f"t{i}")
    assert s.done() == [] and s.unsaved(WATCH) == ["t1", "t2", "t3"]
    assert s.save_due() == []  # saved less than a second ago
    assert s.save_due(force=True) == [WATCH]
    clock.now += 1.0
    assert s.save_due() == [WATCH]  # the watch went quiet: its timer saves it
    s.save(WATCH)
    assert s.table[WATCH]["offsets"]["enriched:0"] == 3
    assert s.done() == ["t1", "t2", "t3"] and s.save_due(force=True) == []


def test_a_rebalance_drops_unsaved_tokens_and_a_removed_watch_is_done_at_once() -> None:
    mentions, _ = negative_burst()
    clock = Clock()
    s = stage(clock=clock)
    s.observe(mentions[0], topic="enriched", partition=0, offset=0, token="a")
    s.observe(mentions[1], topic="enriched", partition=0, offset=1, token="b")
    s.forget()
    assert s.done() == [] and s.unsaved(WATCH) == []
    other = DetectStage(detectors={}, table=defaultdict(dict), clock=clock)
    other.observe(mentions[0], topic="enriched", partition=0, offset=0, token="c")
    assert other.done() == ["c"]
