"""Every channel's alert in Spanish: escucha's own words translated, times in the target's zone,
the mention text as written and still escaped the way that channel needs."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import BaseModel, SecretStr, ValidationError

from agents.deliver.limits import Digests
from notifiers.email import EmailNotifier, EmailSettings
from notifiers.followup import status_line
from notifiers.googlechat import GoogleChatNotifier, GoogleChatSettings
from notifiers.pagerduty import PagerDutySettings, build_event
from notifiers.push import NtfySettings, PushNotifier
from notifiers.registry import lang_for
from notifiers.teams import TeamsNotifier, TeamsSettings
from notifiers.text import no_broadcast
from notifiers.webhook import WebhookSettings, build_body
from streams.config.notifiers import NotifierSettings
from streams.core.links import LinkSigner
from streams.core.records import (
    Evidence,
    Incident,
    Notification,
    NotificationKind,
    SampleMention,
    StorySummary,
)

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)  # 09:00 in Madrid (CET)
# Attacker-controlled, and holding words the catalogue translates ("Resolve", "Playbook"):
# translating or un-escaping mention text would show here.
SAID = "<script>x</script> & @everyone Resolve this, Playbook <b>now</b>"
SIGNER = LinkSigner(secret=b"0123456789abcdef-test", base_url="https://escucha.example")
TARGET = "soporte"


def _note(kind: NotificationKind = "trigger", state: str = "open",
          target: str = TARGET, digest: tuple[str, ...] = (), **kw: Any) -> Notification:
    inc = Incident.model_validate({
        "id": "acme.1", "fingerprint": "acme:negative_spike", "watch_id": "acme",
        "detector": "negative_spike", "severity": "critical", "state": state,
        "opened_at": T0, "updated_at": T0, "summary": "24 negative mentions in one minute",
        "samples": [SampleMention(key="x:1", url="https://social.example/1", author="pepa",
                                  text=SAID, priority=90)],
        "evidence": [Evidence(
            detector="negative_spike", severity="critical", observed=40, expected=6.5,
            score=6.2, window_start=T0 - timedelta(minutes=5), window_end=T0, stories=3,
            campaign=True, largest_story=StorySummary(id="s1", text=SAID, count=30, authors=29,
                                                      span_min=9))],
        **kw})
    return Notification(id=f"acme.1:L2:{kind}", incident=inc, level=2, channel="x",
                        target=target, created_at=T0, kind=kind, digest=list(digest))


ACKED = {"state": "acknowledged", "acked_by": "lucía", "acked_at": T0 + timedelta(minutes=5),
         "timeline": [{"at": T0 + timedelta(minutes=5), "kind": "ack",
                       "text": "acknowledged via slack"}]}
ES = {"locale": "en", "target_locales": {TARGET: "es"}, "timezone": "Europe/Madrid"}


def _dump(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def test_followup_line_in_spanish_with_local_time() -> None:
    lang = EmailSettings(**ES).lang_for(TARGET)
    line = status_line(_note("acknowledge", **ACKED), lang)
    assert line == "Atendido por lucía vía Slack el 2 mar 2026, 09:05 CET"
    # English and UTC when nothing is configured: the historic line, unchanged.
    assert status_line(_note("acknowledge", **ACKED)) == \
        "Acknowledged by lucía via Slack at 2026-03-02 08:05 UTC"


def test_email_in_spanish_keeps_the_mention_text_and_escapes_it_in_html() -> None:
    notifier = EmailNotifier(settings=EmailSettings(**ES), links=SIGNER,
                             watch_names={"acme": "Acme España"})
    message = notifier.render(_note("acknowledge", **ACKED))
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert str(message["Subject"]) == "[CRÍTICO] Acme España: negative spike"
    for spanish in ("Atendido por lucía vía Slack el 2 mar 2026, 09:05 CET", "Gravedad: CRÍTICO",
                    "Estado: atendido por lucía el 2 mar 2026, 09:05 CET",
                    "Abierto: 2 mar 2026, 09:00 CET", "Lo que dice la gente:",
                    "@pepa (prioridad 90):", "Historia más grande (campaña: una sola historia",
                    "Actúe (cada enlace pide confirmación antes):", "  Resolver: https://"):
        assert spanish in text, spanish
    assert "    " + SAID in text  # the plain part is text: as written
    assert "<h3>Lo que dice la gente</h3>" in html and '">abrir</a>' in html
    assert "&lt;script&gt;x&lt;/script&gt; &amp; @everyone Resolve this, Playbook " \
           "&lt;b&gt;now&lt;/b&gt;" in html
    assert "<script>" not in html and "<b>now" not in html
    for english in ("What people say", "Severity", "Acknowledged by", "priority 90"):
        assert english not in text, english


def test_email_digest_subject_in_spanish() -> None:
    notifier = EmailNotifier(settings=EmailSettings(**ES), links=None)
    message = notifier.render(_note("digest", digest=("a", "b")))
    assert str(message["Subject"]).endswith(" — resumen de 2 avisos")


def test_push_in_spanish_keeps_the_mention_text() -> None:
    notifier = PushNotifier(settings=NtfySettings(**ES), links=SIGNER,
                            watch_names={"acme": "Acme"})
    payload = notifier.render(_note("escalate", timeline=[]))
    assert payload["title"] == "[CRÍTICO] Acme: negative spike — escalado, nivel 2"
    assert payload["message"].startswith(
        "Escalado al nivel 2: nadie lo ha atendido todavía\n")
    assert "Seguimiento: Acme · estado: abierto · nivel 2" in payload["message"]
    assert f"• @pepa: {SAID}" in payload["message"]
    assert payload["actions"][0]["label"] == "Atender"
    # Another target, no override: the channel's own locale (English here).
    english = notifier.render(_note("escalate", target="ops", timeline=[]))
    assert english["title"].endswith("escalated, level 2")


def test_teams_card_in_spanish_keeps_the_mention_text_without_pings() -> None:
    settings = TeamsSettings(webhooks={TARGET: SecretStr("https://x.example/w")}, **ES)
    card = _dump(TeamsNotifier(settings=settings, links=SIGNER,
                               watch_names={"acme": "Acme"}).render(_note()))
    for spanish in ("\\\\[CRÍTICO\\\\] Acme: negative spike", "Seguimiento: Acme · estado: abierto",
                    '"Atender"', '"Resolver"', '"Abrir incidente"', '"Ver la primera mención"'):
        assert spanish in card, spanish
    # A TextRun shows its text literally; only the broadcast ping is defused.
    assert _dump(no_broadcast(SAID))[1:-1] in card and "@everyone" not in card


def test_google_chat_card_in_spanish_escapes_the_mention_text() -> None:
    settings = GoogleChatSettings(webhooks={TARGET: SecretStr("https://chat.example/w")}, **ES)
    message = GoogleChatNotifier(settings=settings, links=SIGNER,
                                 watch_names={"acme": "Acme"}).render(_note("acknowledge",
                                                                            **ACKED))
    card = _dump(message)
    for spanish in ("atendido por lucía", '"Menciones de ejemplo"', '"Abrir"', '"Resolver"',
                    "Seguimiento: Acme · estado: atendido"):
        assert spanish in card, spanish
    assert "&lt;script&gt;x&lt;/script&gt; &amp; @\u2060everyone Resolve this, Playbook " \
           "&lt;b&gt;now&lt;/b&gt;" in card
    assert "<script>" not in card and "<b>now" not in card


def test_pagerduty_human_fields_in_spanish_machine_fields_stable() -> None:
    settings = PagerDutySettings(services={TARGET: SecretStr("k" * 32)}, **ES)
    event = build_event(_note("escalate", timeline=[]), routing_key="k" * 32,
                        watch_name="Acme", console="https://escucha.example/console/x",
                        lang=settings.lang_for(TARGET))
    details = event["payload"]["custom_details"]
    assert details["status"] == "Escalado al nivel 2: nadie lo ha atendido todavía"
    assert (details["severity"], details["state"], details["change"]) == \
        ("critical", "open", "escalated")
    assert details["samples"][0]["text"] == SAID
    assert event["links"][0]["text"] == "escucha: abrir el incidente"


def test_webhook_translates_only_its_status_line() -> None:
    settings = WebhookSettings(**ES)
    note = _note("acknowledge", **ACKED)
    doc = json.loads(build_body(note, settings.lang_for(TARGET)))
    english = json.loads(build_body(note))
    assert doc["status"].startswith("Atendido por lucía vía Slack")
    assert doc["locale"] == "es" and "locale" not in english
    for machine in ("version", "id", "kind", "event", "level", "created_at", "incident"):
        assert doc[machine] == english[machine], machine
    assert doc["incident"]["samples"][0]["text"] == SAID


@pytest.mark.parametrize("settings", [EmailSettings, NtfySettings, TeamsSettings,
                                      GoogleChatSettings, PagerDutySettings, WebhookSettings])
def test_every_channel_checks_its_locales_all_at_once(settings: type[BaseModel]) -> None:
    with pytest.raises(ValidationError) as err:
        settings(locale="xx", timezone="Mars/Olympus",
                 target_locales={"a": "es_ZZ", "b": "fr", "c": "es"})
    text = str(err.value)
    for what in ("locale", "timezone", "'xx'", "Mars/Olympus", "a: ", "b: "):
        assert what in text, what
    assert "c: " not in text
    ok = settings(locale="es-mx", target_locales={"ops": "en"})
    assert ok.locale == "es_MX" and ok.lang_for("ops").locale == "en"  # type: ignore[attr-defined]
    assert ok.lang_for("other").locale == "es_MX"  # type: ignore[attr-defined]


def test_digest_lines_in_the_targets_language() -> None:
    notifiers = NotifierSettings.model_validate({"push": ES})
    assert lang_for(notifiers, "push", TARGET).locale == "es"
    assert lang_for(notifiers, "push", "ops").unset is False  # en, but in Madrid time
    assert lang_for(notifiers, "console", "x").unset  # a channel without locale settings
    held = [_note("trigger"), _note("escalate")]
    digest = Digests.digest_of(("push", TARGET), held, lang_for(notifiers, "push", TARGET))
    assert digest.digest == [
        "crítico: acme — alerta (nivel 2) 24 negative mentions in one minute",
        "crítico: acme — escalado (nivel 2) 24 negative mentions in one minute"]
    english = Digests.digest_of(("push", TARGET), held)
    assert english.digest[0] == "critical: acme — trigger (level 2) 24 negative mentions in " \
        "one minute"
    assert english.id == digest.id  # the language is not part of which lines it holds
