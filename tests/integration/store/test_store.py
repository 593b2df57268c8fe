"""The mention store on a real SQLite file and a real PostgreSQL server, the same cases on both.

Writing (idempotent by key, watches merged, refused rows named), searching with the watch
query syntax (the same answers on both backends and, where the index can say it, the same as
the watch matcher), filters, sorts and key-set paging, hostile input, retention per watch,
the schema's versions, and a database that is unavailable.
"""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from agents.classify.matching import WatchMatcher
from agents.store.backends import PostgresBackend, SqliteBackend
from agents.store.search import SearchError, search_from_params
from agents.store.store import MentionStore, SearchTimeout, StoreError, StoreUnavailable
from streams.config.settings import Watch
from streams.core.records import EnrichedMention
from tests.support.procs import free_port
from tests.support.store import T0, backend_for, enriched

CORPUS: dict[int, EnrichedMention] = {
    1: enriched(1, "Acme battery exploded in my hand #acme", author="bob",
                sentiment="negative", priority=80, followers=5000, verified=True, minutes=1),
    2: enriched(2, "La batería de Acme explotó, qué peligro", lang="es", author="maria",
                sentiment="negative", priority=70, followers=300, minutes=2),
    3: enriched(3, "@acme your support never answers", author="carl", source="reddit",
                sentiment="negative", priority=40, minutes=3),
    4: enriched(4, "acmeology is not a real word", author="dan", source="rss", priority=5,
                minutes=4),
    5: enriched(5, "Café au lait chez Acme, très bon", lang="fr", author="Élodie",
                source="mastodon", sentiment="positive", priority=20, minutes=5),
    6: enriched(6, "mail bob@acme.com about the data breach", author="acmesupport",
                priority=30, minutes=6),
    7: enriched(7, "Data breach at ACME Corp confirmed", author="news", source="rss",
                sentiment="negative", priority=90, followers=2_000_000, verified=True,
                minutes=7),
    8: enriched(8, "Globex beats Acme again, $ACME down", author="trader", watch="globex",
                watches=["globex", "acme"], sentiment="negative", priority=50, minutes=8),
    9: enriched(9, "Rien à voir avec la marque", lang="fr", author="zoe", watch="globex",
                minutes=9),
}
ALL = set(CORPUS)

#: query -> the corpus ids it finds, on both backends.
SEARCHES: dict[str, set[int]] = {
    "acme": {1, 2, 5, 7, 8},          # not "@acme" (a handle), "acmeology", bob@acme.com
    "#acme": {1},                     # the hashtag only
    "@acme": {3},
    "$acme": {8},
    "bateria": {2},                   # accents folded, Spanish
    "batería": {2},
    "cafe": {5},                      # and French
    "très": {5},
    '"tres bon"': {5},
    "acme*": {1, 2, 4, 5, 7, 8},
    "explo*": {1, 2},
    "ac?e": {1, 2, 5, 7, 8},
    "*cme": {1, 2, 3, 5, 7, 8},
    '"data breach"': {6, 7},
    '"acme corp"': {7},
    "breach AND lang:en -author:acmesupport": {7},
    "lang:fr": {5, 9},
    "lang:f*": {5, 9},
    "source:rss": {4, 7},
    "author:@Élodie": {5},
    "author:acme*": {6},
    "-acme": {3, 4, 6, 9},
    "acme NOT (battery OR bateria)": {5, 7, 8},
    "(battery OR breach) AND NOT source:rss": {1, 6},
    "globex || zoe": {8},
    "marque OR confirmed": {7, 9},
}
#: Where the index cannot say what the matcher says: "*cme" on "bob@acme.com" (the matcher's
#: regex sees the characters, the index sees no word there).
NOT_AS_MATCHER = {"*cme"}


def _ids(page: Any) -> set[int]:
    return {int(m.record.mention.id) for m in page.mentions}


def _search(store: MentionStore, **params: str | list[str]) -> set[int]:
    query = {k: v if isinstance(v, list) else [v] for k, v in params.items()}
    return _ids(store.search(search_from_params({**query, "limit": ["500"]})))


@pytest.fixture
def corpus(store: MentionStore) -> MentionStore:
    result = store.write(list(CORPUS.values()))
    assert (result.stored, result.rejected) == (len(CORPUS), [])
    return store


# --- writing -------------------------------------------------------------------------------

