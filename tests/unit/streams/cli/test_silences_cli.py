"""`escucha silences add`'s matcher arguments: amtool's spelling to the silences' syntax."""

from __future__ import annotations

from datetime import UTC, datetime

import click
import pytest

from streams.cli.silences import parse_matcher
from streams.core.silences import Silence


@pytest.mark.parametrize(("text", "expected", "matches", "refuses"), [
    ("watch=acme", ("watch", "acme"), "acme", "acme-es"),
    ("severity!=info", ("severity", "!=info"), "warning", "info"),
    ("watch=~rival-.*", ("watch", "~rival-.*"), "rival-b", "the-rival-b"),
    ("watch!~rival-.*", ("watch", "!~rival-.*"), "acme", "rival-b"),
    # "=" is equality even for a value that reads like an operator or the wildcard.
    ("watch=*", ("watch", "=*"), "*", "acme"),
    ("watch=~", ("watch", "~"), "", "acme"),
    ("detector==x", ("detector", "==x"), "=x", "x"),
    ("detector=!x", ("detector", "=!x"), "!x", "x"),
])
def test_parse_matcher(text: str, expected: tuple[str, str], matches: str,
                       refuses: str) -> None:
    assert parse_matcher(text) == expected
    label, value = expected
    silence = Silence.from_dict({"id": "s", "matchers": {label: value}, "created_by": "t",
                                 "starts_at": "2026-01-01T00:00:00+00:00",
                                 "ends_at": "2026-01-02T00:00:00+00:00"})
    at = datetime(2026, 1, 1, 1, tzinfo=UTC)
    assert silence.matches({label: matches}, at) and not silence.matches({label: refuses}, at)


@pytest.mark.parametrize("text", ["acme", "watch", "=acme", "Watch=acme", "watch:acme", ""])
def test_a_malformed_matcher_is_refused_with_the_syntax(text: str) -> None:
    with pytest.raises(click.BadParameter, match="LABEL=VALUE"):
        parse_matcher(text)
