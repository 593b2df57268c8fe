"""The console's silences page: states, an Expire button with CSRF for responders only, none
for config silences or expired ones, and every request-made field escaped."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from streams.core.silences import Silence, SilenceState
from streams.web.console import render
from tests.unit.streams.web.console.test_render import HOSTILE, RESPONDER, VIEWER

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _silence(id: str, **kw: object) -> Silence:
    base: dict[str, object] = dict(id=id, matchers={"watch": "acme"},
                                   starts_at=T0 - timedelta(hours=1),
                                   ends_at=T0 + timedelta(hours=1), created_by="ana")
    base.update(kw)
    return Silence(**base)  # type: ignore[arg-type]


ROWS: list[tuple[Silence, SilenceState]] = [
    (_silence("s-active", matchers={"watch": "~acme|globex", "severity": "!=info"},
              comment=HOSTILE, created_by=HOSTILE[:40]), "active"),
    (_silence("config-0"), "active"),
    (_silence("s-gone").expire(by="<b>luis</b>", at=T0), "expired"),
]


def _forms(page: str) -> list[str]:
    return re.findall(r'<form method="post" action="(/console/silences/[^"]+)"', page)


def test_a_responder_can_expire_what_the_api_can() -> None:
    page = render.silences_page(ROWS, session=RESPONDER, csrf="tok-1")
    # Only the run-time silence that is still live: config ones live in the file.
    assert _forms(page) == ["/console/silences/s-active/expire"]
    assert 'name="csrf" value="tok-1"' in page
    assert "in escucha.yaml" in page
    assert "expired by &lt;b&gt;luis&lt;/b&gt;" in page
    assert "<code>watch~acme|globex</code>" in page and "<code>severity!=info</code>" in page
    assert 'aria-current=page>Silences' in page


def test_a_viewer_gets_no_button() -> None:
    page = render.silences_page(ROWS, session=VIEWER, csrf="tok-2")
    assert _forms(page) == []


def test_request_text_is_escaped() -> None:
    page = render.silences_page(ROWS, session=RESPONDER, csrf="t")
    assert "<script>" not in page and "<img" not in page and "&lt;script&gt;" in page


def test_no_silences_says_so() -> None:
    assert "No silences." in render.silences_page([], session=RESPONDER, csrf="t")
