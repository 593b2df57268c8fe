"""Stories in the mention store, on a real SQLite file and a real PostgreSQL server alike: a
copy-paste storm is stored as one story, searched by it and shown once, grouped."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path

import pytest

from agents.store.backends import DatabaseBackend
from agents.store.claims import ClaimBook, ClaimError, ClaimOutcome, UnknownSubject
from agents.store.groups import story_page
from agents.store.schema import MIGRATIONS, migrate
from agents.store.search import Search, SearchError, search_from_params
from agents.store.seeding import seed_stories
from agents.store.store import MentionStore
from streams.core.records import EnrichedMention
from tests.support.postgres import postgres_server, postgres_url  # noqa: F401
from tests.support.store import T0, backend_for, enriched

_EMOJI = ("", " \U0001f621", " \U0001f525\U0001f525", "!!!")


def storm(n: int = 300, *, start: int = 0, minutes: float = 0.0) -> list[EnrichedMention]:
    """``n`` accounts pasting one text, each copy a little different: a handle, a link, the
    case, emoji, a retweet prefix."""
    out = []
    for i in range(n):
        text = f"Acme charger exploded in my kid's room, never buying Acme again @friend{i}"
        if i % 3 == 0:
            text = text.upper()
        if i % 4 == 1:
            text = f"RT @victim{i % 7}: {text}"
        text += f" https://t.co/x{i}{_EMOJI[i % 4]}"
        out.append(enriched(start + i, text, author=f"acct{i}", sentiment="negative",
                            minutes=minutes + i / 30))
    return out


def stories_of(store: MentionStore, **params: str) -> list[dict[str, object]]:
    search = search_from_params({k: [v] for k, v in {**params, "group": "story"}.items()})
    return [row.summary() for row in story_page(store, search).stories]


def test_a_copy_paste_storm_is_one_story_and_another_text_another(store: MentionStore) -> None:
    store.write(storm(), now=T0)
    store.write([enriched(900, "Acme's new phone has a lovely screen", author="fan",
                          minutes=20)], now=T0)
    grouped = stories_of(store)
    assert [(g["count"], g["authors"]) for g in grouped] == [(1, 1), (300, 300)]
    assert grouped[0]["sample"]["text"] == "Acme's new phone has a lovely screen"  # type: ignore[index]
    big = str(grouped[1]["story"])
    assert big != grouped[0]["story"]
    # The story's own mentions, by parameter and by query term alike.
    page = store.search(search_from_params({"story": [big], "limit": ["500"]}))
    assert len(page.mentions) == 300 and page.cursor is None
    by_term = store.search(search_from_params({"q": [f"charger story:{big}"], "limit": ["5"]}))
    assert len(by_term.mentions) == 5 and by_term.cursor is not None
    assert store.search(search_from_params({"q": [f"phone story:{big}"]})).mentions == []
    assert len(stories_of(store, story=big)) == 1


def test_stories_are_per_watch_and_the_grouped_view_pages_by_key_set(
        store: MentionStore) -> None:
    texts = ["Acme battery swelled overnight", "the new Acme store in Lyon opens friday",
             "Acme support never answered my ticket", "loving the colours of the Acme X2",
             "Acme shares fell 4% after earnings", "why is Acme's app asking for contacts",
             "Acme recall: chargers made before May"]
    store.write([enriched(n, texts[n], minutes=n) for n in range(7)], now=T0)
    store.write([enriched(100 + n, texts[n].upper(), minutes=10 + n, author=f"b{n}")
                 for n in range(7)], now=T0)
    store.write([enriched(50, texts[0], watch="rival", minutes=30)], now=T0)
    seen, cursor = [], None
    for _ in range(5):  # bounded: a cursor that does not move on must fail, not hang
        params = {"group": ["story"], "limit": ["3"], "watch": ["acme"]}
        if cursor:
            params["cursor"] = [cursor]
        page = story_page(store, search_from_params(params))
        seen += [(row.story, row.count, row.authors) for row in page.stories]
        cursor = page.cursor
        if cursor is None:
            break
    assert len(seen) == 7 and len({s for s, _, _ in seen}) == 7
    assert all((count, authors) == (2, 2) for _, count, authors in seen)
    rival = stories_of(store, watch="rival")
    assert [g["count"] for g in rival] == [1]


def test_writing_again_keeps_story_ids(store: MentionStore) -> None:
    store.write(storm(20), now=T0)
    before = stories_of(store)
    again = MentionStore(store.backend)  # a rebuild over the live store: a fresh index
    try:
        again.write(list(reversed(storm(20))), now=T0)
    finally:
        again.close()
    assert stories_of(store) == before


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_a_version_2_store_keeps_its_rows_and_a_rebuild_gives_them_stories(
        kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    backend: DatabaseBackend = backend_for(kind, request, tmp_path)
    conn = backend.connect()
    try:
        assert migrate(conn, backend.name, now_ms=0, migrations=MIGRATIONS[:2]) == [1, 2]
        cur = conn.cursor()
        ph = backend.placeholder
        cur.execute("INSERT INTO mentions (key, source, author, verified, language, sentiment, "
                    "priority, reach, posted_at, stored_at) VALUES "
                    f"({', '.join([ph] * 10)})",
                    ("x:1", "x", "a", False, "en", "neutral", 1, 1, 1, 1))
        cur.execute("INSERT INTO mention_watches (watch_id, mention_id, posted_at) "
                    f"SELECT {ph}, id, 1 FROM mentions", ("acme",))
        conn.commit()
    finally:
        conn.close()
    old = MentionStore(backend)
    try:
        old.open()  # to version 3: the row stays, without a story
        assert old.count() == 1
        assert old.read_rows("SELECT watch_id, story FROM mention_watches", ()) == \
            [("acme", None)]
        old.write([enriched(1, "Acme")], now=T0)  # what a rebuild does
        [(watch, story)] = old.read_rows("SELECT watch_id, story FROM mention_watches", ())
        assert watch == "acme" and story is not None and len(story) == 16
    finally:
        old.close()


@pytest.mark.parametrize(("params", "says"), [
    ({"story": ["nope"]}, "story id"),
    ({"q": ["story:zz"]}, "story id"),
    ({"q": ["story:0123456789abcdef story:0123456789abcdee"]}, "one story"),
    ({"group": ["authors"]}, "group"),
    ({"group": ["story"], "sort": ["reach"]}, "last seen"),
    ({"group": ["story"], "cursor": ["eyJ4IjoxfQ"]}, "cursor"),
])
def test_bad_story_parameters_say_what_to_send(params: dict[str, list[str]],
                                               says: str) -> None:
    with pytest.raises(SearchError, match=says):
        search_from_params(params)


def test_a_story_term_with_nothing_else_leaves_no_query() -> None:
    search = search_from_params({"q": ["story:0123456789ABCDEF"]})
    assert search == Search(story="0123456789abcdef")


def test_a_story_is_claimed_whole_by_one_of_two_workers(
        request: pytest.FixtureRequest, tmp_path: Path, store: MentionStore) -> None:
    store.write(storm(30), now=T0)
    [row] = stories_of(store)
    story = str(row["story"])
    other = MentionStore(backend_for(store.backend.name, request, tmp_path))  # same database
    other.open()
    books = [ClaimBook(store), ClaimBook(other)]
    results: dict[str, ClaimOutcome] = {}
    gate = threading.Barrier(2)

    def claim(name: str, book: ClaimBook) -> None:
        gate.wait()
        results[name] = book.act(story, "claim", by=name, now=T0, kind="story")

    try:
        threads = [threading.Thread(target=claim, args=(n, b))
                   for n, b in zip(("Ana", "Ben"), books, strict=True)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        winners = [n for n, r in results.items() if r.won]
        assert len(results) == 2 and len(winners) == 1
        loser = ({"Ana", "Ben"} - set(winners)).pop()
        assert results[loser].claim is not None and results[loser].claim.by == winners[0]
        # The same atomic rules as a mention's: only the holder answers or releases.
        assert not books[0].act(story, "release", by=loser, now=T0, kind="story").won
        done = books[1].act(story, "answer", by=winners[0], kind="story", now=T0,
                            reply_url="https://x.com/acme/status/1")
        assert done.won and done.claim is not None and done.claim.state == "answered"
        assert [c.state for c in books[0].history(story, kind="story")] == \
            ["claimed", "answered"]
        # A story's claim is not a mention's: the mentions in it are unclaimed.
        assert books[0].get(story) is None and books[0].claims(["x:0"]) == {}
    finally:
        other.close()


def test_an_unknown_story_cannot_be_claimed(store: MentionStore) -> None:
    store.write([enriched(1, "Acme")], now=T0)
    with pytest.raises(UnknownSubject, match="no stored story"):
        ClaimBook(store).act("0123456789abcdef", "claim", by="Ana", kind="story")
    with pytest.raises(ClaimError, match="kind"):
        ClaimBook(store).act("x:1", "claim", by="Ana", kind="thread")  # type: ignore[arg-type]


def _restarted(store: MentionStore, request: pytest.FixtureRequest,
               tmp_path: Path) -> MentionStore:
    """A second store object on the same database: the worker after a restart."""
    again = MentionStore(backend_for(store.backend.name, request, tmp_path))
    again.open()
    return again


def test_a_storm_running_across_a_restart_keeps_its_story_id(
        request: pytest.FixtureRequest, tmp_path: Path, store: MentionStore) -> None:
    copies = storm(300)  # ten minutes of copies
    store.write(copies[:150], now=T0)
    again = _restarted(store, request, tmp_path)
    try:
        seeded = seed_stories(again, watches=["acme", "rival"], hours=6, per_watch=20_000,
                              now=T0 + timedelta(minutes=10))
        again.write(copies[150:], now=T0)
    finally:
        again.close()
    assert seeded == 150
    assert [(g["count"], g["authors"]) for g in stories_of(store)] == [(300, 300)]


def test_seeding_reads_only_the_window_and_at_most_the_bound(
        request: pytest.FixtureRequest, tmp_path: Path, store: MentionStore) -> None:
    store.write(storm(20), now=T0)  # posted in T0's first minute
    again = _restarted(store, request, tmp_path)
    try:
        late = T0 + timedelta(hours=6, minutes=2)  # the first copies are out of the window
        assert seed_stories(again, watches=["acme"], hours=6, per_watch=100, now=late) == 0
        assert seed_stories(again, watches=["acme"], hours=6, per_watch=5,
                            now=T0 + timedelta(minutes=1)) == 5
        assert seed_stories(again, watches=["acme"], hours=0, per_watch=5) == 0
    finally:
        again.close()
