"""Watch matching: whole words and phrases, case and accents ignored, sigils respected."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from agents.classify.matching import WatchMatcher, fold
from streams.config.settings import Watch
from streams.core.records import Author, Mention


def mention(text: str, language: str | None = "en") -> Mention:
    return Mention(
        source="test", id=str(abs(hash(text))), author=Author(handle="someone"), text=text,
        language=language, created_at=datetime(2024, 5, 1, tzinfo=UTC),
    )


def ids(watches: list[Watch], text: str, language: str | None = "en") -> list[str]:
    return WatchMatcher(watches).match(mention(text, language))


ACME = Watch(id="acme", name="Acme", terms=["acme"])


def test_fold_lowercases_and_strips_accents() -> None:
    assert fold("CAFÉ") == fold("café") == fold("Cafe\u0301") == "cafe"
    assert fold("Straße") == "strasse"
    assert fold("ÑANDÚ") == "nandu"


@pytest.mark.parametrize(
    ("term", "text"),
    [
        ("cafe", "Best CAFÉ in town"),
        ("café", "the cafe is closed"),
        ("CAFÉ", "Cafe\u0301 was great"),  # combining accent in the text
        ("acme", "ACME is down"),
        ("Nestlé", "nestle recall"),
    ],
)
def test_case_and_accent_insensitive(term: str, text: str) -> None:
    watch = Watch(id="w", name="W", terms=[term])
    assert ids([watch], text) == ["w"]


@pytest.mark.parametrize(
    "text",
    ["Acme's outage", "acme.", "(acme)", "acme!", "I love #acme", "acme-phone", "“Acme”",
     "acme"],
)
def test_whole_word_matches(text: str) -> None:
    assert ids([ACME], text) == ["acme"]


@pytest.mark.parametrize(
    "text",
    ["acmeology is a science", "megaacme", "acme_corp", "acme2", "bob@acme.example", "$acme"],
)
def test_part_of_another_word_does_not_match(text: str) -> None:
    assert ids([ACME], text) == []


def test_hashtag_term_keeps_its_sigil() -> None:
    watch = Watch(id="tag", name="Tag", terms=["#acme"])
    assert ids([watch], "Boycott #ACME now") == ["tag"]
    assert ids([watch], "#acme") == ["tag"]
    assert ids([watch], "acme without the tag") == []
    assert ids([watch], "#acmefail") == []
    assert ids([watch], "x#acme") == []


def test_handle_term_keeps_its_sigil() -> None:
    watch = Watch(id="support", name="Support", terms=["@acmesupport"])
    assert ids([watch], "hey @AcmeSupport my order?") == ["support"]
    assert ids([watch], "@acmesupport: still waiting") == ["support"]
    assert ids([watch], "acmesupport is useless") == []
    assert ids([watch], "@acmesupport_es hola") == []
    assert ids([watch], "mail me at bob@acmesupport") == []


@pytest.mark.parametrize(
    ("text", "hit"),
    [
        ("Acme Cloud is down", True),
        ("ACME CLOUD!", True),
        ("acme cloudy skies", False),
        ("acme's cloud", False),
        ("the acme-cloud API", False),
    ],
)
def test_phrases(text: str, hit: bool) -> None:
    watch = Watch(id="cloud", name="Cloud", terms=["acme cloud"])
    assert ids([watch], text) == (["cloud"] if hit else [])


def test_any_term_of_a_watch_matches() -> None:
    watch = Watch(id="acme", name="Acme", terms=["acme", "acmephone", "acme cloud"])
    assert ids([watch], "my acmephone died") == ["acme"]
    assert ids([watch], "nothing relevant") == []


def test_terms_are_literal_not_regex() -> None:
    watch = Watch(id="w", name="W", terms=["a.b", "c++"])
    assert ids([watch], "I use a.b daily") == ["w"]
    assert ids([watch], "axb") == []
    assert ids([watch], "c++ rocks") == ["w"]


def test_several_watches_in_config_order() -> None:
    watches = [
        Watch(id="globex", name="Globex", terms=["globex"]),
        ACME,
        Watch(id="initech", name="Initech", terms=["initech"]),
    ]
    assert ids(watches, "acme beats globex") == ["globex", "acme"]
    assert ids(watches, "nobody") == []


def test_language_filter() -> None:
    spanish = Watch(id="es", name="ES", terms=["acme"], languages=["es"])
    every = Watch(id="all", name="All", terms=["acme"])
    assert ids([spanish, every], "acme no funciona", "es") == ["es", "all"]
    assert ids([spanish, every], "acme is broken", "en") == ["all"]
    # Unknown language: a watch restricted to languages cannot claim it.
    assert ids([spanish, every], "acme", None) == ["all"]


def test_no_watches_matches_nothing() -> None:
    assert WatchMatcher([]).match(mention("acme")) == []
