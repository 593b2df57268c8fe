"""Which shipped language a browser's Accept-Language asks for (the signed-out console)."""

from __future__ import annotations

import pytest

from streams.i18n import negotiate


@pytest.mark.parametrize(("header", "expected"), [
    ("es-MX,es;q=0.9,en;q=0.8", "es"),
    ("es", "es"),
    ("en-US,es;q=0.5", "en"),  # English preferred: English, though Spanish is shipped
    ("es;q=0.4,en;q=0.6", "en"),  # by quality, not by order
    ("en;q=0.4,es;q=0.6", "es"),
    ("fr-FR,fr;q=0.9,es;q=0.8", "es"),  # the first shipped one
    ("fr,de", "en"),  # none shipped: English
    ("es;q=0", "en"),  # q=0 means "not this one"
    ("*", "en"),
    ("es;q=abc,en", "en"),  # a malformed quality drops its tag only
    ("<script>,es", "es"),  # not a language tag: skipped
    ("", "en"),
    (None, "en"),
])
def test_negotiate(header: str | None, expected: str) -> None:
    assert negotiate(header) == expected
