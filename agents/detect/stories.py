"""Stories: near-duplicate mentions folded together, so a copy-paste storm reads as one voice.

A retweet, a quote-copy, a text that differs only in handles, links, emoji, case or a word
gets the story id of the first mention it copies. Texts are normalised (:func:`normalise`),
cut into character shingles (short posts share too few whole words for word shingles to
separate "a word changed" from "another tweet about the same product"), and MinHash-ed; LSH
bands find candidate stories, and a candidate is joined only if the estimated Jaccard
similarity reaches ``threshold``. The defaults (4-character shingles, 128 permutations in 32
bands of 4, threshold 0.6) were chosen on the validation seeds of the labelled set in
``tests/unit/agents/detect/story_corpus.py``, never on its test seed: recall 0.97-0.98 with
0.0-0.3% false merges there, where 64 permutations or a 0.55 threshold merged 1-4% and 0.65
or 5-grams lost recall.

The index (:class:`StoryIndex`) lives in the worker's memory, one per watch: signatures of a
day of stories are too large for the per-watch state the detect table saves every second.
What the explanations need survives in that state, per minute (:func:`tally`): each story's
count, negatives, authors and a text sample. The worker's detection and mention store share
one index per watch (agents/detect/storybook.py), seeded at start from the stored mentions
when the store is on; without it a restarted worker starts an empty index, so a story still
running then continues under a second id (reported as two stories).
"""

from __future__ import annotations

import re
import unicodedata
import zlib
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from streams.core.records import Phrase, StorySummary, stable_id
from streams.i18n.summaries import render_summary

__all__ = [
    "CAMPAIGN_MIN",
    "CAMPAIGN_SHARE",
    "MAX_STORIES_PER_MIN",
    "OTHER",
    "StoryEvidence",
    "StoryIndex",
    "SAME_STORY",
    "normalise",
    "same_story",
    "shingles",
    "summarise",
    "tally",
]

#: A story is a campaign when it holds at least this share of the window's negative mentions
#: (and at least CAMPAIGN_MIN of them). On the validation spikes (seeds 101-103 in
#: tests/unit/agents/detect/test_stories.py) the largest story of an ordinary spike held at
#: most 3% of the negatives when the negative spike fired, a 100-300-account storm inside it
#: 36-45%: 0.2 sits between them with room either side. The spike fires within a minute or
#: two, when a storm has only a dozen or two copies in: hence a minimum of 10, not more.
CAMPAIGN_SHARE = 0.2
CAMPAIGN_MIN = 10
#: Story rows a minute of the detection state keeps (``tally``); the rest share ``OTHER``.
MAX_STORIES_PER_MIN = 30
OTHER = "~"
#: The Jaccard similarity (of 4-character shingles) at which a text joins a story: the
#: index's threshold and :func:`same_story`'s (module docstring: how it was chosen).
SAME_STORY = 0.6
_SHINGLE = 4
#: Per story and minute, the authors kept in the state: enough for any real storm's minute,
#: bounded against one that is not.
_MAX_STORY_AUTHORS = 500
_SAMPLE_CHARS = 200
_PRIME = (1 << 31) - 1  # (a * x + b) stays below 2**62: no overflow in uint64

_URL = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
_RT = re.compile(r"^\s*(?:rt\b\s*)?(?:@\w+\s*:?\s*)*", re.IGNORECASE)
_HANDLE = re.compile(r"@\w+")
_NOT_WORD = re.compile(r"[^\w\s]+|_+")
_SPACE = re.compile(r"\s+")


def normalise(text: str) -> str:
    """Lower case, no RT prefix, @handles, links, emoji or punctuation, single spaces."""
    text = unicodedata.normalize("NFKC", text).casefold()
    text = _URL.sub(" ", text)
    text = _RT.sub(" ", text, count=1)  # "RT @who: ..." and leading reply handles
    text = _HANDLE.sub(" ", text)
    text = _NOT_WORD.sub(" ", text)  # emoji and symbols are not \w
    return _SPACE.sub(" ", text).strip()


