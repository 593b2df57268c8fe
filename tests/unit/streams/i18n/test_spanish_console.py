"""The console's Mentions, Silences, claims and episode sections in Spanish: escucha's words
translated, dates and numbers in the reader's locale and zone, user text as written and escaped."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from agents.store.claims import Claim
from agents.store.groups import StoryRow
from agents.store.rows import StoredMention, ms
from streams.core.records import Evidence, Incident, Phrase, SeriesPoint
from streams.core.silences import Silence, SilenceState
from streams.i18n import N_, Lang
from streams.web.console import render
from streams.web.console.auth import Session
from streams.web.console.claims import claim_link, claim_section
from streams.web.console.episode import episode_section
from streams.web.console.mentions import (
    incident_mentions_link,
    mentions_section,
    stories_section,
)
from tests.support.store import enriched

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)  # 09:00 in Madrid (CET)
ES = Session(user="lucía", role="responder", sid="s1", expires=9e9, locale="es",
             timezone="Europe/Madrid")
LANG = Lang("es", "Europe/Madrid")
# Attacker-controlled, with words the catalogue translates: neither translated nor unescaped.
HOSTILE = '<script>alert(1)</script> Search "negative" & Release'
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt; Search &quot;negative&quot; &amp; Release"


def _stored(n: int, text: str, **kw: object) -> StoredMention:
    em = enriched(n, text, **kw)  # type: ignore[arg-type]
    return StoredMention(id=n, posted_at=ms(em.mention.created_at), priority=em.priority,
                         reach=em.mention.author.followers, watch_ids=tuple(em.watch_ids),
                         record=em)


def test_mentions_page_in_spanish_keeps_the_mention_text_escaped() -> None:
    mention = _stored(1, HOSTILE, followers=12345)
    html = mentions_section([mention], params={"cursor": "c1"}, watches={"acme": "Acme"},
                            next_cursor="c2", claims={mention.record.mention.key: "x"},
                            lang=LANG)
    for spanish in ('<h1>Menciones</h1>', "Buscar menciones", ">Ordenar por <",
                    ">negativa<", "1 mostradas, hay más en la página siguiente.",
                    "Exportar este resultado:", ">Página siguiente<", ">Primera página<",
                    ">Publicada<", ">Alcance<", "12.345", ">original<"):
        assert spanish in html, spanish
    assert ESCAPED in html and "<script>" not in html
    # Form values stay the API's, whatever the language shows.
    assert '<option value="negative">negativa</option>' in html
    for english in ("Search mentions", "Next page", "Posted", "shown"):
        assert english not in html, english


def test_incident_link_counts_and_times_in_spanish() -> None:
    inc = Incident(id="acme.1", fingerprint="f", watch_id="acme", detector="negative_spike",
                   severity="warning", opened_at=T0, updated_at=T0, summary="s",
                   evidence=[Evidence(detector="negative_spike", severity="warning",
                                      window_start=T0 - timedelta(minutes=10), window_end=T0,
                                      observed=9, expected=2, score=3)])
    html = incident_mentions_link(inc, count=1234, cap=10_000, now=T0, lang=LANG)
    assert ">Las 1.234 menciones de este incidente<" in html
    assert "(2 mar 2026, 08:50 CET a 09:00 CET)" in html


def test_silences_page_in_spanish_with_local_times() -> None:
    rows: list[tuple[Silence, SilenceState]] = [
        (Silence(id="s-1", matchers={"watch": "acme"}, starts_at=T0,
                 ends_at=T0 + timedelta(hours=2), created_by="ana", comment=HOSTILE),
         "active")]
    page = render.silences_page(rows, session=ES, csrf="t")
    for spanish in ("<h1>Silencios</h1>", ">activo<", ">Condiciones<", ">Expirar<",
                    "2 mar 2026, 09:00 CET", "2 mar 2026, 11:00 CET"):
        assert spanish in page, spanish
    assert ESCAPED in page and "<script>" not in page


def test_claims_in_spanish_keep_names_and_reasons_as_typed() -> None:
    held = Claim(kind="mention", subject="x:1", state="not_answering", by="<b>ben</b>",
                 reply_url=None, reason=HOSTILE, claimed_at=T0, updated_at=T0)
    html = claim_section("x:1", held, session=ES, csrf="t")
    assert f"&lt;b&gt;ben&lt;/b&gt; decidió no responder: {ESCAPED}" in html
    assert "2 mar 2026, 09:00 CET" in html and "<b>ben" not in html
    free = claim_section("x:1", None, session=ES, csrf="t")
    for spanish in ("Nadie la está respondiendo", ">Yo la respondo<", "Enlace a la respuesta",
                    ">No se responde<"):
        assert spanish in free, spanish
    assert ">¿Quién responde?<" in claim_link("x:1", None, LANG)


def test_episode_in_spanish_with_local_hours_and_numbers() -> None:
    pts = [SeriesPoint(start=T0 + timedelta(hours=i), observed=10 + 5 * i, expected=8.5)
           for i in range(3)]
    html = episode_section([Evidence(
        detector="negative_surge", severity="warning", window_start=T0,
        window_end=T0 + timedelta(hours=3), observed=120, expected=50, score=2.4,
        scale_min=360, lasting_min=540, series=pts)], LANG)
    for spanish in ("El episodio, hora a hora", "elevadas durante 9 h, evaluadas sobre 6 h",
                    ">Hora<", "<td>2/3/26, 09:00 CET</td>", "<td>8,5</td>", "<td>1,2x</td>"):
        assert spanish in html, spanish


def test_stories_view_in_spanish_keeps_the_first_copy_escaped() -> None:
    row = StoryRow(story="s1", count=1200, authors=1180, first_seen=ms(T0),
                   last_seen=ms(T0 + timedelta(minutes=9)), sample=_stored(1, HOSTILE))
    html = stories_section([row], params={"group": "story"}, watches={}, next_cursor=None,
                           lang=LANG)
    for spanish in ("1 historias mostradas.", ">sus 1.200 menciones<", ">1.180<",
                    ">Historia (primera copia)<", ">Vista por primera vez<",
                    "2 mar 2026, 09:00 CET", "2 mar 2026, 09:09 CET",
                    '<option value="story" selected>historias (copias agrupadas)</option>'):
        assert spanish in html, spanish
    assert ESCAPED in html and "<script>" not in html


def test_incident_page_and_list_say_the_summary_in_spanish_escaped() -> None:
    parts = [Phrase(key="emerging_term", params={"term": HOSTILE, "count": 1234, "minutes": 15}),
             Phrase(key="window", params={"start": "2026-03-02T07:45:00+00:00",
                                          "end": "2026-03-02T08:00:00+00:00"})]
    english = f"new term {HOSTILE}: 1234 mentions in 15 min, never seen before for this watch"
    inc = Incident(id="acme.1", fingerprint="f", watch_id="acme", detector="emerging_term",
                   severity="warning", opened_at=T0, updated_at=T0,
                   summary=english + "; 07:45\u201308:00 UTC", summary_parts=parts)
    page = render.incident_page(inc, watch_name="Acme", oncall=[], authors=[], series=[],
                                session=ES, csrf="t")
    rows = render.incident_rows([inc], {"acme": "Acme"}, ES)
    for html in (page, rows):
        assert f"término nuevo {ESCAPED}: 1234 menciones en 15 min" in html
        assert "08:45\u201309:00 CET" in html
        assert "<script>" not in html and "never seen before" not in html


def test_error_pages_in_spanish_keep_the_refusals_own_words_escaped() -> None:
    page = render.message_page(N_("Not found"), N_("No such incident."), session=ES)
    assert "<h1>No encontrado</h1>" in page and "Ese incidente no existe." in page
    assert "Not found" not in page and "No such incident" not in page
    # Data after the translated words: shown as it is, escaped.
    page = render.message_page(N_("Bad silence"), detail=HOSTILE, session=ES)
    assert "<h1>Silencio no válido</h1>" in page and ESCAPED in page and "<script>" not in page
    # Signed out: the language the browser asked for.
    page = render.message_page(N_("Sign in first"), N_("Your session ended."), locale="es")
    assert "Inicia sesión primero" in page and "Tu sesión ha terminado." in page
    login = render.login_page(csrf="t", error=N_("Wrong username, password or token."),
                              locale="es")
    assert "Usuario, contraseña o token incorrectos." in login and "Wrong" not in login
    # A notice after an action, in the reader's language.
    inc = Incident(id="acme.1", fingerprint="f", watch_id="acme", detector="negative_spike",
                   severity="warning", opened_at=T0, updated_at=T0, summary="s")
    page = render.incident_page(inc, watch_name="Acme", oncall=[], authors=[], series=[],
                                session=ES, csrf="t", notice=N_("Acknowledgement sent."))
    assert "Enviado: atendido." in page


def test_a_refused_search_says_so_in_spanish_and_names_the_field_as_the_api_does() -> None:
    html = mentions_section(None, params={}, watches={"acme": "Acme"}, next_cursor=None,
                            error=N_("The search was refused:"),
                            detail=f"q: unbalanced quote in {HOSTILE}", lang=LANG)
    assert f"La búsqueda no es válida: q: unbalanced quote in {ESCAPED}" in html
    assert "<script>" not in html and "The search was refused" not in html
