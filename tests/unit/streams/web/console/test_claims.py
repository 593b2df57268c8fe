"""The console's claim badge and forms (streams/web/console/claims.py), and the claim shown
on an incident page's sample mentions: escaped, http(s) links only, forms by role and holder."""

from __future__ import annotations

from datetime import UTC, datetime

from agents.store.claims import Claim, ClaimState
from streams.core.records import Incident, SampleMention
from streams.web.console import render
from streams.web.console.auth import Session
from streams.web.console.claims import claim_link, claim_section

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
ANA = Session(user="ana", role="responder", sid="s1", expires=9e9)
BEN = Session(user="ben", role="responder", sid="s2", expires=9e9)
VIC = Session(user="vic", role="viewer", sid="s3", expires=9e9)
HOSTILE = '<script>alert(1)</script>"&'


def claim(state: ClaimState = "claimed", *, by: str = "ana",
          url: str | None = None) -> Claim:
    return Claim(kind="mention", subject="x:1", state=state, by=by, reply_url=url,
                 reason=None, claimed_at=T0, updated_at=T0)


def actions(html: str) -> set[str]:
    return {a for a in ("claim", "answer", "not-answering", "release")
            if f'action="/console/claims/x%3A1/{a}"' in html}


def test_forms_follow_who_holds_it_and_the_role() -> None:
    assert actions(claim_section("x:1", None, session=ANA, csrf="t")) == {
        "claim", "answer", "not-answering"}
    assert actions(claim_section("x:1", claim(), session=ANA, csrf="t")) == {
        "answer", "not-answering", "release"}
    theirs = claim_section("x:1", claim(), session=BEN, csrf="t")
    assert actions(theirs) == set() and "ana is answering this" in theirs
    assert actions(claim_section("x:1", None, session=VIC, csrf="t")) == set()
    assert actions(claim_section("x:1", claim("released"), session=BEN, csrf="t")) == {
        "claim", "answer", "not-answering"}
    assert 'name="csrf" value="t"' in claim_section("x:1", None, session=ANA, csrf="t")


def test_names_are_escaped_and_only_http_replies_are_links() -> None:
    page = claim_section("x:1", claim("answered", by=HOSTILE, url="javascript:alert(2)"),
                         session=BEN, csrf="t")
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "javascript:" not in page and "the reply" not in page
    page = claim_section("x:1", claim("answered", url="https://x.com/acme/9"), session=BEN,
                         csrf="t")
    assert 'href="https://x.com/acme/9"' in page and "ana answered this" in page
    hostile_key = claim_section('x:"><b>', None, session=ANA, csrf="t")
    assert '"><b>' not in hostile_key and "x%3A%22%3E%3Cb%3E" in hostile_key


def test_an_incident_page_links_each_sample_to_its_claim() -> None:
    inc = Incident(
        id="acme.0123456789abcdef", fingerprint="acme", watch_id="acme",
        detector="negative_spike", severity="critical", opened_at=T0, updated_at=T0,
        summary="s", samples=[
            SampleMention(key="bluesky:at://did/x", url=None, author="a", text="t",
                          priority=1, claim=f"{HOSTILE} is answering this"),
            SampleMention(key="x:2", url=None, author="b", text="u", priority=1)])
    page = render.incident_page(inc, watch_name="Acme", oncall=[], series=[], authors=[],
                                session=ANA, csrf="t")
    assert 'href="/console/claims/bluesky%3Aat%3A%2F%2Fdid%2Fx"' in page
    assert "&lt;script&gt;" in page and "<script>" not in page
    assert 'href="/console/claims/x%3A2">Who answers this?</a>' in page


def test_a_claim_link_for_a_list_of_mentions() -> None:
    assert claim_link("x:1", None) == (
        '<a class="claim free" href="/console/claims/x%3A1">Who answers this?</a>')
    held = claim_link("x:1", claim(by=HOSTILE))
    assert "<script>" not in held and "&lt;script&gt; " not in held
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&quot;&amp; is answering this" in held
    assert "Who answers this?" in claim_link("x:1", claim("released"))
