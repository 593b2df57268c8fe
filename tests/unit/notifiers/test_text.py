"""Untrusted text stays text: escaping for Slack, cleaning for terminals, safe URLs."""

from __future__ import annotations

import pytest

from notifiers.text import clean, console_safe, safe_url, slack_escape, truncate

HOSTILE = "<!channel> <!here|here> <https://evil.example|bank> <@U123> @here @everyone & co"


def test_slack_escape_neutralises_broadcasts_links_and_mentions() -> None:
    out = slack_escape(HOSTILE)
    assert "<" not in out and ">" not in out
    assert "<!" not in out
    assert "|bank>" not in out
    assert "&lt;!channel&gt;" in out
    assert "&lt;https://evil.example|bank&gt;" in out
    assert "&amp; co" in out


@pytest.mark.parametrize("word", ["here", "channel", "everyone", "HERE", "Everyone"])
def test_slack_escape_breaks_at_broadcasts(word: str) -> None:
    out = slack_escape(f"hey @{word}!")
    assert f"@{word}" not in out
    assert word in out  # still readable


def test_slack_escape_keeps_ordinary_handles_and_text() -> None:
    assert slack_escape("thanks @acmesupport, 5 > 3") == "thanks @acmesupport, 5 &gt; 3"
    assert slack_escape("@herefordshire") == "@herefordshire"


def test_ampersand_is_escaped_first_so_entities_stay_literal() -> None:
    assert slack_escape("&lt;!channel&gt;") == "&amp;lt;!channel&amp;gt;"


@pytest.mark.parametrize(
    "raw",
    ["\x1b[31mred\x1b[0m", "\x1b]8;;https://evil.example\x07click\x1b]8;;\x07", "a\x00b",
     "bell\x07", "\x9b31m", "back\x08space", "del\x7f"],
)
def test_control_characters_and_ansi_escapes_are_removed(raw: str) -> None:
    for out in (clean(raw), slack_escape(raw), console_safe(raw)):
        assert not any(ord(c) < 0x20 and c not in "\t\n" for c in out)
        assert not any(0x7F <= ord(c) <= 0x9F for c in out)


def test_bidi_overrides_are_removed() -> None:
    assert clean("abc\u202edcba\u2066x\u2069") == "abcdcbax"


def test_lone_surrogates_become_valid_text() -> None:
    for fn in (clean, slack_escape, console_safe):
        out = fn("ok \ud800 and \udfff end")
        out.encode("utf-8")  # would raise on a surrogate
        assert out.startswith("ok ") and out.endswith(" end")


def test_tabs_and_newlines_survive_clean_but_not_console_safe() -> None:
    assert clean("a\tb\nc") == "a\tb\nc"
    assert console_safe("a\tb\nc\r\nd") == "a b c  d"


@pytest.mark.parametrize("sep", ["\n", "\r", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85",
                                 "\u2028", "\u2029"])
def test_console_safe_is_one_line(sep: str) -> None:
    out = console_safe(f"first{sep}FORGED LOG LINE")
    assert len(out.splitlines()) == 1
    assert "FORGED LOG LINE" in out


def test_truncate() -> None:
    assert truncate("short", 10) == "short"
    assert truncate("exactly10!", 10) == "exactly10!"
    cut = truncate("x" * 50, 10)
    assert cut == "x" * 9 + "…" and len(cut) == 10


def test_clean_bounds_length() -> None:
    assert len(clean("y" * 10_000, limit=100)) == 100
    assert len(console_safe("y" * 10_000)) == 500
    assert len(clean("y" * 10_000)) == 2000


def test_slack_escape_truncates_before_escaping() -> None:
    out = slack_escape("<" * 1000, limit=10)
    assert out == "&lt;" * 9 + "…"


def test_nfc_normalisation() -> None:
    assert clean("Cafe\u0301") == "Café"


@pytest.mark.parametrize(
    "url",
    ["https://news.example/a?b=1&c=2", "http://blog.example/post#frag",
     "https://social.example/@user/123"],
)
def test_safe_url_accepts_plain_http_links(url: str) -> None:
    assert safe_url(url) == url


@pytest.mark.parametrize(
    "url",
    [None, "", "javascript:alert(1)", "JavaScript:alert(1)", " javascript:alert(1)",
     "data:text/html;base64,PHNjcmlwdD4=", "vbscript:x", "file:///etc/passwd",
     "ftp://files.example/x", "https://evil.example|bank", "https://evil.example>x",
     "https://evil.example<x", 'https://evil.example/"x', "https://a.example/ b",
     "https:///nohost", "//evil.example/x", "https://evil.example\n|bank",
     "https://[::1", "mailto:x@example.com"],
)
def test_safe_url_rejects_anything_else(url: str | None) -> None:
    assert safe_url(url) is None
