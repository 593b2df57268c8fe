"""Console HTML: hostile mention text stays text, links are http(s) only, viewers get no buttons."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from streams.core.records import Evidence, Incident, SampleMention, TimelineEntry
from streams.web.console import render
from streams.web.console.auth import Session

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
HOSTILE = '<script>alert(1)</script><img src=x onerror=alert(2)> "quoted" & <!channel>'
RESPONDER = Session(user="ana", role="responder", sid="s1", expires=9e9)
VIEWER = Session(user="vic", role="viewer", sid="s2", expires=9e9)


def _incident(**kw: object) -> Incident:
    base: dict[str, object] = dict(
        id="acme.0123456789abcdef", fingerprint="acme", watch_id="acme",
        detector="negative_spike", severity="critical", opened_at=T0, updated_at=T0,
        summary=HOSTILE,
        samples=[SampleMention(key="x:1", url="javascript:alert(3)", author="<b>evil</b>",
                               text=HOSTILE, priority=90, sentiment="negative"),
                 SampleMention(key="x:2", url="https://example.com/p/1", author="ok",
                               text="fine", priority=40, language="en")],
        timeline=[TimelineEntry(at=T0, kind="signal", text=HOSTILE, by="<i>x</i>")],
        evidence=[Evidence(detector="negative_spike", severity="critical",
                           window_start=T0 - timedelta(minutes=5), window_end=T0,
                           observed=40, expected=6.5, score=6.2, top_terms=["<recall>"])])
    base.update(kw)
    return Incident.model_validate(base)


def _page(session: Session, inc: Incident | None = None) -> str:
    return render.incident_page(
        inc or _incident(), watch_name="Acme <Corp>", oncall=[], authors=[("<a>", 3)],
        series=[(T0 - timedelta(minutes=5), 10, 4), (T0, 40, 30)], session=session,
        csrf="tok")


def test_untrusted_text_is_escaped_everywhere() -> None:
    for page in (_page(RESPONDER), render.list_page([_incident()], names={"acme": "Acme"},
                                                    filters=render.Filters(),
                                                    session=RESPONDER, csrf="t")):
        assert "<script>" not in page and "<img" not in page and "<b>evil" not in page
        assert "&lt;script&gt;" in page
    page = _page(RESPONDER)
    assert "&lt;recall&gt;" in page and "Acme &lt;Corp&gt;" in page


def test_only_http_links_become_links() -> None:
    page = _page(RESPONDER)
    assert "javascript:" not in page
    assert 'href="https://example.com/p/1"' in page
    assert render.safe_url("data:text/html,hi") is None
    assert render.safe_url("//evil.example") is None
    assert render.safe_url(" https://a.example/x ") == "https://a.example/x"


def test_responder_gets_buttons_with_csrf_and_viewer_none() -> None:
    page = _page(RESPONDER)
    forms = re.findall(r'<form method="post" action="(/console/incidents/[^"]+)">', page)
    assert [f.rsplit("/", 1)[1] for f in forms] == ["ack", "resolve", "silence"]
    assert page.count('name="csrf" value="tok"') >= 3
    viewer = _page(VIEWER)
    assert "/ack" not in viewer and "read-only" in viewer
    acked = _page(RESPONDER, _incident(state="acknowledged", acked_by="ana", acked_at=T0))
    assert "/ack\"" not in acked and "/resolve" in acked


def test_chart_has_a_text_alternative_and_the_numbers() -> None:
    page = _page(RESPONDER)
    assert '<svg viewBox' in page and "<title id=\"chart-title\">" in page
    assert "<td>40</td><td>6.5</td>" in page  # observed and expected in the table
    assert render.chart_svg([], [], title="x").startswith("<p>")


def _axis(page: str) -> list[str]:
    chart = page[page.index('<svg viewBox'):page.index('</svg>')]
    return re.findall(r'y="190" (?:text-anchor="end" )?class="label">([^<]*)</text>', chart)


def test_chart_axis_reads_in_the_readers_time_zone() -> None:
    # 08:55-09:05 UTC on 2 March is 09:55-10:05 in Madrid (UTC+1 in winter).
    madrid = Session(user="ana", role="responder", sid="s1", expires=9e9, locale="es",
                     timezone="Europe/Madrid")
    assert _axis(_page(madrid)) == ["09:55 CET", "10:05 CET"]
    assert _axis(_page(RESPONDER)) == ["08:55 UTC", "09:05 UTC"]
    assert render.chart_svg(  # no session: the historic UTC clock
        [], [(T0, 3, 1), (T0 + timedelta(minutes=5), 4, 1)], title="x").count(" UTC<") == 1


def test_filters_keep_matching_incidents() -> None:
    inc = _incident()
    assert render.Filters(watch="acme", severity="critical").keep(inc)
    assert not render.Filters(state="resolved").keep(inc)
    assert render.Filters(watch="acme").query() == "watch=acme"
    assert "No incidents match" in render.incident_rows([], {})


def test_a_joined_incident_links_its_target_and_the_target_names_both_watches() -> None:
    joiner = _page(RESPONDER, _incident(id="beta.1", watch_id="beta",
                                        merged_into="acme.0123456789abcdef"))
    assert ('<a href="/console/incidents/acme.0123456789abcdef">acme.0123456789abcdef</a>'
            in joiner)
    target = render.incident_page(
        _incident(watches=["beta"]), watch_name="Acme <Corp>", oncall=[], authors=[],
        series=[], session=RESPONDER, csrf="tok", joined_watches=["Beta <b>"])
    assert '<dd id="incident-watches">Acme &lt;Corp&gt;, Beta &lt;b&gt;</dd>' in target
    assert "Merged into" not in target
