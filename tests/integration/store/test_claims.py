"""Claims on stored mentions, on a real SQLite file and a real PostgreSQL server alike: one
person per answer, even when two claim at the same instant from two workers."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path

import pytest

from agents.store.claims import ClaimBook, ClaimError, ClaimOutcome, UnknownSubject
from agents.store.schema import MIGRATIONS, latest_version, migrate
from agents.store.store import MentionStore
from tests.support.store import T0, backend_for, enriched


@pytest.fixture
def book(store: MentionStore) -> ClaimBook:
    store.write([enriched(1, "Acme battery exploded"), enriched(2, "Acme is fine")], now=T0)
    return ClaimBook(store)


def test_the_first_claim_wins_and_the_second_sees_who_has_it(book: ClaimBook) -> None:
    first = book.act("x:1", "claim", by="Ana", now=T0)
    assert first.won and first.changed and first.claim is not None
    assert (first.claim.state, first.claim.by) == ("claimed", "Ana")
    second = book.act("x:1", "claim", by="Ben", now=T0 + timedelta(minutes=1))
    assert not second.won and second.claim is not None
    assert second.claim.by == "Ana" and second.claim.says() == "Ana is answering this"
    # Claiming again what one holds is fine and changes nothing.
    again = book.act("x:1", "claim", by="Ana", now=T0 + timedelta(minutes=2))
    assert again.won and not again.changed
    assert book.get("x:2") is None


def test_only_the_holder_answers_and_the_answer_is_final(book: ClaimBook) -> None:
    book.act("x:1", "claim", by="Ana", now=T0)
    refused = book.act("x:1", "answer", by="Ben", reply_url="https://x.com/acme/1", now=T0)
    assert not refused.won and refused.claim is not None and refused.claim.by == "Ana"
    done = book.act("x:1", "answer", by="Ana", reply_url="https://x.com/acme/status/9",
                    now=T0 + timedelta(minutes=5))
    assert done.won and done.claim is not None
    assert (done.claim.state, done.claim.reply_url) == ("answered", "https://x.com/acme/status/9")
    assert done.claim.claimed_at == T0 and done.claim.updated_at == T0 + timedelta(minutes=5)
    # Answered: nobody claims it any more, not even Ana to release it.
    assert not book.act("x:1", "claim", by="Ben", now=T0).won
    assert not book.act("x:1", "release", by="Ana", now=T0).won


def test_release_lets_another_claim_and_history_keeps_every_step(book: ClaimBook) -> None:
    book.act("x:1", "claim", by="Ana", now=T0)
    assert not book.act("x:1", "release", by="Ben", now=T0).won  # not Ben's to release
    assert book.act("x:1", "release", by="Ana", now=T0 + timedelta(minutes=1)).won
    took = book.act("x:1", "claim", by="Ben", now=T0 + timedelta(minutes=2))
    assert took.won and took.claim is not None and took.claim.claimed_at == \
        T0 + timedelta(minutes=2)
    declined = book.act("x:1", "not-answering", by="Ben", reason="a troll\nobviously",
                        now=T0 + timedelta(minutes=3))
    assert declined.won and declined.claim is not None
    assert declined.claim.reason == "a troll obviously"  # one clean line
    steps = [(c.state, c.by) for c in book.history("x:1")]
    assert steps == [("claimed", "Ana"), ("released", "Ana"), ("claimed", "Ben"),
                     ("not_answering", "Ben")]


def test_history_is_in_the_order_changes_were_made_whatever_the_clocks(
        book: ClaimBook) -> None:
    # Two workers whose clocks differ: the answer is stamped before the claim it follows.
    book.act("x:1", "claim", by="Ana", now=T0 + timedelta(seconds=2))
    book.act("x:1", "answer", by="Ana", reply_url="https://x.com/r", now=T0)
    assert [c.state for c in book.history("x:1")] == ["claimed", "answered"]


def test_answering_without_a_claim_is_allowed_when_nobody_holds_it(book: ClaimBook) -> None:
    out = book.act("x:2", "answer", by="Ana", reply_url="http://blog.example/reply", now=T0)
    assert out.won and out.claim is not None and out.claim.state == "answered"
    assert set(book.claims(["x:1", "x:2", "x:9"])) == {"x:2"}


@pytest.mark.parametrize(("action", "kwargs", "says"), [
    ("answer", {"reply_url": "javascript:alert(1)"}, "reply_url"),
    ("answer", {"reply_url": "data:text/html,hi"}, "reply_url"),
    ("answer", {}, "reply_url"),
    ("answer", {"reply_url": "https://x.com/" + "a" * 2000}, "reply_url"),
    ("not-answering", {"reason": "  \n "}, "reason"),
    ("claim", {"by": "\u202e\n "}, "by"),
    ("steal", {}, "action"),
])
def test_bad_requests_say_what_to_send_and_change_nothing(
        book: ClaimBook, action: str, kwargs: dict[str, str], says: str) -> None:
    kwargs = dict(kwargs)  # the parameters are shared by both backends' runs
    by = kwargs.pop("by", "Ana")
    with pytest.raises(ClaimError, match=says):
        book.act("x:1", action, by=by, now=T0, **kwargs)
    assert book.get("x:1") is None and book.history("x:1") == []


def test_an_unknown_mention_cannot_be_claimed(book: ClaimBook) -> None:
    with pytest.raises(UnknownSubject, match="no stored mention 'x:404'"):
        book.act("x:404", "claim", by="Ana", now=T0)


def test_hostile_names_are_data(book: ClaimBook) -> None:
    evil = "Ana'); DROP TABLE claims; --"
    assert book.act("x:1", "claim", by=evil, now=T0).won
    claim = book.get("x:1")
    assert claim is not None and claim.by == evil


def test_two_workers_claiming_at_once_one_wins(
        request: pytest.FixtureRequest, tmp_path: Path, store: MentionStore) -> None:
    """Two stores on the same database (two workers), many mentions, each claimed by two
    threads released together: exactly one claim wins each time, and both agree who."""
    kind = store.backend.name
    keys = [f"x:{n}" for n in range(20)]
    store.write([enriched(n, f"mention {n}") for n in range(20)], now=T0)
    other = MentionStore(backend_for(kind, request, tmp_path))  # the same database
    other.open()
    books = [ClaimBook(store), ClaimBook(other)]
    try:
        for key in keys:
            start = threading.Barrier(2)
            results: dict[str, ClaimOutcome] = {}

            def claim(name: str, b: ClaimBook, k: str = key,
                      gate: threading.Barrier = start,
                      out: dict[str, ClaimOutcome] = results) -> None:
                gate.wait()
                out[name] = b.act(k, "claim", by=name, now=T0)

            threads = [threading.Thread(target=claim, args=(n, b))
                       for n, b in zip(("Ana", "Ben"), books, strict=True)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(30)
            winners = [n for n, r in results.items() if r.won]
            assert len(results) == 2 and len(winners) == 1, (key, results)
            holders = {r.claim.by for r in results.values() if r.claim}
            assert holders == set(winners)
            assert [c.by for c in books[0].history(key)] == winners
    finally:
        other.close()


def test_the_claims_migration_survives_a_rebuild(store: MentionStore) -> None:
    assert latest_version() >= 2
    book = ClaimBook(store)
    store.write([enriched(1, "Acme")], now=T0)
    book.act("x:1", "claim", by="Ana", now=T0)
    store.clear()  # a rebuild: mentions go, what people decided stays
    assert store.count() == 0
    claim = book.get("x:1")
    assert claim is not None and claim.by == "Ana"


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_a_version_1_store_is_brought_to_version_2_with_its_mentions(
        kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    backend = backend_for(kind, request, tmp_path)
    conn = backend.connect()
    try:
        assert migrate(conn, backend.name, now_ms=0, migrations=MIGRATIONS[:1]) == [1]
    finally:
        conn.close()
    old = MentionStore(backend)
    old.write([enriched(1, "Acme")], now=T0)  # opening it migrates to the latest
    assert old.count() == 1 and ClaimBook(old).act("x:1", "claim", by="Ana", now=T0).won
    old.close()
