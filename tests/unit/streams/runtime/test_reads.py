"""ReadOnce: each record of a stream partition handed to the stages once per seek."""

from __future__ import annotations

from streams.runtime.reads import ReadOnce


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _handed(reads: ReadOnce[str], tp: str, offsets: range | list[int]) -> list[int]:
    return [o for o in offsets if reads.first_time(tp, o)]


def test_nothing_is_handed_out_before_the_partition_is_sought() -> None:
    # What a new owner fetches while its table recovery runs: the seek reads it again.
    reads: ReadOnce[str] = ReadOnce()
    assert _handed(reads, "raw-0", range(262, 546)) == []
    assert not reads.is_sought("raw-0")


def test_the_kill9_backlog_is_handed_out_once_across_the_seek() -> None:
    # Measured: positions 530-555 when the seek ran, back to the committed 247-262.
    reads: ReadOnce[str] = ReadOnce()
    before = _handed(reads, "raw-0", range(262, 546))
    reads.seeking("raw-0", 262)
    after = _handed(reads, "raw-0", range(262, 980))
    assert before == [] and after == list(range(262, 980))


def test_a_fetch_that_began_at_the_start_is_handed_out_and_the_seek_re_read_is_not() -> None:
    # A fetch made before the seek, from the same committed offset, returns after it.
    reads: ReadOnce[str] = ReadOnce()
    reads.seeking("raw-0", 262)
    first = _handed(reads, "raw-0", range(262, 300))
    again = _handed(reads, "raw-0", range(262, 320))
    assert first == list(range(262, 300))
    assert again == list(range(300, 320))


def test_a_run_that_began_elsewhere_is_dropped_and_read_again_from_the_start() -> None:
    # The first part of an earlier fetch (253-400) was dropped before the seek was known,
    # its second part (401-550) arrives after: handing that out would leave 253-400 unread.
    reads: ReadOnce[str] = ReadOnce()
    assert _handed(reads, "raw-1", range(253, 401)) == []
    reads.seeking("raw-1", 253)
    assert _handed(reads, "raw-1", range(401, 551)) == []
    assert _handed(reads, "raw-1", range(253, 600)) == list(range(253, 600))


def test_a_start_that_never_comes_does_not_stall_the_partition() -> None:
    clock = _Clock()
    reads: ReadOnce[str] = ReadOnce(start_wait_s=30.0, clock=clock)
    reads.seeking("raw-0", 100)  # retention deletes 100-149 before the fetch
    assert _handed(reads, "raw-0", [150, 151]) == []
    clock.now = 29.9
    assert _handed(reads, "raw-0", [152]) == []
    clock.now = 30.0
    assert _handed(reads, "raw-0", [99]) == []  # below the start: never begins the run
    assert _handed(reads, "raw-0", [153, 154, 153]) == [153, 154]


def test_each_partition_is_its_own() -> None:
    reads: ReadOnce[str] = ReadOnce()
    reads.seeking("raw-0", 10)
    assert _handed(reads, "raw-0", [10, 11]) == [10, 11]
    assert _handed(reads, "raw-1", [10, 11]) == []  # not sought yet
    reads.seeking("raw-1", 5)
    assert _handed(reads, "raw-1", [5, 6]) == [5, 6]
    assert _handed(reads, "raw-0", [11, 12]) == [12]


def test_a_gap_after_the_run_began_is_handed_out_rather_than_waited_for() -> None:
    reads: ReadOnce[str] = ReadOnce()
    reads.seeking("raw-0", 100)
    assert _handed(reads, "raw-0", [100, 150, 151]) == [100, 150, 151]
    assert _handed(reads, "raw-0", [149, 151, 152]) == [152]


def test_the_offset_sought_is_handed_out_once_and_the_one_below_never() -> None:
    reads: ReadOnce[str] = ReadOnce()
    reads.seeking("raw-0", 262)
    assert _handed(reads, "raw-0", [261]) == []
    assert _handed(reads, "raw-0", [262]) == [262]
    assert _handed(reads, "raw-0", [262]) == []
    assert _handed(reads, "raw-0", [263]) == [263]


