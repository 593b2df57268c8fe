"""An incident's timeline in the reader's language: every entry the engine writes said from its
phrase in Spanish, its stored English text unchanged for machines, user and mention text as
written and escaped, and the stored text whenever a phrase cannot be said."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from agents.escalate.levels import log
from notifiers.slack import build_thread_reply
from streams.core.records import Incident, Notification, Phrase, TimelineEntry
from streams.i18n import translator
from streams.i18n.timeline import KEYS, claim_of, english, kind_of, say
from streams.web.console import render
from streams.web.console.auth import Session

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)  # 09:00 in Madrid (CET)
ES = Session(user="lucía", role="responder", sid="s1", expires=9e9, locale="es",
             timezone="Europe/Madrid")
HOSTILE = '<b>{0} "x" & y</b>'
ESCAPED = "&lt;b&gt;{0} &quot;x&quot; &amp; y&lt;/b&gt;"
SPIKE = Phrase(key="negative_spike", params={"observed": 12, "minutes": 5, "ratio": 1.05,
                                             "expected": 0.15, "p": 1.2e-5, "authors": 9})
SPIKE_EN = ("12 negative mentions in 5 min, 1.1x the expected 0.1 (p=1.2e-05); 9 authors")
SPIKE_ES = ("12 menciones negativas en 5 min, 1,1x lo esperado (0,1) (p=1,2e-05); 9 autores")

# Every key with the values the engine gives it, its stored English and a Spanish fragment.
CASES: dict[str, tuple[dict[str, Any], str, str]] = {
    "signal": ({}, SPIKE_EN, SPIKE_ES),
    "signal_joined": ({"detector": "negative_spike"}, f"negative_spike: {SPIKE_EN}",
                      f"negative_spike: {SPIKE_ES}"),
    "reopen": ({}, f"recurred: {SPIKE_EN}", f"ha vuelto: {SPIKE_ES}"),
    "notification": ({"kind": "trigger", "level": 1, "names": "slack #crisis"},
                     "trigger (level 1) → slack #crisis", "alerta (nivel 1) → slack #crisis"),
    "fallback_instead": ({"policy": "p", "level": 2, "member": "bob", "channel": "push",
                          "instead": "email"},
                         "p level 2: bob has no push contact; sent by email instead",
                         "p nivel 2: bob no tiene contacto de push; enviado por email"),
    "fallback_only": ({"policy": "p", "level": 1, "member": "carol", "channel": "push",
                       "used": "slack"},
                      "p level 1: carol has no push contact; reached by slack only",
                      "avisado solo por slack"),
    "fallback_to": ({"policy": "p", "level": 1, "member": "dan", "schedule": "none",
                     "names": "slack #ops"},
                    "p level 1: dan (on call in none) has no contact: nobody reachable; "
                    "fallback → slack #ops", "(de guardia en none) no tiene contactos"),
    "fallback_none": ({"policy": "p", "level": 1, "member": "dan", "schedule": "none"},
                      "p level 1: dan (on call in none) has no contact: nobody reachable, and "
                      "escalation.fallback reaches nobody", "no llega a nadie"),
    "deferred": ({"policy": "p", "level": 1, "until": "2026-03-29T05:00:00+00:00",
                  "zone": "Europe/Madrid", "at": "2026-03-28T22:00:00+00:00"},
                 "p level 1: quiet hours, deferred to 07:00 Europe/Madrid on Sun 2026-03-29",
                 "aplazado hasta las 07:00 Europe/Madrid del dom 2026-03-29"),
    "deferred_reminder": ({"policy": "p", "level": 3, "until": "2026-03-29T05:00:00+00:00",
                           "zone": "Europe/Madrid", "at": "2026-03-29T04:00:00+00:00"},
                          "p reminder (level 3): quiet hours, deferred to 07:00 Europe/Madrid",
                          "p recordatorio (nivel 3): horas de silencio"),
    "skipped": ({"policy": "p", "level": 1}, "p level 1: nobody to notify",
                "p nivel 1: nadie a quien avisar"),
    "escalate": ({"policy": "p", "timeout": 300, "level": 2},
                 "p: not acknowledged within 300s → level 2",
                 "p: sin aceptar en 300 s → nivel 2"),
    "merged_into": ({"target": "acme.1", "text": HOSTILE, "count": 120},
                    f"merged into acme.1: same story \u2018{HOSTILE}\u2019 \u00d7120",
                    f"unido a acme.1: la misma historia «{HOSTILE}» \u00d7120"),
    "released": ({"target": "acme.1"}, "released: acme.1 is resolved; escalating on its own",
                 "liberado: acme.1 está resuelto"),
    "joined_by": ({"watch": "beta", "count": 41, "joiner": "beta.7"},
                  "joined by watch beta (41 mentions of the same story; beta.7)",
                  "se le une el seguimiento beta (41 menciones"),
    "inhibited_by": ({"source": "acme.1", "severity": "critical", "detector": "volume_spike",
                      "watch": "acme", "rule": 0},
                     "inhibited by acme.1 (critical volume_spike on acme; inhibit rule 0)",
                     "inhibido por acme.1 (crítico, volume_spike en acme; "
                     "regla de inhibición 0)"),
    "inhibits": ({"target": "acme.2"}, "inhibits acme.2", "inhibe acme.2"),
    "not_inhibited": ({"source": "acme.1"}, "no longer inhibited by acme.1",
                      "ya no está inhibido por acme.1"),
    "inhibition_ended": ({"source": "acme.1"}, "inhibition by acme.1 ended",
                         "terminó la inhibición por acme.1"),
    "silenced_by": ({"silence": "s-1", "until": "2026-03-02T10:00:00+00:00"},
                    "silenced by s-1 until 2026-03-02 10:00 UTC",
                    "silenciado por s-1 hasta 2/3/26, 11:00 CET"),
    "silenced_by_all": ({"silence": "s-2", "until": "2026-03-02T10:00:00+00:00"},
                        "silenced by s-2 (a silence of every incident, all: true) until "
                        "2026-03-02 10:00 UTC", "todos los incidentes, all: true) hasta"),
    "silence_expired": ({"silence": "s-1"}, "silence s-1 expired",
                        "el silencio s-1 ha expirado"),
    "silence_ended": ({}, "silence ended", "terminó el silencio"),
    "waiting": ({"seconds": 30, "text": HOSTILE, "count": 7},
                f"held 30 s before paging: a story is forming (\u2018{HOSTILE}\u2019 \u00d77); "
                "the same story on another watch joins this incident instead of paging twice",
                "retenido 30 s antes de avisar: se está formando una historia "
                f"(«{HOSTILE}» \u00d77)"),
    "ack": ({"source": "console"}, "acknowledged via console", "atendido vía la consola"),
    "resolve": ({"source": "link"}, "resolved via link", "resuelto vía un enlace firmado"),
    "resolve_auto": ({}, "resolved via auto", "resuelto automáticamente"),
    "step": ({"source": "slack", "step": HOSTILE}, f"step done via slack: {HOSTILE}",
             f"paso hecho vía Slack: {HOSTILE}"),
    "claim": ({"state": "not_answering", "who": "Ana", "reason": HOSTILE, "mention": "m1"},
              f"Ana decided not to answer: {HOSTILE} (m1)",
              f"Ana decidió no responder: {HOSTILE} (m1)"),
    "claim_note": ({"note": "Ana is answering this", "mention": "m1"},
                   "Ana is answering this (m1)", "Ana is answering this (m1)"),
    "delivery": ({"channel": "email", "target": "ana@example.com", "outcome": "failed",
                  "detail": "550 no such user"},
                 "email ana@example.com: failed 550 no such user",
                 "email ana@example.com: fallida 550 no such user"),
}


def _entry(key: str, params: dict[str, Any], kind: str = "signal") -> TimelineEntry:
    inc: dict[str, Any] = {}
    parts = [SPIKE] if key in ("signal", "signal_joined", "reopen") else []
    log(inc, T0, kind, key, params, by="ana", parts=parts)
    return TimelineEntry.model_validate(inc["timeline"][0])


def test_every_key_has_a_case() -> None:
    assert set(CASES) == KEYS


@pytest.mark.parametrize("key", sorted(CASES))
def test_each_entry_is_stored_in_english_and_said_in_spanish(key: str) -> None:
    params, stored, spanish = CASES[key]
    entry = _entry(key, params)
    assert entry.text == stored
    said = say(entry, locale="es", timezone="Europe/Madrid")
    assert spanish in said, said
    if key != "claim_note":  # a sender's English note is data, not escucha's words
        assert said != stored


def test_english_readers_get_sources_in_words_and_machines_the_records_own() -> None:
    entry = _entry("ack", {"source": "console"})
    assert entry.text == "acknowledged via console"
    assert say(entry) == "acknowledged via the console"
    assert say(_entry("notification", {"kind": "trigger", "level": 1, "names": "x"})) == \
        "trigger (level 1) → x"


def test_the_day_shows_only_when_the_deferral_ends_on_another_local_day() -> None:
    params = {"policy": "p", "level": 1, "until": "2026-03-29T05:00:00+00:00",
              "zone": "Europe/Madrid"}
    # 00:30 in Madrid on the 29th: the same local day, though the 28th in UTC.
    assert english("deferred", {**params, "at": "2026-03-28T23:30:00+00:00"}).endswith(
        "deferred to 07:00 Europe/Madrid")
    assert english("deferred", {**params, "at": "2026-03-28T22:59:00+00:00"}).endswith(
        "deferred to 07:00 Europe/Madrid on Sun 2026-03-29")


@pytest.mark.parametrize("phrase", [
    None,
    Phrase(key="no_such_key", params={}),
    Phrase(key="ack", params={}),  # a value missing
    Phrase(key="escalate", params={"policy": "p", "timeout": "soon", "level": 2}),
    Phrase(key="claim", params={"state": "won", "who": "Ana", "reason": "", "mention": "m"}),
    Phrase(key="deferred", params={"policy": "p", "level": 1, "until": "tomorrow",
                                   "zone": "Europe/Madrid", "at": "2026-03-28T23:30:00"}),
    Phrase(key="deferred", params={"policy": "p", "level": 1, "until": "2026-03-29T05:00",
                                   "zone": "Mars/Base", "at": "2026-03-28T23:30:00"}),
])
def test_what_cannot_be_said_shows_the_stored_text(phrase: Phrase | None) -> None:
    entry = TimelineEntry(at=T0, kind="ack", text="the stored words", phrase=phrase)
    assert say(entry, locale="es", timezone="Europe/Madrid") == "the stored words"


def test_a_signal_without_clauses_keeps_its_english_summary() -> None:
    inc: dict[str, Any] = {}
    log(inc, T0, "reopen", "reopen", {"summary": "old words"})
    entry = TimelineEntry.model_validate(inc["timeline"][0])
    assert entry.text == "recurred: old words"
    assert say(entry, locale="es") == "ha vuelto: old words"


def test_kinds_and_claims_in_spanish() -> None:
    tr = translator("es")
    assert kind_of("escalate", tr) == "escalado" and kind_of("new-kind", tr) == "new-kind"
    phrase = Phrase(key="claim", params={"state": "claimed", "who": "Ana", "reason": ""})
    assert claim_of("Ana is answering this", phrase, tr) == "Ana la está respondiendo"
    assert claim_of("Ana is answering this", None, tr) == "Ana is answering this"
    broken = Phrase(key="claim", params={"state": "claimed"})
    assert claim_of("stored", broken, tr) == "stored"


def _incident(timeline: list[TimelineEntry]) -> Incident:
    return Incident(id="acme.1", fingerprint="f", watch_id="acme", detector="negative_spike",
                    severity="critical", opened_at=T0, updated_at=T0, summary=SPIKE_EN,
                    timeline=timeline)


def test_the_spanish_console_shows_every_entry_in_spanish_and_escaped() -> None:
    entries = [_entry(key, params) for key, (params, _, _) in CASES.items()]
    page = render.incident_page(_incident(entries), watch_name="Acme", oncall=[], series=[],
                                authors=[], session=ES, csrf="t")
    timeline = page[page.index('<ol class="timeline"'):]
    for key, (_params, stored, spanish) in CASES.items():
        shown = spanish.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;") \
            .replace('"', "&quot;")
        assert shown in timeline, key
        if key != "claim_note":
            assert stored.replace(HOSTILE, ESCAPED) not in timeline, key
    assert ESCAPED in timeline and "<b>" not in timeline
    assert '>atendido</span>' not in timeline  # every entry here is kind "signal"
    assert '<span class="tl-kind" data-kind="signal">señal</span>' in timeline


def test_a_spanish_slack_escalation_reply_gives_the_reason_in_spanish() -> None:
    entry = _entry("escalate", {"policy": "crisis", "timeout": 300, "level": 2}, "escalate")
    note = Notification(id="n1", incident=_incident([entry]), level=2, channel="slack",
                        target="#crisis", created_at=T0, kind="escalate")
    reply = str(build_thread_reply(note, locale="es"))
    assert "crisis: sin aceptar en 300 s → nivel 2" in reply
    assert "not acknowledged" not in reply
