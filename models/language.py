"""Language of a mention, detected offline with py3langid (a maintained fork of langid.py).

Sources that state a language (X, Mastodon, Bluesky) are often wrong or silent, and watches
filter by language, so every mention is identified from its text. Tweets are short: a text
with too few letters to tell is left unknown rather than guessed.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable
from typing import Any

__all__ = ["LanguageDetector"]

_NOISE = re.compile(r"(https?://\S+|[@#$]\w+|\d+)", re.UNICODE)
_MIN_LETTERS = 8


class LanguageDetector:
    """``detect(text) -> ISO 639-1 code or None``; ``languages`` narrows the candidates.

    Narrowing to the languages a deployment expects makes short texts far more accurate
    (langid.py's own advice); the default keeps all 97 languages py3langid knows.
    """

    def __init__(self, *, languages: Iterable[str] = ()) -> None:
        from py3langid.langid import MODEL_FILE, LanguageIdentifier

        self._ident: Any = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
        wanted = sorted(set(languages))
        if wanted:
            unknown = [code for code in wanted if code not in self._ident.labels]
            if unknown:
                raise ValueError(f"py3langid does not know the language code(s) {unknown}")
            self._ident.set_languages(wanted)
        self.languages: tuple[str, ...] = tuple(self._ident.labels)
        self._lock = threading.Lock()  # classify is not documented as thread-safe

    def detect(self, text: str, *, min_probability: float = 0.2) -> str | None:
        # 0.2, not 0.5: over 97 languages close neighbours (gl, an, oc) share the mass.
        # Links, handles and numbers are language-neutral and mislead a character model.
        clean = _NOISE.sub(" ", text)
        if sum(ch.isalpha() for ch in clean) < _MIN_LETTERS:
            return None
        with self._lock:
            code, probability = self._ident.classify(clean)
        return str(code) if probability >= min_probability else None
