"""A Slack alert, the console and a PDF report rendered in Spanish; mention text as written."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError
from pypdf import PdfReader

from notifiers.slack import SlackNotifier, SlackSettings, build_message, build_thread_reply
from streams.config.console import ConsoleToken, ConsoleUser
from streams.config.reports import ReportSettings
from streams.core.records import Evidence, Incident, Notification, SampleMention
from streams.reports.data import build_report
from streams.reports.deliver import render
from streams.web.console import render as console
from streams.web.console.auth import Authenticator, Session, hash_password
from tests.unit.streams.reports._build import END, START, WATCHES, Source, em, incident

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)  # 09:00 in Madrid (CET)
SAID = "El servicio de Acme es un desastre, ¡nadie responde! Resolve this, acknowledge it"
ES = Session(user="lucía", role="responder", sid="s1", expires=9e9, locale="es",
             timezone="Europe/Madrid")


def _incident(**kw: object) -> Incident:
    base: dict[str, object] = dict(
        id="acme.0123456789abcdef", fingerprint="acme", watch_id="acme",
        detector="negative_spike", severity="critical", opened_at=T0, updated_at=T0,
        summary="24 negative mentions in one minute",
        samples=[SampleMention(key="x:1", url="https://example.com/1", author="pepa",
                               text=SAID, priority=90, sentiment="negative"),
                 # Exactly a catalogue entry: translating mention text would show here.
                 SampleMention(key="x:2", url=None, author="rita", text="Resolve",
                               priority=10)],
        evidence=[Evidence(detector="negative_spike", severity="critical",
                           window_start=T0 - timedelta(minutes=5), window_end=T0,
                           observed=40, expected=6.5, score=6.2, top_terms=["desastre"])])
    base.update(kw)
    return Incident.model_validate(base)


def _note(inc: Incident, kind: str = "trigger", target: str = "#soporte") -> Notification:
    return Notification(id=f"{inc.id}:1:slack:{target}:{kind}", incident=inc, level=2,
                        channel="slack", target=target, created_at=T0, kind=kind)  # type: ignore[arg-type]


def _texts(message: dict[str, object]) -> str:
    return json.dumps(message, ensure_ascii=False)


def test_slack_alert_in_spanish_keeps_the_mention_text() -> None:
    message = build_message(_note(_incident()), watch_name="Acme España", locale="es",
                            timezone="Europe/Madrid")
    text = _texts(message)
    for spanish in ("CRÍTICO: Acme España", "*Abierto*, aún sin atender (nivel 2)",
                    '"Atender"', '"Resolver"', "¿Resolver este incidente?", '"Cancelar"',
                    "*Gravedad*", "*Estado*\\nabierto", "*Nivel*",
                    "*Lo que dice la gente*", "prioridad 90", "|abrir>",
                    "abierto el 2 mar 2026, 09:00 CET"):
        assert spanish in text, spanish
    assert SAID in text  # untouched, though it holds words the catalogue translates
    said = [b["text"]["text"] for b in message["blocks"]  # type: ignore[attr-defined]
            if b.get("text", {}).get("text", "").startswith("*Lo que dice")]
    assert said[0].endswith("*@rita* (prioridad 10): Resolve")
    for english in ("Acknowledge", "Severity", "What people say", "not acknowledged"):
        assert english not in text.replace(SAID, ""), english
    assert message["text"].startswith("CRÍTICO: Acme España")  # type: ignore[union-attr]


def test_slack_state_and_reply_in_spanish_with_local_times() -> None:
    acked = _incident(state="acknowledged", acked_by="lucía", acked_at=T0 + timedelta(minutes=5))
    text = _texts(build_message(_note(acked, "acknowledge"), watch_name="Acme", locale="es",
                                timezone="Europe/Madrid"))
    assert "Atendido por lucía a las 09:05 CET" in text and "*Estado*\\natendido" in text
    reply = _texts(build_thread_reply(_note(acked, "reminder"), locale="es_MX",
                                      timezone="America/Mexico_City"))
    assert "*Recordatorio*: incidente aún atendido, atendido por lucía (nivel 2)" in reply
    assert "abierto a las 02:00 CST" in reply
    escalated = _texts(build_thread_reply(_note(_incident(), "escalate"), locale="es"))
    assert "Escalado al nivel 2" in escalated and "nadie lo atendió a tiempo" in escalated


def test_slack_english_is_the_default_and_targets_can_choose_their_language() -> None:
    assert "Acknowledge" in _texts(build_message(_note(_incident()), watch_name="Acme"))
    slack = SlackNotifier(token="xoxb-test", channel="#alerts", locale="en",
                          timezone="Europe/Madrid", target_locales={"#soporte": "es"})
    assert slack._lang(_note(_incident(), target="#soporte"))["locale"] == "es"
    assert slack._lang(_note(_incident(), target="#ops"))["locale"] == "en"


def test_slack_locale_config_is_checked_all_at_once() -> None:
    with pytest.raises(ValidationError) as err:
        SlackSettings(locale="klingon", timezone="Mars/Olympus",
                      target_locales={"#a": "fr", "#b": "es"})
    text = str(err.value)
    assert "klingon" in text and "Mars/Olympus" in text and "#a" in text and "#b:" not in text
    assert SlackSettings(locale="es-mx").locale == "es_MX"


def test_console_list_and_incident_pages_in_spanish() -> None:
    inc = _incident()
    page = console.list_page([inc], names={"acme": "Acme España"},
                             filters=console.Filters(), session=ES, csrf="t")
    assert '<html lang="es">' in page
    for spanish in ("<h1>Incidentes</h1>", ">Seguimientos<", ">Silencios<", "Cerrar sesión",
                    "responsable", "Ir al contenido", ">Gravedad<", ">Atendido por<",
                    ">crítico<", ">abierto<", "1 mostrados, 1 abiertos",
                    "2 mar 2026, 09:00 CET"):
        assert spanish in page, spanish
    detail = console.incident_page(inc, watch_name="Acme España", oncall=[], authors=[],
                                   series=[(T0, 40, 30)], session=ES, csrf="t")
    for spanish in ("Por qué se disparó", "Lo que dice la gente", "Quién está de guardia",
                    "Cronología", ">Atender</button>", ">Resolver</button>", "Silenciar durante",
                    "30 minutos", "prioridad 90", "Todos los incidentes", "observado 40"):
        assert spanish in detail, spanish
    assert SAID in detail.replace("&#x27;", "'").replace("&quot;", '"')
    live = console.live_status([inc], ES)
    assert live == {"status": "1 mostrados, 1 abiertos. Las novedades aparecen en directo.",
                    "fresh": "{n} nuevos."}


def test_console_language_comes_from_config_not_from_the_cookie() -> None:
    auth = Authenticator(secret=b"k" * 32, users=[ConsoleUser(
        username="lucía", password_hash=hash_password("pw"), locale="es",
        timezone="Europe/Madrid")], tokens=[ConsoleToken(name="wall", token="t" * 16)],
        ttl_s=3600)
    session = auth.read(auth.issue("lucía", "responder"))
    assert session is not None and (session.locale, session.timezone) == ("es",
                                                                           "Europe/Madrid")
    assert auth.bearer("Bearer " + "t" * 16).locale == "en"  # type: ignore[union-attr]
    with pytest.raises(ValidationError):
        ConsoleUser(username="x", password_hash=hash_password("pw"), locale="xx")


def test_pdf_report_in_spanish_keeps_the_mention_text() -> None:
    report = ReportSettings(id="semanal", schedule="0 8 * * 1", timezone="Europe/Madrid",
                            period="7d", watches=["acme"], pdf_dir="out", top_mentions=2,
                            audience="Dirección", locale="es")
    mentions = [em(START + timedelta(hours=h), "negative", priority=99, text=SAID,
                   followers=1234) for h in range(3)]
    mentions.append(em(START + timedelta(days=1), watch="globex", text="globex"))
    data = build_report(report, watches=WATCHES, source=Source(mentions),
                        incidents=[incident(START + timedelta(days=1), ack_min=12,
                                            resolve_min=90)],
                        end=END, now=datetime(2026, 3, 30, 7, tzinfo=UTC))
    pdf = render(data).pdf
    text = " ".join(" ".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf)).pages)
                    .split())
    for spanish in ("2026-03-23 a 2026-03-29 (Europe/Madrid)", "para Dirección",
                    "Menciones 3 (periodo anterior 0, n/d (nada antes))", "3.702",
                    "Cuota de voz Acme 75,0 % (3)", "Términos principales",
                    "Menciones principales por prioridad", "Autor Mención",
                    "Hasta atender", "crítico", "resuelto", "24 mar, 00:00 CET",
                    "informe de escucha semanal · generado el 30 mar 2026, 09:00 CEST",
                    "por día en Europe/Madrid", "página 1"):
        assert spanish in text, spanish
    assert SAID in text
    assert "Top terms" not in text and "previous period" not in text
