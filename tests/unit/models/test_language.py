"""Language detection with py3langid: six languages, noise stripped, short text unknown."""

from __future__ import annotations

import pytest

from models.language import LanguageDetector

_detector = LanguageDetector()


@pytest.mark.parametrize(("text", "code"), [
    ("The new phone keeps overheating and support never answers", "en"),
    ("El nuevo teléfono se calienta y el soporte nunca contesta", "es"),
    ("Le nouveau téléphone chauffe et le support ne répond jamais", "fr"),
    ("Das neue Handy wird heiß und der Support antwortet nie", "de"),
    ("O novo telefone esquenta e o suporte nunca responde", "pt"),
    ("Il nuovo telefono si surriscalda e l'assistenza non risponde mai", "it"),
])
def test_detects_common_languages(text: str, code: str) -> None:
    assert _detector.detect(f"@acme {text} https://t.co/x1 #fail 2024") == code


@pytest.mark.parametrize("text", ["", "lol", "@acme https://t.co/abc 123 #x", "😡😡😡"])
def test_too_little_text_is_unknown(text: str) -> None:
    assert _detector.detect(text) is None


def test_candidates_can_be_narrowed_and_unknown_codes_refused() -> None:
    narrowed = LanguageDetector(languages=["en", "es"])
    assert narrowed.detect("Le service client ne répond jamais, quelle honte") in {"en", "es"}
    with pytest.raises(ValueError, match="xx"):
        LanguageDetector(languages=["xx"])
