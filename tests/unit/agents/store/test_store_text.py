"""What the store indexes: folded words, tags, handles; and a query term cut the same way."""

from __future__ import annotations

from agents.store.text import MAX_DOC_CHARS, MAX_TOKEN, MAX_WORDS, document, query_tokens


def test_words_are_folded_and_split_as_the_matcher_sees_them() -> None:
    doc = document("La BATERÍA de Acme's phone, ¡qué peligro! co-op v2.0 acme_support")
    assert doc.words == ("la", "bateria", "de", "acme", "s", "phone", "que", "peligro", "co",
                         "op", "v2", "0", "acme_support")
    assert doc.tags == ()


def test_a_hashtag_is_its_word_and_a_tag_a_handle_and_a_ticker_are_not_words() -> None:
    doc = document("#Acme rocks @acme $ACME bob@acme.com a#b ##c")
    assert doc.words == ("acme", "rocks", "@acme", "$acme", "bob", "com", "a", "b", "c")
    assert doc.tags == ("#acme",)
    assert doc.text == "acme rocks @acme $acme bob com a b c #acme"


def test_the_tsvector_puts_tags_after_the_words() -> None:
    assert document("#acme rocks").tsvector() == "'acme':1 'rocks':2 '#acme':3"


def test_long_texts_and_words_are_cut_the_same_way_as_queries() -> None:
    word = "x" * (MAX_TOKEN + 50)
    assert document(word).words == ("x" * MAX_TOKEN,)
    assert [t.text for t in query_tokens(word, phrase=False)] == ["x" * MAX_TOKEN]
    assert len(document("a " * (MAX_WORDS + 10)).words) == MAX_WORDS
    # Folding can make one character several ("㌖" is "キロメートル"): a text within the
    # record's 100,000 characters would pass PostgreSQL's 1 MB for a tsvector.
    assert len(document(("\u3316" * 17 + " ") * 5000).text) <= MAX_DOC_CHARS


def test_query_tokens_keep_wildcards_and_sigils() -> None:
    tokens = query_tokens("#ac?e", phrase=False)
    assert [(t.text, t.tag, t.word, t.wild, t.prefix) for t in tokens] == [
        ("#ac?e", True, "ac?e", True, None)]
    assert query_tokens("acme*", phrase=False)[0].prefix == "acme"
    assert query_tokens("*cme", phrase=False)[0].prefix is None
    assert [t.text for t in query_tokens("data-breach*", phrase=False)] == ["data", "breach*"]
    # In a phrase, wildcards are characters (as for the matcher), and not word characters.
    assert [t.text for t in query_tokens("acme corp*", phrase=True)] == ["acme", "corp"]
    assert query_tokens("!!!", phrase=False) == []