def test_writing_is_idempotent_by_mention_key_and_merges_watches(store: MentionStore) -> None:
    first = enriched(1, "Acme outage", watch="acme")
    again = store.write([first, first])  # read twice (at-least-once), in one batch
    assert again.stored == 1
    # The copy classify routes to another watch, and a re-delivery a minute later.
    other = first.model_copy(update={"watch_id": "globex", "watch_ids": ["acme", "globex"]})
    assert store.write([other, first]).stored == 0
    assert store.count() == 1
    page = store.search(search_from_params({}))
    assert [m.watch_ids for m in page.mentions] == [("acme", "globex")]
    assert _search(store, watch="globex") == {1}
    assert page.mentions[0].record == first  # the first copy's record is kept


def test_a_record_the_store_refuses_is_named_and_the_rest_is_stored(
        store: MentionStore) -> None:
    bad_watch = enriched(2, "Acme", watch="")
    # A real refusal by the database itself: a trigger that raises for one key.
    _refuse_key(store, "x:3")
    result = store.write([enriched(1, "Acme ok"), bad_watch, enriched(3, "Acme refused"),
                          enriched(4, "Acme fine")])
    assert result.stored == 2
    assert [i for i, _ in result.rejected] == [1, 2]
    assert "watch id is empty" in result.rejected[0][1]
    assert "refused for the test" in result.rejected[1][1]
    assert _search(store) == {1, 4}


def _refuse_key(store: MentionStore, key: str) -> None:
    with store._conn("write") as conn:
        cur = conn.cursor()
        if store.backend.name == "sqlite":
            cur.execute(f"CREATE TRIGGER refuse BEFORE INSERT ON mentions WHEN new.key = "
                        f"'{key}' BEGIN SELECT RAISE(ABORT, 'refused for the test'); END")
        else:
            cur.execute(f"""CREATE FUNCTION refuse() RETURNS trigger AS $$ BEGIN
                IF NEW.key = '{key}' THEN RAISE EXCEPTION 'refused for the test'
                USING ERRCODE = 'check_violation'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql""")
            cur.execute("CREATE TRIGGER refuse BEFORE INSERT ON mentions FOR EACH ROW "
                        "EXECUTE FUNCTION refuse()")
        conn.commit()


def test_attacker_text_is_kept_byte_for_byte(store: MentionStore) -> None:
    text = "Acme\x00 <script>alert(1)</script> '; DROP TABLE mentions; -- \u202e ﷺ"
    em = enriched(1, text, author="evil\x00one", url="javascript:alert(1)")
    assert store.write([em]).stored == 1
    page = store.search(search_from_params({"q": ["acme"]}))
    assert page.mentions[0].record == em
    summary = page.mentions[0].summary()
    assert summary["text"] == text
    assert summary["url"] is None  # never a javascript: link
    assert store.count() == 1
    # Folded, this text is 6 times longer: its index entry stays within PostgreSQL's bounds.
    long = enriched(2, "acme " + ("\u3316" * 17 + " ") * 5000)
    assert store.write([long]).rejected == []
    assert _search(store, q="acme") == {1, 2}


# --- searching -----------------------------------------------------------------------------

@pytest.mark.parametrize("query", list(SEARCHES))
def test_the_query_syntax_of_watches_finds_the_same_on_both_backends(
        corpus: MentionStore, query: str) -> None:
    assert _search(corpus, q=query) == SEARCHES[query]


@pytest.mark.parametrize(("drive_under", "probe_over", "mode"), [
    (10**9, 10**9, "driver"), (0, 10**9, "set"), (0, 0, "probe")])
def test_each_way_sqlite_runs_a_full_text_condition_finds_the_same(
        tmp_path: Path, drive_under: int, probe_over: int, mode: str) -> None:
    backend = SqliteBackend(tmp_path / "m.sqlite3", drive_under=drive_under,
                            probe_over=probe_over)
    store = MentionStore(backend)
    store.write(list(CORPUS.values()))
    with store._conn("read") as conn:
        assert backend.plan_fts(conn.cursor(), '"acme"') == mode
    for query, expected in SEARCHES.items():
        assert _search(store, q=query) == expected, query
        assert _search(store, q=query, sort="priority", lang="en") == \
            expected & {n for n, e in CORPUS.items() if e.mention.language == "en"}, query
    store.close()


def test_sqlite_plans_by_how_many_rows_a_condition_matches(tmp_path: Path) -> None:
    backend = SqliteBackend(tmp_path / "m.sqlite3", drive_under=4, probe_over=12, sample=20)
    store = MentionStore(backend)
    store.write([enriched(i, "acme " + ("rare " if i % 20 == 0 else "")
                          + ("mid " if i % 4 == 0 else "common")) for i in range(40)])
    with store._conn("read") as conn:
        cur = conn.cursor()
        # 40 rows, the newest 20 sampled: "mid", in 5 of those, is estimated at 10 rows.
        assert [backend.plan_fts(cur, f'"{w}"') for w in ("rare", "mid", "common", "nowhere")] \
            == ["driver", "set", "probe", "driver"]
    store.close()


