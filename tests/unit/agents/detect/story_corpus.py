"""A labelled near-duplicate set for the story index, drawn from a seed.

Each *story* is one base tweet and its copies: retweets, quote-copies, texts with handles,
links or emoji added, in another case, with a word changed, or truncated. The hard negatives
are the other bases: complaints about the same brand and products built from the same
phrases, with another subject or complaint and two or more of their four parts different.
Validation seeds choose the index's parameters; the test seed only checks them.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass

__all__ = ["VALIDATION_SEEDS", "TEST_SEED", "Labelled", "Scores", "labelled_set", "score",
           "storm_texts", "varied_negatives", "vary"]

VALIDATION_SEEDS = (101, 102, 103)
TEST_SEED = 7

_SUBJECTS = ("my Acme charger", "the Acme app", "Acme support", "the new AcmePhone",
             "my Acme earbuds", "the Acme router", "my Acme delivery", "the Acme watch",
             "the AcmePhone battery", "my Acme laptop")
_COMPLAINTS = ("exploded while charging", "stopped working after the update",
               "keeps crashing every time I open it", "overheated on my desk",
               "charged me twice for one order", "has been down for hours",
               "never showed up", "lost all my photos", "drains the battery in an hour",
               "won't turn on anymore", "is the worst I have ever used",
               "caught fire in the kitchen", "refused my refund again",
               "sent me the wrong item", "froze during a call",
               "made a horrible buzzing noise", "melted the cable", "deleted my account",
               "ignored three emails", "broke after two days", "cracked in my pocket",
               "logged me out for good", "shipped an empty box", "leaked all over the table",
               "rebooted in the middle of work", "cancelled my order without asking",
               "hid a subscription fee", "failed the day the warranty ended",
               "gave me a rash on my ear", "lost my package for a week")
_WHEN = ("last night", "this morning", "yesterday", "today", "again", "twice now",
         "on Sunday", "right after I bought it", "during my trip", "for the second time")
_TAILS = ("and nobody answers", "seriously disappointed", "this is dangerous",
          "never buying again", "what a joke", "I want my money back", "avoid at all costs",
          "is anyone else seeing this?", "third time this month", "unbelievable",
          "do better", "so done with this")
_SWAPS = ("really", "totally", "honestly", "literally", "just", "completely", "still")
_EMOJI = ("\U0001F525", "\U0001F621", "\U0001F4A5", "\U0001F92C", "\U0001F62D", "\u26a0\ufe0f")


@dataclass(frozen=True)
class Labelled:
    text: str
    story: int  # the label: texts of one story share it


def _base(rng: random.Random, taken: list[tuple[int, ...]]) -> tuple[str, tuple[int, ...]]:
    while True:
        parts = (rng.randrange(len(_SUBJECTS)), rng.randrange(len(_COMPLAINTS)),
                 rng.randrange(len(_WHEN)), rng.randrange(len(_TAILS)))
        # Another story makes another claim (a subject and complaint) and differs in two
        # parts or more: the same claim in other words around it is the same story retold.
        if all(parts[:2] != other[:2] and sum(a != b for a, b in zip(parts, other, strict=True))
               >= 2 for other in taken):
            break
    s, c, w, t = parts
    return f"{_SUBJECTS[s]} {_COMPLAINTS[c]} {_WHEN[w]}, {_TAILS[t]}", parts


def _handle(rng: random.Random) -> str:
    return f"@{rng.choice(('sam', 'lucia', 'kenji', 'ada', 'omar'))}_{rng.randrange(10_000)}"


def _change_word(rng: random.Random, text: str) -> str:
    words = text.split()
    i = rng.randrange(1, len(words))
    words.insert(i, rng.choice(_SWAPS)) if rng.random() < 0.5 else words.__setitem__(
        i, rng.choice(_SWAPS))
    return " ".join(words)


def _truncate(rng: random.Random, text: str) -> str:
    cut = text[: int(len(text) * rng.uniform(0.7, 0.9))].rsplit(" ", 1)[0]
    return cut + "\u2026"


_OPS: tuple[Callable[[random.Random, str], str], ...] = (
    lambda rng, t: f"{_handle(rng)} {t}",                                    # reply handle
    lambda rng, t: f"{t} {_handle(rng)} {_handle(rng)}",                     # tagging people
    lambda rng, t: f"{t} https://t.co/{rng.randrange(16**8):08x}",           # a link
    lambda rng, t: f"{t} {''.join(rng.choices(_EMOJI, k=rng.randrange(1, 4)))}",
    lambda rng, t: rng.choice((t.upper(), t.lower(), t.title())),            # case
    lambda rng, t: f"RT {_handle(rng)}: {t}",                                # retweet
    _change_word,
    _truncate,
)


def vary(rng: random.Random, text: str) -> str:
    """A copy of ``text`` with one to three small changes."""
    for op in rng.sample(_OPS, rng.randrange(1, 4)):
        text = op(rng, text)
    return text


def labelled_set(seed: int, stories: int = 150) -> list[Labelled]:
    """``stories`` bases, about half of them copied 1-10 times, shuffled."""
    rng, out = random.Random(seed), []
    taken: list[tuple[int, ...]] = []
    for label in range(stories):
        base, parts = _base(rng, taken)
        taken.append(parts)
        out.append(Labelled(base, label))
        copies = rng.randrange(1, 11) if rng.random() < 0.5 else 0
        out += [Labelled(vary(rng, base), label) for _ in range(copies)]
    rng.shuffle(out)
    return out


@dataclass(frozen=True)
class Scores:
    recall: float        # copies put in their own story's id
    false_merges: float  # texts put in another story's id


def score(items: list[Labelled], assigned: Iterable[str]) -> Scores:
    """A story id belongs to the label most of its texts carry. Recall: share of the texts
    of multi-text stories that got their label's id; false merges: share of all texts whose
    id belongs to another label."""
    ids = list(assigned)
    owner: dict[object, object] = {}
    for sid, votes in _votes(items, ids).items():
        owner[sid] = votes.most_common(1)[0][0]
    main: dict[object, object] = {}  # label → the id most of its texts got
    for label, votes in _votes(items, ids, by_label=True).items():
        main[label] = votes.most_common(1)[0][0]
    sizes = Counter(i.story for i in items)
    copies = [(i, sid) for i, sid in zip(items, ids, strict=True) if sizes[i.story] > 1]
    recall = sum(sid == main[i.story] and owner[sid] == i.story
                 for i, sid in copies) / len(copies)
    wrong = sum(owner[sid] != i.story for i, sid in zip(items, ids, strict=True))
    return Scores(recall=recall, false_merges=wrong / len(items))


def _votes(items: list[Labelled], ids: list[str], *,
           by_label: bool = False) -> dict[object, Counter[object]]:
    out: dict[object, Counter[object]] = {}
    for item, sid in zip(items, ids, strict=True):
        key, value = (item.story, sid) if by_label else (sid, item.story)
        out.setdefault(key, Counter())[value] += 1
    return out


def storm_texts(seed: int, n: int) -> list[str]:
    """``n`` copies of one angry text (a copy-paste storm), each slightly varied."""
    rng = random.Random(seed)
    text = "Acme charger exploded on my nightstand, it is a fire hazard, recall it now"
    return [vary(rng, text) if rng.random() < 0.8 else text for _ in range(n)]


def varied_negatives(seed: int) -> Callable[[], str]:
    """Distinct complaints for an ordinary spike: every call a new base tweet."""
    rng = random.Random(seed)
    taken: list[tuple[int, ...]] = []

    def draw() -> str:
        if len(taken) >= 150:
            taken.clear()  # the combinations run out: older ones may come round again
        text, parts = _base(rng, taken)
        taken.append(parts)
        return text

    return draw
