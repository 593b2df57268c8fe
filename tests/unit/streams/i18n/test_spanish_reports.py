"""A report's email (plain and HTML) and Slack message in Spanish: our words and numbers the
reader's way, the mention text as written and escaped for each format."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from streams.config.reports import ReportSettings
from streams.core.records import Incident
from streams.reports.charts import figure_texts, sentiment_figure, sov_figure, volume_figure
from streams.reports.data import ReportData, build_report
from streams.reports.render import html_body, slack_text, subject, text_body
from tests.unit.streams.reports._build import END, START, WATCHES, Source, em, incident

# Attacker-controlled, holding catalogue words ("Incidents", "Top terms"): never translated.
SAID = "<script>x</script> <!channel> & Incidents, Top terms"


def _data(locale: str = "es") -> ReportData:
    report = ReportSettings(id="semanal", schedule="0 8 * * 1", timezone="Europe/Madrid",
                            period="7d", watches=["acme"], pdf_dir="out", top_mentions=2,
                            audience="Dirección", locale=locale)
    mentions = [em(START + timedelta(hours=h), "negative", priority=99, text=SAID,
                   followers=1234) for h in range(3)]
    mentions.append(em(START + timedelta(days=1), watch="globex", text="globex"))
    return build_report(report, watches=WATCHES, source=Source(mentions),
                        incidents=[incident(START + timedelta(days=1), ack_min=12,
                                            resolve_min=90)],
                        end=END, now=datetime(2026, 3, 30, 7, tzinfo=UTC))


def test_report_email_in_spanish_keeps_the_mention_text() -> None:
    data = _data()
    assert subject(data).endswith(": 2026-03-23 a 2026-03-29 (Europe/Madrid)")
    text = text_body(data)
    for spanish in ("Para: Dirección", "Generado el 30 mar 2026, 09:00 CEST", "Por día:",
                    "Menciones principales por prioridad:", "] negativa @", "Incidentes:",
                    "crítico", "atender 12 min, resolver 1 h 30 min",
                    "informe de escucha semanal · "):
        assert spanish in text, spanish
    assert f": {SAID}" in text  # the plain part is text: as written
    html = html_body(data, {"volume-acme": "v@x"})
    for spanish in ('<html lang="es">', "para Dirección", ">Este periodo<",
                    'alt="Menciones por día y proporción negativa"', ">Términos principales<",
                    ">Mención<", ">Hasta atender<",
                    "generado el 30 mar 2026, 09:00 CEST"):
        assert spanish in html, spanish
    assert "&lt;script&gt;x&lt;/script&gt; &lt;!channel&gt; &amp; Incidents, Top terms" in html
    assert "<script>" not in html
    for english in ("This period", "Top mentions", "No incidents", "generated"):
        assert english not in html, english


def test_report_slack_message_in_spanish_escapes_the_mention_text() -> None:
    text = slack_text(_data())
    for spanish in ("2026-03-23 a 2026-03-29 (Europe/Madrid)", "3 menciones (",
                    "frente al anterior), negativas ", "alcance 3.702", "Cuota de voz: ",
                    "Incidentes: 1, mediana hasta atender 12 min"):
        assert spanish in text, spanish
    assert "&lt;script&gt;x&lt;/script&gt; &lt;!channel&gt; &amp; Incidents, Top terms" in text
    assert "<!channel>" not in text


def test_english_report_text_is_unchanged_in_shape() -> None:
    text = slack_text(_data("en"))
    assert "3 mentions (n/a (nothing before) vs previous), negative 100.0%" in text
    assert "Incidents: 1, median time to acknowledge 12 min" in text


def test_a_reports_incident_summary_is_in_its_language_and_zone() -> None:
    from streams.core.records import Phrase

    opened = START + timedelta(days=1)
    said = [Phrase(key="volume_spike", params={"observed": 120, "minutes": 5, "ratio": 4.25,
                                               "expected": 28.2, "p": 1.5e-9,
                                               "authors": 97}),
            Phrase(key="window", params={"start": opened.isoformat(),
                                         "end": (opened + timedelta(minutes=5)).isoformat()})]
    inc = incident(opened).model_copy(update={"summary_parts": said,
                                              "summary": "120 mentions in 5 min (English)"})

    def data_in(locale: str, *incidents: Incident) -> ReportData:
        report = ReportSettings(id="semanal", schedule="0 8 * * 1", timezone="Europe/Madrid",
                                period="7d", watches=["acme"], pdf_dir="out", locale=locale)
        return build_report(report, watches=WATCHES, source=Source([]),
                            incidents=list(incidents), end=END,
                            now=datetime(2026, 3, 30, 7, tzinfo=UTC))

    def summary_in(locale: str) -> str:
        return data_in(locale, inc).watches[0].incidents[0].summary

    spanish = summary_in("es")
    assert spanish in text_body(data_in("es", inc))
    assert spanish.startswith("120 menciones en 5 min, 4,2x lo esperado (28,2)"), spanish
    assert "CET" in spanish  # the window in the report's zone, not UTC
    assert summary_in("en").startswith("120 mentions in 5 min, 4.2x the expected 28.2")
    # An incident from before summaries had parts: its English text, as stored.
    assert data_in("es", incident(opened)).watches[0].incidents[0].summary == "spike"


def test_report_charts_in_spanish_with_the_watch_name_as_written() -> None:
    data = _data()
    [acme] = [w for w in data.watches if w.watch_id == "acme"]
    acme = acme.model_copy(update={"name": "Acme $Incidents"})  # a name is data: as written
    said = {kind: figure_texts(build(data, acme))
            for kind, build in (("volume", volume_figure), ("sentiment", sentiment_figure),
                                ("sov", sov_figure))}
    every = " | ".join(t for texts in said.values() for t in texts)
    for spanish in (r"Acme \$Incidents: menciones por día y proporción negativa",
                    "menciones", "% negativas", r"Acme \$Incidents: sentimiento", "anterior",
                    "este periodo", "negativas", "neutras", "positivas", "% de las menciones",
                    r"Acme \$Incidents: cuota de voz",
                    "% de las menciones entre los seguimientos comparados"):
        assert spanish in every, (spanish, said)
    assert "100\u00a0%" in said["sentiment"]  # numbers the locale's way: "100 %", not "100%"
    ours = every.replace(r"Acme \$Incidents", "")
    for english in ("mentions per", "negative share", "negative %", "previous", "this period",
                    "share of voice", "of mentions", "positive", "neutral"):
        assert english not in ours, english
    # English reports keep their words.
    english = " | ".join(figure_texts(volume_figure(_data("en"), acme)))
    assert r"Acme \$Incidents: mentions per day and negative share" in english