def test_searches_agree_with_the_watch_matcher(corpus: MentionStore) -> None:
    for query, expected in SEARCHES.items():
        if query in NOT_AS_MATCHER:
            continue
        matcher = WatchMatcher([Watch(id="w", name="w", query=query)])
        matched = {n for n, em in CORPUS.items() if matcher.match(em.mention)}
        assert matched == expected, query


def test_filters(corpus: MentionStore) -> None:
    assert _search(corpus, watch="globex") == {8, 9}
    assert _search(corpus, watch=["globex", "acme"]) == ALL
    assert _search(corpus, watch="acme", q="acme") == {1, 2, 5, 7, 8}
    assert _search(corpus, since=(T0 + timedelta(minutes=3)).isoformat(),
                   until=(T0 + timedelta(minutes=6)).isoformat()) == {3, 4, 5}
    assert _search(corpus, sentiment="negative,positive") == {1, 2, 3, 5, 7, 8}
    assert _search(corpus, lang=["fr", "es"]) == {2, 5, 9}
    assert _search(corpus, source="rss") == {4, 7}
    assert _search(corpus, min_priority="70") == {1, 2, 7}
    assert _search(corpus, verified="true") == {1, 7}
    assert _search(corpus, verified="false") == ALL - {1, 7}
    assert _search(corpus, q="acme", verified="true", lang="en", min_priority="85") == {7}


@pytest.mark.parametrize(("sort", "key"), [
    ("time", lambda e: (e.mention.created_at,)),
    ("priority", lambda e: (e.priority, e.mention.created_at)),
    ("reach", lambda e: (e.mention.author.followers, e.mention.created_at)),
])
@pytest.mark.parametrize("order", ["desc", "asc"])
def test_key_set_pages_cover_the_result_once_in_order(store: MentionStore, sort: str,
                                                      key: Any, order: str) -> None:
    mentions = [enriched(i, f"acme post {i}", priority=(i * 7) % 5, followers=(i * 13) % 4,
                         minutes=(i * 17) % 41) for i in range(41)]
    store.write(mentions)
    expected = sorted(mentions, key=key, reverse=order == "desc")
    got: list[EnrichedMention] = []
    params = {"q": ["acme"], "sort": [sort], "order": [order], "limit": ["6"]}
    cursor = None
    for _ in range(20):
        page = store.search(search_from_params({**params, **({"cursor": [cursor]}
                                                              if cursor else {})}))
        got += [m.record for m in page.mentions]
        cursor = page.cursor
        if cursor is None:
            break
    assert [e.mention.id for e in got] == [e.mention.id for e in expected]
    with pytest.raises(SearchError, match="another sort"):
        other = "reach" if sort != "reach" else "time"
        store.search(search_from_params({**params, "sort": [other], "cursor": [
            store.search(search_from_params(params)).cursor or ""]}))


HOSTILE = [
    "'; DROP TABLE mentions; --",
    'acme" OR 1=1 --',
    "acme') OR ('1'='1",
    "\"acme\" NEAR(x y)",
    "x' UNION SELECT key FROM mentions --",
    "robert'); DELETE FROM mention_watches; --",
    "lang:\"es' OR '1'='1\"",
    "author:\"x'); DROP TABLE mentions; --\"",
    "source:*' OR 1=1 --",
    "acme* OR \"$ \\\" ' ; --\"",
    "%_% OR \\%",
    "{words} : acme",
    "a" * 5000,
]


@pytest.mark.parametrize("query", HOSTILE)
def test_hostile_search_input_is_only_ever_data(corpus: MentionStore, query: str) -> None:
    try:
        found = _search(corpus, q=query)
    except SearchError:
        found = set()
    # Whatever the words, they searched: nothing was run, nothing else answered.
    assert found < ALL
    assert corpus.count() == len(CORPUS)
    assert _search(corpus, watch="globex") == {8, 9}
    for name, value in (("sentiment", "negative' OR '1'='1"), ("lang", "es' --"),
                        ("source", "x') OR 1=1"), ("watch", "acme' OR 1=1 --"),
                        ("min_priority", "1 OR 1=1"), ("since", "now'); DROP"),
                        ("cursor", "eyJhIjogMX0"), ("sort", "time; DROP TABLE mentions")):
        with pytest.raises(SearchError):
            _search(corpus, **{name: value})


