"""sanitize: any mention text becomes something the tokenizer accepts (no model load here)."""

from __future__ import annotations

import pytest

from models.encoder import sanitize


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("", ""),
        ("hola 😀", "hola 😀"),
        ("\ud800abc", "\ufffdabc"),
        ("a\udfff", "a\ufffd"),
        # A valid pair left as two code units (some JSON decoders do this) is re-joined.
        ("\ud83d\ude00", "😀"),
        (None, ""),
        (b"caf\xc3\xa9 \xff", "café \ufffd"),
    ],
)
def test_sanitize(raw: object, expected: str) -> None:
    assert sanitize(raw) == expected


def test_sanitized_text_encodes_as_utf8() -> None:
    sanitize("\ud800\udbff\udc00x").encode("utf-8")


def test_huge_text_is_cut_before_tokenising() -> None:
    assert len(sanitize("x" * 50_000)) <= 4096
    assert sanitize("a" + " " * 60_000 + "b") == "a"  # whitespace runs are not worth keeping
