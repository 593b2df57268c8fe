"""The hole watch: which stuck commits to mend, when, and how."""

from __future__ import annotations

from streams.runtime.holes import Hole, HoleWatch, holes_in, mend_for


def _holes(acked: dict[str, list[int]], committed: dict[str, int | None],
           in_flight: tuple[tuple[str, int], ...] = ()) -> dict[str, Hole]:
    return holes_in(acked=acked, committed=committed, in_flight=in_flight,
                    assigned=sorted(acked))


def test_a_hole_is_the_offsets_between_the_commit_and_the_lowest_ack() -> None:
    assert _holes({"p0": [263, 264]}, {"p0": 262}) == {"p0": Hole(262, 263)}
    assert _holes({"p0": [452, 453, 460]}, {"p0": 246}) == {"p0": Hole(246, 452)}
    assert Hole(246, 452).size == 206


def test_no_hole_when_the_head_is_acknowledged_or_nothing_is_known() -> None:
    assert _holes({"p0": [262, 263]}, {"p0": 262}) == {}
    assert _holes({"p0": []}, {"p0": 262}) == {}
    assert _holes({"p0": [300]}, {"p0": None}) == {}  # never committed: nothing to compare


def test_a_message_of_the_hole_still_in_flight_is_not_a_hole() -> None:
    # A delivery retrying Slack for a minute holds its offset while later ones are acked.
    assert _holes({"p0": [263, 264]}, {"p0": 262}, in_flight=(("p0", 262),)) == {}
    assert _holes({"p0": [263]}, {"p0": 262}, in_flight=(("p1", 5),)) == {"p0": Hole(262, 263)}
    # In flight above the lowest ack does not explain the hole below it.
    assert _holes({"p0": [263]}, {"p0": 262}, in_flight=(("p0", 270),)) == {"p0": Hole(262, 263)}


def test_only_assigned_partitions_count() -> None:
    found = holes_in(acked={"p0": [9], "p1": [9]}, committed={"p0": 5, "p1": 5},
                     in_flight=[], assigned=["p1"])
    assert found == {"p1": Hole(5, 9)}


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_hole_is_reported_once_it_outlasts_the_grace_and_then_again_after_another() -> None:
    clock = _Clock()
    watch = HoleWatch(grace_s=10, clock=clock)
    hole = {"p0": Hole(262, 263)}
    assert watch.overdue(hole) == {}
    clock.now = 9.9
    assert watch.overdue(hole) == {}
    clock.now = 10.0
    assert watch.overdue(hole) == hole
    clock.now = 15.0
    assert watch.overdue(hole) == {}  # just read again: give the re-read its time
    clock.now = 20.0
    assert watch.overdue(hole) == hole


def test_a_moving_commit_or_a_closed_hole_restarts_the_clock() -> None:
    clock = _Clock()
    watch = HoleWatch(grace_s=10, clock=clock)
    watch.overdue({"p0": Hole(262, 263)})
    clock.now = 8.0
    assert watch.overdue({"p0": Hole(300, 310)}) == {}  # committed moved: a new hole
    clock.now = 12.0
    assert watch.overdue({"p0": Hole(300, 310)}) == {}
    watch.overdue({})  # closed
    clock.now = 30.0
    assert watch.overdue({"p0": Hole(300, 310)}) == {}
    watch.forget()
    clock.now = 39.0
    assert watch.overdue({"p0": Hole(300, 310)}) == {}


def test_a_hole_still_on_the_broker_is_read_again_from_its_start() -> None:
    assert mend_for(Hole(246, 452), earliest=0) == ("reread", 246)
    assert mend_for(Hole(246, 452), earliest=246) == ("reread", 246)


def test_a_hole_that_retention_deleted_is_stepped_over() -> None:
    assert mend_for(Hole(246, 452), earliest=300) == ("expired", 300)
    assert mend_for(Hole(246, 452), earliest=900) == ("expired", 900)


def test_a_hole_read_again_once_and_still_open_is_stuck_and_stepped_over() -> None:
    assert mend_for(Hole(246, 452), earliest=0, read_again=True) == ("stuck", 452)
    # Retention first: expired wins (nothing there to step over).
    assert mend_for(Hole(246, 452), earliest=300, read_again=True) == ("expired", 300)


def test_the_watch_remembers_the_hole_it_read_again_across_a_rebalance() -> None:
    watch = HoleWatch(grace_s=10, clock=_Clock())
    watch.read_again("p0", Hole(262, 263))
    watch.forget()
    assert watch.was_read_again("p0", Hole(262, 270))  # the same hole (same start), wider
    assert not watch.was_read_again("p0", Hole(263, 270))  # the commit moved: a new one
    assert not watch.was_read_again("p1", Hole(262, 263))