def shingles(text: str, size: int = 4) -> set[int]:
    """The character ``size``-grams of a normalised text, as 32-bit hashes."""
    if len(text) <= size:
        return {zlib.crc32(text.encode())} if text else set()
    return {zlib.crc32(text[i:i + size].encode()) for i in range(len(text) - size + 1)}


def same_story(a: StorySummary, b: StorySummary) -> bool:
    """Whether two stories, perhaps of two watches, are one: the same id, or sample texts
    as near as a copy must be to join a story. Ids alone are not enough: a story's id is
    that of its first mention *in its watch*, and two watches see a storm start with
    different copies. Exact Jaccard here, where the index estimates it with MinHash: two
    texts, no index to keep."""
    if a.id == b.id:
        return True
    x, y = shingles(normalise(a.text), _SHINGLE), shingles(normalise(b.text), _SHINGLE)
    return bool(x and y) and len(x & y) >= SAME_STORY * len(x | y)


#: Forms of one story remembered: copies of copies drift (a truncated retweet of a text with
#: a word changed), and comparing with several forms keeps them in (validation recall +2-3%).
_FORMS = 4
_SAME_FORM = 0.9  # a copy this close to a kept form adds nothing new


@dataclass
class _Story:
    id: str
    forms: npt.NDArray[np.uint64]  # one signature a row
    bands: list[bytes]
    last: float


