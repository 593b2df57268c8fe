"""A watch query compiled to SQL: fixed fragments and placeholders, the words as parameters."""

from __future__ import annotations

from pathlib import Path

import pytest

from agents.store.backends import PostgresBackend, SqliteBackend
from agents.store.search import search_from_params, select
from agents.store.sql import compile_query, glob_match, like_pattern, token_regex
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
    query = parse_query("(battery OR bateria) -recall lang:es")
    c = compile_query(query, SQLITE, driver="driver")
    assert c.sql == ("(m.id IN (SELECT rowid FROM mention_fts WHERE mention_fts MATCH ?)) AND "
                     "(m.language = ?)")
    assert c.params == ('(("battery" OR "bateria") NOT "recall")', "es")
    assert c.driver_fts == c.params[0]
    # PostgreSQL has a unary NOT: a negation alone stays in the tsquery.
    p = compile_query(parse_query("-recall"), POSTGRES)
    assert (p.sql, p.params) == (
        "m.id IN (SELECT t.id FROM mention_texts t WHERE t.tsv @@ %s::tsquery)", ("!('recall')",))
    both = compile_query(parse_query("(battery OR bateria) -recall"), POSTGRES)
    assert both.params == ("((('battery') | ('bateria')) & !('recall'))",)
    # FTS5 does not: NOT outside the index.
    s = compile_query(parse_query("-recall"), SQLITE, driver="driver")
    assert s.sql == "NOT (+m.id IN (SELECT rowid FROM mention_fts WHERE mention_fts MATCH ?))"
    assert s.driver_fts is None  # nothing the whole query needs: nothing to drive by


def test_the_top_condition_runs_as_the_backend_planned_and_the_others_as_sets() -> None:
    query = parse_query("acme AND (battery OR lang:es)")
    probe = compile_query(query, SQLITE, driver="probe")
    assert probe.sql.startswith("(EXISTS (SELECT 1 FROM mention_fts f WHERE f.rowid = m.id "
                                "AND f.mention_fts MATCH ?)) AND ((+m.id IN")
    assert probe.driver_fts == '"acme"'
    assert compile_query(query, SQLITE, driver="set").sql.startswith("(+m.id IN")


def test_phrases_prefixes_tags_and_wildcards() -> None:
    assert compile_query(parse_query('"acme corp*"'), POSTGRES).params == (
        "('acme' <-> 'corp')",)
    assert compile_query(parse_query("acme*"), SQLITE).params == ('"acme" *',)
    assert compile_query(parse_query("#acme"), POSTGRES).params == ("('#acme')",)
    c = compile_query(parse_query("ac?e"), SQLITE)
    assert c.sql.endswith("(EXISTS (SELECT 1 FROM mention_texts t WHERE t.id = m.id AND "
                          "escucha_glob(?, t.words)))")
    assert c.params == ('"ac" *', "ac?e")
    assert compile_query(parse_query("ac?e"), POSTGRES).params[-1] == token_regex(["ac?e"])
    # No letters before the wildcard: only the expression, over every row.
    assert compile_query(parse_query("*cme"), POSTGRES).sql == (
        "EXISTS (SELECT 1 FROM mention_texts t WHERE t.id = m.id AND t.words ~ %s)")


@pytest.mark.parametrize(("globs", "words"), [
    ("ac?e", "the acme way"), ("ac?e", "the acne"), ("ac?e", "acce"), ("*cme", "#acme x"),
    ("a*e", "ae"), ("a*e", "abcde fg"), ("a*e", "abcd"), ("$ac*", "buy $acme"),
    ("wi f*", "wi fi here"), ("wi f*", "wi xfi"), ("a*b*c", "aXbYc"), ("a*b*c", "aXcYb"),
    ("*", "anything"), ("a?", "a"), ("x", ""),
])
def test_sqlite_globs_match_as_postgresql_regexes_do(globs: str, words: str) -> None:
    import re

    expected = re.search(token_regex(globs.split(" ")), words) is not None
    assert glob_match(globs, words) is expected


def test_a_glob_never_backtracks_for_ever() -> None:
    # As a Python regular expression this takes longer than a minute on one 100-char word.
    assert glob_match("a*a*a*a*a*a*a*a*a*a*a*b", " ".join(["a" * 100] * 200)) is False


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