def test_an_unknown_seek_and_a_deliberate_re_read_hand_out_everything() -> None:
    reads: ReadOnce[str] = ReadOnce()
    reads.seeking("raw-0", None)
    assert _handed(reads, "raw-0", [5, 5, 4]) == [5, 5, 4]
    reads.seeking("raw-1", 100)
    assert _handed(reads, "raw-1", range(100, 120)) == list(range(100, 120))
    # The hole watch seeks back to 103: the re-read must reach the stages.
    reads.open("raw-1")
    assert _handed(reads, "raw-1", range(103, 110)) == list(range(103, 110))
    reads.seeking("raw-2", 7)
    reads.open("raw-2")  # opened before its run began: no start to wait for
    assert _handed(reads, "raw-2", [9]) == [9]


def test_a_revoked_partition_gets_nothing_until_sought_again() -> None:
    reads: ReadOnce[str] = ReadOnce()
    reads.seeking("raw-0", 0)
    reads.seeking("raw-1", 0)
    reads.forget(["raw-0", "raw-9"])
    assert not reads.is_sought("raw-0") and reads.is_sought("raw-1")
    assert _handed(reads, "raw-0", [0, 1]) == []
    assert _handed(reads, "raw-1", [0]) == [0]
    reads.seeking("raw-0", 0)
    assert _handed(reads, "raw-0", [0, 1]) == [0, 1]


def test_a_second_seek_in_the_same_generation_does_not_hand_out_the_run_again() -> None:
    # Measured in the hand-over: raw-2 sought to 286, 286-305 handed out while the table
    # recovery ran, then the recovery's own seek to 286: 286-305 were classified twice.
    reads: ReadOnce[str] = ReadOnce()
    reads.seeking("raw-2", 286)
    first = _handed(reads, "raw-2", range(286, 306))
    reads.seeking("raw-2", 286)
    again = _handed(reads, "raw-2", range(286, 320))
    assert first == list(range(286, 306))
    assert again == list(range(306, 320))


def test_the_second_seek_still_waits_for_its_own_run() -> None:
    # An earlier fetch's tail arriving after the second seek that does not continue what was
    # handed out is not that seek's run: it is read again from the start, in order.
    reads: ReadOnce[str] = ReadOnce()
    reads.seeking("raw-0", 297)
    assert _handed(reads, "raw-0", range(297, 317)) == list(range(297, 317))
    reads.seeking("raw-0", 300)  # a commit moved in between
    assert _handed(reads, "raw-0", range(320, 330)) == []
    assert _handed(reads, "raw-0", range(300, 340)) == list(range(317, 340))


def test_after_a_second_seek_what_continues_the_handed_out_run_is_handed_out() -> None:
    # The broker-loss fault test: 0-3 handed out after the rejoin's first seek, the second
    # seek did not move the position back, and the next records (4, 5, ...) are new ones. Each
    # offset still goes out once, whichever of the two arrives.
    reads: ReadOnce[str] = ReadOnce()
    reads.seeking("raw-0", 0)
    assert _handed(reads, "raw-0", range(0, 4)) == [0, 1, 2, 3]
    reads.seeking("raw-0", 0)
    assert _handed(reads, "raw-0", range(4, 9)) == [4, 5, 6, 7, 8]
    assert _handed(reads, "raw-0", range(0, 12)) == [9, 10, 11]  # the seek's re-read after all


def test_after_a_revoke_or_a_deliberate_re_read_a_seek_hands_out_everything_again() -> None:
    reads: ReadOnce[str] = ReadOnce()
    reads.seeking("raw-1", 563)
    assert _handed(reads, "raw-1", range(563, 584)) == list(range(563, 584))
    reads.forget(["raw-1"])  # what was in the buffers is gone with the generation
    reads.seeking("raw-1", 563)
    assert _handed(reads, "raw-1", range(563, 590)) == list(range(563, 590))
    reads.seeking("raw-1", 563)  # sought again: 563-589 are on their way already
    assert _handed(reads, "raw-1", range(563, 590)) == []
    reads.open("raw-1")  # the hole watch reads it again from 570: on purpose, all of it
    assert _handed(reads, "raw-1", range(570, 575)) == list(range(570, 575))


def test_a_seek_long_after_the_last_hands_out_what_comes() -> None:
    # A broker that came back empty numbers its records from 0 again: the rejoin's seek
    # comes seconds after the last one, and what it reads is new, not copies.
    clock = _Clock()
    reads: ReadOnce[str] = ReadOnce(clock=clock)
    reads.seeking("raw-2", 0)
    assert _handed(reads, "raw-2", range(0, 40)) == list(range(0, 40))
    clock.now = 30.0
    reads.seeking("raw-2", 0)
    assert _handed(reads, "raw-2", range(0, 5)) == list(range(0, 5))