class StoryIndex:
    """MinHash + LSH over one watch's recent mentions; bounded by age and by count (LRU)."""

    def __init__(self, *, threshold: float = SAME_STORY, perms: int = 128, bands: int = 32,
                 shingle: int = _SHINGLE, window_s: float = 24 * 3600.0, max_stories: int = 5000,
                 seed: int = 24) -> None:
        if perms % bands:
            raise ValueError(f"perms ({perms}) must be a multiple of bands ({bands})")
        self.threshold, self.window_s, self.max_stories = threshold, window_s, max_stories
        self._rows, self._shingle = perms // bands, shingle
        rng = np.random.default_rng(seed)  # fixed: the same text hashes alike in every worker
        self._a = rng.integers(1, _PRIME, perms, dtype=np.uint64)
        self._b = rng.integers(0, _PRIME, perms, dtype=np.uint64)
        self._stories: OrderedDict[str, _Story] = OrderedDict()  # least recently seen first
        self._buckets: dict[bytes, set[str]] = {}
        self._now = float("-inf")

    def __len__(self) -> int:
        return len(self._stories)

    def signature(self, text: str) -> npt.NDArray[np.uint64] | None:
        grams = shingles(normalise(text), self._shingle)
        if not grams:
            return None
        x = np.fromiter(grams, dtype=np.uint64, count=len(grams)) % np.uint64(_PRIME)
        hashed = (self._a[:, None] * x[None, :] + self._b[:, None]) % np.uint64(_PRIME)
        sig: npt.NDArray[np.uint64] = hashed.min(axis=1)
        return sig

    def assign(self, text: str, *, key: str, at: float) -> str:
        """The story id of a mention (``key`` its ``source:id``) posted at ``at`` seconds."""
        self._now = max(self._now, at)
        self._evict()
        sig = self.signature(text)
        if sig is None:
            return stable_id("story", key)  # nothing left to compare (a bare link): alone
        r = self._rows
        bands = [bytes([i]) + sig[i * r:(i + 1) * r].tobytes()
                 for i in range(len(sig) // r)]
        best, best_sim = None, 0.0
        # Sorted, and the first of equals wins: the same input always picks the same story.
        candidates = [self._stories[s] for s in
                      sorted({s for band in bands for s in self._buckets.get(band, ())})]
        if candidates:
            # All candidates' forms in one comparison: a storm's copies meet dozens of
            # candidates each, and one numpy call per form was most of the time spent here.
            forms = np.concatenate([c.forms for c in candidates])
            sims = (forms == sig).mean(axis=1)
            starts = np.cumsum([0] + [len(c.forms) for c in candidates[:-1]])
            per_story = np.maximum.reduceat(sims, starts)
            i = int(np.argmax(per_story))
            if per_story[i] >= self.threshold:
                best, best_sim = candidates[i], float(per_story[i])
        if best is None:
            best = _Story(id=stable_id("story", key), forms=sig[None, :0].reshape(0, len(sig)),
                          bands=[], last=self._now)
            self._stories[best.id] = best
        elif best_sim >= _SAME_FORM or len(best.forms) >= _FORMS:
            best.last = self._now
            self._stories.move_to_end(best.id)
            return best.id
        best.forms = np.vstack([best.forms, sig[None, :]])
        best.bands += bands
        for band in bands:
            self._buckets.setdefault(band, set()).add(best.id)
        best.last = self._now
        self._stories.move_to_end(best.id)
        self._evict()
        return best.id

    def seed(self, text: str, *, story: str, at: float) -> None:
        """Remember a mention already given ``story`` (read back from the mention store after
        a restart), so later copies of it join ``story`` rather than open a new one. Feed the
        mentions oldest first, as :meth:`assign` would have seen them: the stored id is kept
        whatever the index would now choose, since ids, once stored, never change."""
        self._now = max(self._now, at)
        sig = self.signature(text)
        if sig is None:
            return  # assign() leaves such a text alone too: nothing to remember
        known = self._stories.get(story)
        if known is None:
            known = self._stories[story] = _Story(
                id=story, forms=sig[None, :0].reshape(0, len(sig)), bands=[], last=at)
        # The same bound on forms as assign(): a seeded story is no larger in memory.
        near = bool(len(known.forms)) and \
            float((known.forms == sig).mean(axis=1).max()) >= _SAME_FORM
        if not near and len(known.forms) < _FORMS:
            r = self._rows
            bands = [bytes([i]) + sig[i * r:(i + 1) * r].tobytes()
                     for i in range(len(sig) // r)]
            known.forms = np.vstack([known.forms, sig[None, :]])
            known.bands += bands
            for band in bands:
                self._buckets.setdefault(band, set()).add(story)
        known.last = max(known.last, at)
        self._stories.move_to_end(story)
        self._evict()

    def _evict(self) -> None:
        while self._stories:
            sid, oldest = next(iter(self._stories.items()))
            if len(self._stories) <= self.max_stories and oldest.last >= self._now - self.window_s:
                return
            del self._stories[sid]
            for band in oldest.bands:
                members = self._buckets.get(band)
                if members is not None:
                    members.discard(sid)
                    if not members:
                        del self._buckets[band]


def tally(st: dict[str, Any], minute: str, story: str, *, text: str, author: str,
          negative: bool, seconds: float, repeated: bool = True) -> None:
    """Count a mention of ``story`` in the state's ``minute`` (kept with the other details).

    ``repeated``: the mention copies an earlier one (the index joined it to a story). A
    minute keeps rows for at most ``MAX_STORIES_PER_MIN`` stories: past that, a story's first
    post is only counted in the minute's ``OTHER`` row (no authors, no sample), and a copy
    takes the row of a single post, which moves to ``OTHER``. Without the bound a busy watch
    (thousands of distinct posts in the half hour of detail) grew its saved state past the
    broker's 1 MB record limit, and the producer crashed the worker (measured in `escucha
    bench e2e`); copies keep their rows, so a storm still shows in a busy minute."""
    rows = st.setdefault("sy", {}).setdefault(minute, {})
    row = rows.get(story)
    if row is None and len(rows) - (OTHER in rows) >= MAX_STORIES_PER_MIN:
        single = next((sid for sid, r in rows.items() if sid != OTHER and r[0] == 1), None)
        if repeated and single is not None:
            _count_other(rows, rows.pop(single))
        elif not repeated:
            story, row = OTHER, rows.get(OTHER)
            if row is None:
                row = rows[OTHER] = [0, 0, [], seconds, seconds]
    if row is None:
        row = rows[story] = [0, 0, [], seconds, seconds]
        st.setdefault("sx", {}).setdefault(story, text[:_SAMPLE_CHARS])
    row[0] += 1
    row[1] += negative
    if story != OTHER and author not in row[2] and len(row[2]) < _MAX_STORY_AUTHORS:
        row[2].append(author)
    row[3], row[4] = min(row[3], seconds), max(row[4], seconds)


def _count_other(rows: dict[str, Any], row: list[Any]) -> None:
    other = rows.setdefault(OTHER, [0, 0, [], row[3], row[4]])
    other[0] += row[0]
    other[1] += row[1]
    other[3], other[4] = min(other[3], row[3]), max(other[4], row[4])


def prune(st: dict[str, Any], oldest: int) -> None:
    """Drop minutes before ``oldest`` and the samples of stories no kept minute mentions."""
    minutes = st.get("sy", {})
    for k in [k for k in minutes if int(k) < oldest]:
        del minutes[k]
    live = {sid for row in minutes.values() for sid in row}
    samples = st.get("sx", {})
    for sid in [sid for sid in samples if sid not in live]:
        del samples[sid]


@dataclass(frozen=True)
class StoryEvidence:
    """The stories of one window: how many, the largest, and whether it is a campaign."""

    stories: int
    largest: StorySummary | None
    campaign: bool
    mentions: int = 0

    def line(self) -> str:
        """The summary's words for it ("41 stories; the largest ... x120 by 118 accounts")."""
        return render_summary(self.parts()) if self.largest is not None else ""

    def parts(self) -> list[Phrase]:
        """:meth:`line` as data, for each channel's language (streams/i18n/summaries.py)."""
        if self.largest is None:
            return []
        big = self.largest
        text = _short(big.text)
        out = [Phrase(key="stories", params={"stories": self.stories, "text": text,
                                             "count": big.count, "authors": big.authors,
                                             "minutes": big.span_min})]
        return out + ([Phrase(key="campaign")] if self.campaign else [])


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= 80 else text[:79] + "\u2026"


def summarise(st: dict[str, Any], minutes: Iterable[int], *,
              negative_only: bool) -> StoryEvidence:
    """Fold the given minutes' tallies: stories of all mentions, or of the negative ones."""
    merged: dict[str, list[Any]] = {}
    negatives = others = 0
    for minute in minutes:
        for sid, (count, neg, authors, first, last) in st.get("sy", {}).get(
                str(minute), {}).items():
            n = neg if negative_only else count
            negatives += neg
            if sid == OTHER:
                others += n  # each counted as a story of its own: most are single posts
                continue
            if n <= 0:
                continue
            row = merged.setdefault(sid, [0, 0, set(), first, last])
            row[0] += n
            row[1] += neg
            row[2].update(authors)
            row[3], row[4] = min(row[3], first), max(row[4], last)
    if not merged:
        return StoryEvidence(stories=others, largest=None, campaign=False, mentions=others)
    # Ties go to the story first seen: the same input always names the same story.
    sid, (count, neg, authors, first, last) = min(
        merged.items(), key=lambda kv: (-kv[1][0], kv[1][3], kv[0]))
    largest = StorySummary(id=sid, text=st.get("sx", {}).get(sid, ""), count=count,
                           authors=len(authors), span_min=max(1, round((last - first) / 60)))
    campaign = neg >= CAMPAIGN_MIN and neg >= CAMPAIGN_SHARE * negatives
    return StoryEvidence(stories=len(merged) + others, largest=largest, campaign=campaign,
                         mentions=sum(r[0] for r in merged.values()) + others)
