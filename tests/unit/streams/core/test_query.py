"""Watch queries: parse errors with positions, matching, and print/re-parse round trips."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.classify.matching import WatchMatcher
from streams.config.settings import ConfigError, Watch, load_settings
from streams.core.query import (
    And,
    Field,
    Node,
    Not,
    Or,
    QueryError,
    Term,
    parse_query,
    positive_terms,
    to_query,
    to_x_rule,
)
from streams.core.records import Author, Mention


def mention(text: str, *, lang: str | None = "en", source: str = "rss",
            author: str = "someone") -> Mention:
    return Mention(source=source, id="1", author=Author(handle=author), text=text,
                   language=lang, created_at=datetime(2024, 5, 1, tzinfo=UTC))


def matches(query: str, text: str, **kw: str | None) -> bool:
    watch = Watch(id="w", name="W", query=query)
    return WatchMatcher([watch]).match(mention(text, **kw)) == ["w"]  # type: ignore[arg-type]


# -- parsing -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("query", "tree"), [
    ("acme", Term("acme")),
    ("ACME Corp", And((Term("acme"), Term("corp")))),            # side by side: AND
    ('"Acme Corp"', Term("acme corp", phrase=True)),
    ("a OR b", Or((Term("a"), Term("b")))),
    ("a || b && c", Or((Term("a"), And((Term("b"), Term("c")))))),  # && binds tighter
    ("-spam acme", And((Not(Term("spam")), Term("acme")))),
    ("+acme !spam", And((Term("acme"), Not(Term("spam"))))),
    ("lang:ES", Field("lang", Term("es"))),
    ("language:es", Field("lang", Term("es"))),
    ("author:@Bob", Field("author", Term("bob"))),
    ("text:acme", Term("acme")),
    ("source:(reddit OR x)", Or((Field("source", Term("reddit")), Field("source", Term("x"))))),
    ("Café", Term("cafe")),
    ("at\\&t", Term("at&t")),
    ("AT&T", Term("at&t")),
    ("#Acme @acme $ACME", And((Term("#acme"), Term("@acme"), Term("$acme")))),
    ("acme*", Term("acme*")),
])
def test_parses_to_the_expected_tree(query: str, tree: Node) -> None:
    assert parse_query(query) == tree


@pytest.mark.parametrize(("query", "message"), [
    ("", "empty"),
    ("   ", "empty"),
    ("acme AND AND outage", "unexpected 'AND' at character 10"),
    ("acme)", "unexpected ')' at character 5"),
    ('"acme corp', "unclosed quote"),
    ("(acme OR globex", "ends too early"),
    ("acme OR", "ends too early"),
    ("foo:bar", "unknown field 'foo' at character 1"),
    ("acme~2", "fuzzy queries are not supported"),
    ("acme^3", "boost queries are not supported"),
    ("[a TO b]", "range queries are not supported"),
    ("lang:author:x", "a field inside a field"),
    ("*", "wildcard needs some letters"),
    ('""', "empty phrase"),
    ("a ||", "ends with an operator"),
])
def test_invalid_queries_say_what_and_where(query: str, message: str) -> None:
    with pytest.raises(QueryError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_query(query)


def test_config_load_rejects_a_bad_query_with_its_path_and_position(tmp_path) -> None:  # type: ignore[no-untyped-def]
    cfg = tmp_path / "escucha.yaml"
    cfg.write_text("watches:\n  - {id: ok, name: Ok, query: 'acme'}\n"
                   "  - {id: bad, name: Bad, query: 'acme AND (outage'}\n"
                   "  - {id: none, name: None}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_settings(cfg)
    problems = "\n".join(err.value.problems)
    assert "watches.1.query: the query ends too early" in problems
    assert "at character 17" in problems
    assert "watches.2: give the watch terms or a query" in problems


def test_positive_terms_leave_out_negated_ones() -> None:
    tree = parse_query('acme AND ("data breach" OR recall*) NOT (spam OR lang:fr)')
    assert positive_terms(tree) == ["acme", "data breach", "recall"]


def test_x_rule_translation() -> None:
    tree = parse_query('acme AND ("data breach" OR outage) NOT lang:fr -author:acmebot')
    assert to_x_rule(tree) == '((acme ("data breach" OR outage)) -lang:fr -from:acmebot)'
    assert to_x_rule(parse_query("source:reddit")) == ""


# -- matching ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("query", "text", "kw", "expected"), [
    ("acme AND outage", "Acme has an OUTAGE", {}, True),
    ("acme AND outage", "Acme is fine", {}, False),
    ("acme outage", "outage at acme", {}, True),
    ('"acme corp"', "ACME   Corp. responds", {}, True),               # whitespace runs fold
    ('"acme corp"', "corp acme", {}, False),
    ("acme NOT spam", "acme spam offer", {}, False),
    ("acme NOT spam", "acme recall", {}, True),
    ("NOT spam", "anything at all", {}, True),                       # no positive term
    ("lang:es", "hola", {"lang": "es"}, True),
    ("lang:es", "hello", {"lang": "en"}, False),
    ("acme lang:es", "acme es un desastre", {"lang": "es"}, True),
    ("acme -lang:es", "acme es un desastre", {"lang": "es"}, False),
    ("source:reddit acme", "acme", {"source": "reddit"}, True),
    ("source:reddit acme", "acme", {"source": "x"}, False),
    ("author:acme*", "hi", {"author": "@AcmeSupport"}, True),
    ("author:bob", "hi", {"author": "@bobby"}, False),
    ("recall*", "Acme RECALLS its phones", {}, True),
    ("recall*", "a prerecall", {}, False),                          # prefix: left boundary
    ("*corp", "megacorp is down", {}, True),
    ("c?fe", "the café", {}, True),
    ("c?fe", "the coffee", {}, False),
    ("nestlé", "NESTLE boycott", {}, True),
    ("nestle", "Nestlé boycott", {}, True),
    ("#acme", "#Acme fails", {}, True),
    ("#acme", "acme fails", {}, False),
    ("acme", "#acme fails", {}, True),
    ("@acme", "hey @ACME", {}, True),
    ("acme", "hey @acme", {}, False),
    ("$acme", "$ACME down 10%", {}, True),
    ("acme", "$ACME down 10%", {}, False),
    ("at\\&t", "AT&T outage", {}, True),
    ("c++", "I love C++ and Rust", {}, True),
    ("(acme OR globex) AND (outage OR recall)", "Globex recall", {}, True),
    ("(acme OR globex) AND (outage OR recall)", "Globex is great", {}, False),
])
def test_matching(query: str, text: str, kw: dict[str, str], expected: bool) -> None:
    assert matches(query, text, **kw) is expected


def test_terms_query_and_languages_combine() -> None:
    watch = Watch(id="w", name="W", terms=["acme", "acme corp"], query="NOT spam",
                  languages=["es", "pt"])
    matcher = WatchMatcher([watch])
    assert matcher.match(mention("acme falha", lang="pt")) == ["w"]
    assert matcher.match(mention("acme fails", lang="en")) == []
    assert matcher.match(mention("acme spam", lang="es")) == []
    assert watch.all_terms == ["acme", "acme corp"]


def test_many_watches_each_match_only_their_own() -> None:
    watches = [Watch(id=f"w{i}", name=f"W{i}", query=f"brand{i} AND (outage OR recall)")
               for i in range(50)]
    watches.append(Watch(id="neg", name="Neg", query="NOT brand7"))
    matcher = WatchMatcher(watches)
    assert matcher.match(mention("brand7 recall today")) == ["w7"]
    assert matcher.match(mention("brand3 outage, brand12 recall")) == ["w3", "w12", "neg"]
    assert matcher.match(mention("nothing")) == ["neg"]


# -- properties: printing and re-parsing keeps what a query matches -----------------------------

_WORDS = ["acme", "globex", "outage", "recall", "café", "#acme", "@acme", "data", "breach", "ok"]
_word = st.sampled_from(_WORDS)
_leaf: st.SearchStrategy[Node] = st.one_of(
    _word.map(lambda w: Term(w.replace("é", "e"))),
    st.lists(st.sampled_from(["data", "breach", "acme", "outage"]), min_size=2, max_size=3)
    .map(lambda ws: Term(" ".join(ws), phrase=True)),
    st.sampled_from(["acme*", "rec?ll", "*ex"]).map(Term),
    st.sampled_from(["en", "es"]).map(lambda c: Field("lang", Term(c))),
    st.sampled_from(["rss", "reddit"]).map(lambda s: Field("source", Term(s))),
)
_trees: st.SearchStrategy[Node] = st.recursive(
    _leaf,
    lambda kids: st.one_of(
        st.lists(kids, min_size=2, max_size=3).map(lambda k: And(tuple(k))),
        st.lists(kids, min_size=2, max_size=3).map(lambda k: Or(tuple(k))),
        kids.map(Not),
    ),
    max_leaves=8,
)
_texts = st.lists(st.sampled_from([*_WORDS, "ACME", "Café", "recall", "globex's", "megaacme",
                                   "x", "data breach"]), max_size=8).map(" ".join)
_mentions = st.builds(lambda t, lang, src: mention(t, lang=lang, source=src), _texts,
                      st.sampled_from(["en", "es", None]), st.sampled_from(["rss", "reddit"]))


@settings(max_examples=300, deadline=None)
@given(tree=_trees)
def test_printing_then_parsing_gives_the_same_tree(tree: Node) -> None:
    assert parse_query(to_query(tree)) == tree


@settings(max_examples=200, deadline=None)
@given(tree=_trees, items=st.lists(_mentions, min_size=1, max_size=8))
def test_printing_then_parsing_keeps_what_matches(tree: Node, items: list[Mention]) -> None:
    original = Watch(id="a", name="A", query=to_query(tree))
    reparsed = Watch(id="a", name="A", query=to_query(parse_query(to_query(tree))))
    first, second = WatchMatcher([original]), WatchMatcher([reparsed])
    for item in items:
        assert first.match(item) == second.match(item)


def _evaluate(node: Node, m: Mention) -> bool:
    """A slow, obviously right reference: regexes per term, no automaton, no anchoring."""
    import re

    from streams.core.query import fold

    text = fold(m.text)
    if isinstance(node, Term):
        body = "".join(r"\S*?" if c == "*" else r"\S" if c == "?" else re.escape(c)
                       for c in node.text)
        left = r"(?<![\w@#$])" if node.text[0] in "@#$" else r"(?<![\w@$])"
        right = "" if node.text.endswith("*") and not node.phrase else r"(?!\w)"
        return re.search(left + body + right, text) is not None
    if isinstance(node, Field):
        value = {"lang": m.language or "", "source": m.source}.get(node.name, "")
        return fold(value) == node.term.text
    if isinstance(node, Not):
        return not _evaluate(node.child, m)
    results = [_evaluate(c, m) for c in node.children]
    return all(results) if isinstance(node, And) else any(results)


@settings(max_examples=300, deadline=None)
@given(trees=st.lists(_trees, min_size=1, max_size=6), item=_mentions)
def test_the_fast_matcher_agrees_with_a_plain_evaluation(trees: list[Node], item: Mention) -> None:
    watches = [Watch(id=f"w{i}", name="W", query=to_query(t)) for i, t in enumerate(trees)]
    expected = [w.id for w, t in zip(watches, trees, strict=True) if _evaluate(t, item)]
    assert WatchMatcher(watches).match(item) == expected
