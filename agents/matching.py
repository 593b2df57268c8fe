"""Which watches a mention belongs to: case- and accent-insensitive term matching.

A term matches as a whole word or phrase ("acme" matches "Acme's outage" and "#acme" but not
"acmeology"); "@handle" and "#tag" terms keep their sigil.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from streams.records import Mention
from streams.settings import Watch

__all__ = ["WatchMatcher", "fold"]


def fold(text: str) -> str:
    """Lowercase without accents, so 'Café' and 'cafe' are the same word."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


@dataclass(frozen=True)
class _Compiled:
    watch: Watch
    pattern: re.Pattern[str]
    languages: frozenset[str]


class WatchMatcher:
    def __init__(self, watches: Sequence[Watch]) -> None:
        self._compiled = [
            _Compiled(
                watch=w,
                # "#" may precede a term ("#acme" is about acme); "@" and "$" may not, so
                # "bob@acme.com" is no match: list "@acme" as a term to follow the handle.
                pattern=re.compile(
                    "|".join(rf"(?<![\w@$]){re.escape(fold(t.strip()))}(?!\w)" for t in w.terms)
                ),
                languages=frozenset(w.languages),
            )
            for w in watches
        ]

    def match(self, mention: Mention) -> list[str]:
        """Ids of the watches the mention belongs to, in config order."""
        text = fold(mention.text)
        out = []
        for c in self._compiled:
            if c.languages and (mention.language or "") not in c.languages:
                continue
            if c.pattern.search(text):
                out.append(c.watch.id)
        return out
