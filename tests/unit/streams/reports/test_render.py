"""Rendering: untrusted text stays text in HTML, Slack, text and PDF; the email's structure."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy

from pypdf import PdfReader

from streams.reports.data import build_report
from streams.reports.deliver import email_message, pdf_name, render
from streams.reports.render import fmt_duration, html_body, slack_text, text_body
from tests.unit.streams.reports._build import END, REPORT, START, WATCHES, Source, em, incident

HOSTILE = ('acme <script>alert(1)</script> <!channel> @here & '
           '<https://evil.example|click me> "quoted" \x1b[31mred\u202e')
PNG = b"\x89PNG\r\n\x1a\n"


def _data(text: str = HOSTILE):  # type: ignore[no-untyped-def]
    mentions = [em(START + timedelta(hours=h), "negative", priority=99, text=text,
                   followers=1234) for h in range(3)]
    mentions.append(em(START + timedelta(days=1), watch="globex", text="globex"))
    return build_report(REPORT, watches=WATCHES, source=Source(mentions),
                        incidents=[incident(START + timedelta(days=1), ack_min=12,
                                            resolve_min=90)],
                        end=END, now=datetime(2026, 3, 30, 7, tzinfo=UTC))


def test_html_escapes_mentions_and_references_every_chart_by_cid() -> None:
    data = _data()
    html = html_body(data, {"volume-acme": "v@x", "sentiment-acme": "s@x", "sov-acme": "o@x"})
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "<!channel>" not in html and "<https://evil" not in html
    assert "\x1b" not in html and "\u202e" not in html
    for cid in ("v@x", "s@x", "o@x"):
        assert f'src="cid:{cid}"' in html
    assert "Mentions</b></td>" in html.replace("\n", "") or "<b>Mentions</b>" in html
    assert "3 (previous period 0, n/a (nothing before))" in html


def test_slack_text_cannot_ping_or_link() -> None:
    text = slack_text(_data())
    assert "<!channel>" not in text and "&lt;!channel&gt;" in text
    assert "@here" not in text and "@\u2060here" in text
    assert "<https://evil" not in text and "&lt;https://evil.example|click me&gt;" in text
    assert "*Acme*: 3 mentions" in text


def test_text_part_is_one_line_per_fact_without_control_characters() -> None:
    text = text_body(_data())
    assert "\x1b" not in text and "\u202e" not in text
    assert "Mentions: 3 (previous period 0, n/a (nothing before))" in text
    assert "Negative: 3 (100.0%, +100.0 pts)" in text
    assert "Reach: 3,702 (previous 0)" in text
    assert "Share of voice: Acme 75.0% (3), Globex 25.0% (1)" in text
    assert "ack 12 min, resolve 1 h 30 min" in text


def test_email_is_text_plus_related_html_with_png_parts_and_the_pdf() -> None:
    rendered = render(_data())
    msg = email_message(rendered, from_addr="escucha <reports@example.com>",
                        recipients=["board@example.com"], attach_pdf=True)
    again = email_message(rendered, from_addr="escucha <reports@example.com>",
                          recipients=["board@example.com"], attach_pdf=True)
    assert msg["Message-ID"] == again["Message-ID"]  # a re-send is recognisable
    parsed = message_from_bytes(msg.as_bytes(), policy=default_policy)
    assert isinstance(parsed, EmailMessage)
    assert parsed.get_content_type() == "multipart/mixed"
    alternative = parsed.get_payload()[0]
    assert alternative.get_content_type() == "multipart/alternative"
    plain, related = alternative.get_payload()
    assert plain.get_content_type() == "text/plain" and "Mentions: 3" in plain.get_content()
    assert related.get_content_type() == "multipart/related"
    html, *images = related.get_payload()
    assert len(images) == 3
    for image in images:
        assert image.get_content_type() == "image/png"
        assert image.get_content().startswith(PNG)
        assert f'cid:{image["Content-ID"].strip("<>")}' in html.get_content()
    pdf = parsed.get_payload()[1]
    assert pdf.get_content_type() == "application/pdf"
    assert pdf.get_filename() == pdf_name(rendered.data) == "weekly-2026-03-30.pdf"


def test_pdf_holds_the_numbers_and_the_hostile_text_as_text() -> None:
    rendered = render(_data("Ñandú café acme <b>bold</b> & <font size=40>big</font>"))
    assert rendered.pdf.startswith(b"%PDF")
    pages = PdfReader(io.BytesIO(rendered.pdf)).pages
    text = " ".join(" ".join(p.extract_text() for p in pages).split())  # cells break lines
    assert "Mentions 3 (previous period 0, n/a (nothing before))" in text
    assert "3,702" in text and "75.0%" in text
    assert "<b>bold</b>" in text and "<font size=40>big</font>" in text
    assert "Ñandú café" in text


def test_durations() -> None:
    assert [fmt_duration(s) for s in (None, 30, 600, 3600 + 300, 3 * 86400 + 7200)] == \
        ["—", "0 min", "10 min", "1 h 05 min", "3 d 2 h"]
