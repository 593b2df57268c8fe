"""The worker's story book: detection and the store name each mention's story once, alike,
from one index per watch, and detection sees the stories the store seeded at start."""

from __future__ import annotations

from typing import Any

from agents.detect.detectors import DetectionEngine
from agents.detect.stories import StoryIndex
from agents.detect.storybook import StoryBook
from streams.config.settings import DetectSettings
from streams.core.records import EnrichedMention
from tests.support.store import T0, enriched
from tests.unit.agents.detect.story_corpus import labelled_set

STORM = "Acme charger exploded in my kid's room, never buying Acme again"


def _mentions(n: int = 400) -> list[EnrichedMention]:
    items = labelled_set(101)[:n]  # copies and distinct posts, as the index is tuned on
    return [enriched(i, item.text, minutes=i / 10) for i, item in enumerate(items)]


def _detect(book: StoryBook, em: EnrichedMention) -> str:
    return book.story(em.watch_id, text=em.mention.text, key=em.mention.key,
                      at=em.mention.created_at.timestamp())


def test_both_stages_get_one_answer_computed_once_and_the_stories_of_a_lone_index() -> None:
    book, mentions = StoryBook(), _mentions()
    seen_by_detection, seen_by_store = [], []
    # Detection runs ahead; the store writes batches of 50 behind it, as in the worker.
    for start in range(0, len(mentions), 50):
        batch = mentions[start:start + 50]
        seen_by_detection += [_detect(book, em) for em in batch]
        seen_by_store += [book.assign(em, ["acme"])[0] for em in batch]
    alone = StoryIndex()
    expected = [alone.assign(em.mention.text, key=em.mention.key,
                             at=em.mention.created_at.timestamp()) for em in mentions]
    assert seen_by_detection == seen_by_store == expected
    assert len(set(expected)) < len(expected)  # the set has copies: stories were joined
    assert (book.computed, book.remembered) == (len(mentions), len(mentions))
    assert book.pending == 0  # each answer was taken by the stage behind


def test_the_store_may_lead_and_each_watch_has_its_own_index() -> None:
    book = StoryBook()
    em = enriched(1, STORM, watches=["acme", "rival"])
    stored = book.assign(em, ["acme", "rival"])
    assert book.computed == 2
    assert _detect(book, em) == stored[0]  # detection's copy of the acme record
    assert book.story("rival", text=STORM, key=em.mention.key, at=0.0) == stored[1]
    assert (book.computed, book.remembered) == (2, 2)


def test_an_answer_pushed_out_of_the_memo_is_computed_again_alike() -> None:
    book, mentions = StoryBook(memo=10), _mentions(200)
    ahead = [_detect(book, em) for em in mentions]  # the store 200 behind, memo holds 10
    assert book.pending == 10
    behind = [book.assign(em, ["acme"])[0] for em in mentions]
    assert behind == ahead  # computed again, on the same index: the same stories
    # A store within the memo's reach reads every answer: 4 behind, 10 kept.
    book, seen = StoryBook(memo=10), []
    for i, em in enumerate(mentions):
        _detect(book, em)
        if i >= 4:
            seen.append(book.assign(mentions[i - 4], ["acme"])[0])
    assert book.computed == 200 and book.remembered == 196 and seen == ahead[:196]


def test_detection_names_the_story_the_store_seeded_after_a_restart() -> None:
    book = StoryBook()
    stored_id = "5707021be1d1f8e2"
    # Read back from the store at start:
    book.seed("acme", [(STORM + " @friend1", stored_id, T0.timestamp())])
    eng = DetectionEngine(DetectSettings(), watch_terms=frozenset({"acme"}), stories=book)
    state: dict[str, Any] = {}
    for i in range(3):
        eng.observe(state, enriched(100 + i, f"RT @x{i}: {STORM} https://t.co/{i}",
                                    sentiment="negative", minutes=1 + i))
    named = {sid for minute in state["sy"].values() for sid in minute}
    assert named == {stored_id}
    # Without the shared book detection opens a story of its own for the same copies.
    alone: dict[str, Any] = {}
    own = DetectionEngine(DetectSettings(), watch_terms=frozenset({"acme"}))
    own.observe(alone, enriched(100, f"RT @x0: {STORM}", sentiment="negative", minutes=1))
    assert stored_id not in {sid for minute in alone["sy"].values() for sid in minute}
