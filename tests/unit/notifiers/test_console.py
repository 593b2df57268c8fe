"""ConsoleNotifier: a readable incident, and nothing a stranger wrote can drive the terminal."""

from __future__ import annotations

import io
from datetime import UTC, datetime

from notifiers.base import Notifier
from notifiers.console import ConsoleNotifier
from streams.core.records import Incident, Notification, SampleMention

NOW = datetime(2024, 5, 1, 12, tzinfo=UTC)


def note(*, samples: list[SampleMention] | None = None, summary: str = "24 negative mentions",
         severity: str = "warning") -> Notification:
    incident = Incident(
        id="0123456789abcdef", fingerprint="acme:negative_spike", watch_id="acme",
        detector="negative_spike", severity=severity, opened_at=NOW,  # type: ignore[arg-type]
        updated_at=NOW, summary=summary, samples=samples or [],
    )
    return Notification(id="n1", incident=incident, level=1, channel="console",
                        target="stdout", created_at=NOW)


def sample(text: str, author: str = "angry_customer", priority: int = 80) -> SampleMention:
    return SampleMention(key=f"x:{text[:8]}", url=None, author=author, text=text,
                         priority=priority)


def test_render_names_watch_summary_and_samples() -> None:
    console = ConsoleNotifier(watch_names={"acme": "Acme (brand)"})
    out = console.render(note(samples=[sample("refund now"), sample("never again", "bob")],
                              severity="critical"))
    assert "Acme (brand)" in out
    assert "CRITICAL" in out and "0123456789abcdef" in out and "negative_spike" in out
    assert "24 negative mentions" in out
    assert "@angry_customer: refund now" in out
    assert "@bob: never again" in out
    assert len(out.splitlines()) == 4  # header, summary, one line per sample


def test_unknown_watch_falls_back_to_its_id() -> None:
    assert "acme" in ConsoleNotifier().render(note())


def test_at_most_three_samples() -> None:
    out = ConsoleNotifier().render(note(samples=[sample(f"s{i}") for i in range(5)]))
    assert len(out.splitlines()) == 2 + 3


def test_escape_sequences_and_newlines_in_mention_text_do_not_reach_the_output() -> None:
    hostile = [
        sample("\x1b[2J\x1b[31mYOU ARE HACKED\x1b[0m\nfake line\r\nother\u2028more",
               author="evil\x1b]0;title\x07\nname"),
        sample("\x1b]8;;https://evil.example\x1b\\click\x1b]8;;\x1b\\\x9b1m"),
    ]
    console = ConsoleNotifier(watch_names={"acme": "Acme\x1b[5m\nBrand"})
    out = console.render(note(samples=hostile, summary="bad\x1b[1m\nsummary"))
    assert "\x1b" not in out and "\x07" not in out and "\x9b" not in out and "\r" not in out
    assert len(out.splitlines()) == 4
    assert "YOU ARE HACKED" in out  # the words survive, as words


def test_long_text_is_bounded() -> None:
    out = ConsoleNotifier().render(note(samples=[sample("z" * 10_000, author="a" * 500)]))
    line = out.splitlines()[-1]
    assert len(line) < 300


async def test_send_prints_to_its_stream() -> None:
    stream = io.StringIO()
    console = ConsoleNotifier(stream=stream, watch_names={"acme": "Acme"})
    assert isinstance(console, Notifier)
    receipt = await console.send(note(samples=[sample("hello")]))
    assert receipt.detail == "printed"
    assert stream.getvalue() == console.render(note(samples=[sample("hello")])) + "\n"
    assert await console.find_sent(note()) is None
    await console.close()
