"""Tweet-length texts for the end-to-end bench, with a stated share of repeats.

Each text is two sentences the simulator writes about the brand (six languages) and a reply
handle, ~100 characters like a typical tweet, and unique after the model cache's
normalisation: a stream at 0% duplicates really makes the model read every text. Repeats are
exact copies or retweets ("RT @x: …") of earlier texts of the same stream, which is what the
cache in front of the model is for. ``--texts FILE`` uses real tweets instead, one per line.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

from streams.connectors.simulate import SimBrand, simulate

__all__ = ["BRAND", "TextSource"]

#: The brand every bench text names, so every mention matches the bench's main watch.
BRAND = "Acme"


class TextSource:
    """Hands out fresh texts; no text is handed out twice across streams."""

    def __init__(self, *, seed: int = 0, file: Path | None = None) -> None:
        self._rng = random.Random(seed)
        self._n = 0
        if file is not None:
            lines = [" ".join(line.split()) for line in file.read_text("utf-8").splitlines()]
            # The brand as a word: a watch's terms do not match inside a handle ("@Acme"), so
            # tagged that way no real text reached the classifier and the run timed out.
            self._real: list[str] | None = [f"{t} {BRAND}" for t in lines if t]
            if not self._real:
                raise ValueError(f"{file} has no texts (one per line)")
            self._rng.shuffle(self._real)
            self._sentences: list[str] = []
        else:
            self._real = None
            start = datetime(2026, 1, 1, tzinfo=UTC)
            pool = {m.text for m in simulate(brands=[SimBrand(name=BRAND, terms=(BRAND,))],
                                             start=start, duration=timedelta(hours=6),
                                             rate_per_min=30, seed=seed)}
            self._sentences = sorted(pool)

    def fresh(self) -> str:
        self._n += 1
        if self._real is not None:
            if self._n > len(self._real):
                raise ValueError(f"the texts file has {len(self._real)} texts; this run needs "
                                 "more unique ones (fewer --mentions, or a longer file)")
            return self._real[self._n - 1]
        first, second = self._rng.sample(self._sentences, 2)
        return f"{first}. {second} @user{self._n}"

    def unique(self, count: int) -> list[str]:
        return [self.fresh() for _ in range(count)]

    def stream(self, count: int, duplicate_ratio: float) -> list[str]:
        """``count`` texts of which about ``duplicate_ratio`` repeat earlier ones of this
        stream (half verbatim, half as retweets)."""
        if not 0 <= duplicate_ratio < 1:
            raise ValueError(f"duplicate ratio must be in [0, 1), got {duplicate_ratio}")
        out: list[str] = []
        originals: list[str] = []
        for _ in range(count):
            if originals and self._rng.random() < duplicate_ratio:
                text = self._rng.choice(originals)
                out.append(text if self._rng.random() < 0.5
                           else f"RT @fan{self._rng.randrange(10_000)}: {text}")
            else:
                text = self.fresh()
                originals.append(text)
                out.append(text)
        return out

