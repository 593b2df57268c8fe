"""A watch query compiled to SQL: fixed fragments and placeholders, the words as parameters."""

from __future__ import annotations

from pathlib import Path

import pytest

from agents.store.backends import PostgresBackend, SqliteBackend
from agents.store.search import search_from_params, select
from agents.store.sql import compile_query, like_pattern, token_regex
from streams.core.query import parse_query

SQLITE = SqliteBackend(Path("unused.sqlite3"))
POSTGRES = PostgresBackend("postgresql://u:p@localhost/db")

HOSTILE = {
    "\"robert'); DROP TABLE students; --\"": ["robert", "drop", "students"],
    'lang:"es\' OR \'1\'=\'1"': ["'1'='1"],
    "author:\"x'); DELETE FROM mentions; --\"": ["delete from mentions"],
    'source:"rss\' --" OR acme': ["rss' --"],
}


@pytest.mark.parametrize("dialect", [SQLITE, POSTGRES], ids=["sqlite", "postgresql"])
@pytest.mark.parametrize("query", list(HOSTILE))
def test_the_query_never_reaches_the_sql_text(dialect: object, query: str) -> None:
    compiled = compile_query(parse_query(query), dialect)  # type: ignore[arg-type]
    for word in HOSTILE[query]:
        assert word.lower() not in compiled.sql.lower()
        assert any(word.lower() in str(p).lower() for p in compiled.params)
    placeholder = "?" if dialect is SQLITE else "%s"
    assert compiled.sql.count(placeholder) == len(compiled.params)


def test_index_only_subtrees_become_one_match_expression() -> None:
    c = compile_query(parse_query("(battery OR bateria) -recall lang:es"), SQLITE)
    assert c.sql == ("(m.id IN (SELECT rowid FROM mention_fts WHERE mention_fts MATCH ?)) AND "
                     "(m.language = ?)")
    assert c.params == ('(("battery" OR "bateria") NOT "recall")', "es")
    # PostgreSQL has a unary NOT: a negation alone stays in the tsquery.
    p = compile_query(parse_query("-recall"), POSTGRES)
    assert (p.sql, p.params) == ("m.tsv @@ %s::tsquery", ("!('recall')",))
    both = compile_query(parse_query("(battery OR bateria) -recall"), POSTGRES)
    assert both.params == ("((('battery') | ('bateria')) & !('recall'))",)
    # FTS5 does not: NOT outside the index.
    s = compile_query(parse_query("-recall"), SQLITE)
    assert s.sql == "NOT (m.id IN (SELECT rowid FROM mention_fts WHERE mention_fts MATCH ?))"


def test_phrases_prefixes_tags_and_wildcards() -> None:
    assert compile_query(parse_query('"acme corp*"'), POSTGRES).params == (
        "('acme' <-> 'corp')",)
    assert compile_query(parse_query("acme*"), SQLITE).params == ('"acme" *',)
    assert compile_query(parse_query("#acme"), POSTGRES).params == ("('#acme')",)
    c = compile_query(parse_query("ac?e"), SQLITE)
    assert c.sql.endswith("(m.words REGEXP ?)")
    assert c.params == ('"ac" *', token_regex(["ac?e"]))
    # No letters before the wildcard: only the expression, over every row.
    assert compile_query(parse_query("*cme"), POSTGRES).sql == "m.words ~ %s"


def test_regex_and_like_patterns_escape_what_they_must() -> None:
    assert token_regex(["$ac*", "b?"]) == r"(^| )\$ac[^ ]* b[^ ]( |$)"
    assert like_pattern("a_b%c\\*?") == "a\\_b\\%c\\\\%_"


def test_a_whole_search_binds_every_filter() -> None:
    search = search_from_params({
        "q": ["acme"], "watch": ["acme", "globex"], "sentiment": ["negative"],
        "lang": ["es"], "source": ["x"], "min_priority": ["50"], "verified": ["true"],
        "since": ["2026-03-01T00:00:00Z"], "sort": ["priority"], "limit": ["10"]})
    c = select(search, SQLITE)
    assert c.sql.count("?") == len(c.params)
    assert "ORDER BY m.priority DESC, m.posted_at DESC, m.id DESC LIMIT ?" in c.sql
    assert c.params[-1] == 11  # one more row than asked: is there a next page?