@pytest.mark.timeout(60)
def test_a_wildcard_built_to_backtrack_is_answered(store: MentionStore) -> None:
    store.write([enriched(1, "acme " + "a" * 100), enriched(2, "acme " + "a" * 99 + "b")])
    # As a backtracking regular expression: over a minute for the first text alone.
    assert _search(store, q="a*a*a*a*a*a*a*a*a*a*a*b") == {2}


def test_a_search_past_its_time_is_stopped(request: pytest.FixtureRequest, tmp_path: Path,
                                           corpus: MentionStore) -> None:
    corpus.write([enriched(100 + i, f"acme filler text number {i} with words")
                  for i in range(3000)])
    slow = MentionStore(corpus.backend, search_timeout_s=0.001)
    try:
        with pytest.raises(SearchTimeout, match="narrow it"):
            # A leading wildcard reads every row: a regular expression on each.
            slow.search(replace(search_from_params({"q": ["*e*r*"], "limit": ["500"]}),
                                sort="reach"))
    finally:
        slow.close()


# --- keeping it in bounds --------------------------------------------------------------------

def test_retention_is_per_watch_and_a_mention_goes_with_its_last_watch(
        store: MentionStore) -> None:
    now = T0 + timedelta(days=40)
    store.write([
        enriched(1, "acme old", watch="acme", minutes=0),                       # 40 days
        enriched(2, "acme and globex old", watch="acme", watches=["acme", "globex"]),
        enriched(3, "acme recent", watch="acme", minutes=35 * 24 * 60),         # 5 days
        enriched(4, "initech old", watch="initech"),                            # default
    ])
    gone = store.expire(default_days=60, days={"acme": 30, "globex": 365}, now=now)
    assert gone == 1
    assert _search(store) == {2, 3, 4}
    assert _search(store, watch="acme") == {3}         # 2 left acme...
    assert _search(store, watch="globex") == {2}       # ...and stays for globex
    assert store.expire(default_days=10, days={"acme": 30, "globex": 20}, now=now) == 2
    assert _search(store) == {3}


# --- the schema and the database -------------------------------------------------------------

def test_the_schema_is_versioned_and_a_newer_one_is_refused(
        request: pytest.FixtureRequest, tmp_path: Path, store: MentionStore) -> None:
    kind = store.backend.name
    again = MentionStore(backend_for(kind, request, tmp_path) if kind == "sqlite"
                         else store.backend)
    again.open()  # already at the latest version: nothing applied, nothing lost
    store.write([enriched(1, "acme")])
    assert again.count() == 1
    with store._conn("write") as conn:
        conn.cursor().execute("INSERT INTO store_schema (version, description, applied_at) "
                              "VALUES (99, 'from the future', 0)")
        conn.commit()
    newer = MentionStore(store.backend)
    with pytest.raises(StoreError, match="schema version 99, newer than this escucha"):
        newer.open()
    again.close()


def test_clear_empties_the_store_and_keeps_it_usable(corpus: MentionStore) -> None:
    corpus.clear()
    assert corpus.count() == 0
    assert corpus.write([CORPUS[1]]).stored == 1
    assert _search(corpus, q="#acme") == {1}


def test_a_locked_sqlite_file_is_unavailable_not_a_bad_row(tmp_path: Path) -> None:
    path = tmp_path / "store" / "mentions.sqlite3"
    store = MentionStore(SqliteBackend(path, busy_timeout_s=0.2))
    store.open()
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another writer holds the lock
    try:
        with pytest.raises(StoreUnavailable, match="database is locked"):
            store.write([enriched(1, "acme")])
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert store.write([enriched(1, "acme")]).stored == 1  # and it recovers
    store.close()


def test_an_unreachable_postgresql_is_unavailable_and_its_password_never_said() -> None:
    store = MentionStore(PostgresBackend(
        f"postgresql://escucha:s3cret-pw@127.0.0.1:{free_port()}/escucha"))
    assert "s3cret-pw" not in store.location
    for attempt in (store.open, lambda: store.write([enriched(1, "acme")])):
        with pytest.raises(StoreUnavailable) as caught:
            attempt()
        assert "s3cret-pw" not in str(caught.value)
        assert "127.0.0.1" in str(caught.value)


def test_statistics_can_be_refreshed(corpus: MentionStore) -> None:
    corpus.analyze()  # PostgreSQL: ANALYZE; SQLite: nothing to do
    assert corpus.write([enriched(50, "acme after analyze")]).stored == 1
    assert _search(corpus, q="analyze") == {50}
