"""EmailNotifier against a real SMTP server on loopback (aiosmtpd), aiosmtplib on the wire."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from html.parser import HTMLParser
from typing import Any

import pytest
import pytest_asyncio
from pydantic import SecretStr, ValidationError

from notifiers.base import Notifier
from notifiers.email import EmailNotifier, EmailSettings, message_id, parse_recipients
from notifiers.errors import DeliveryError
from streams.core.links import LinkSigner
from streams.core.records import (
    Evidence,
    Incident,
    Notification,
    NotificationKind,
    SampleMention,
    StorySummary,
)
from tests.fakes.smtp import FakeSMTP

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
PUBLIC = "https://escucha.example"
PASSWORD = "s3cr3t-Pa55word-do-not-log"
HOSTILE = '<script>alert(1)</script> <a href="javascript:x">x</a> <!channel> @here'
TARGET = "oncall@example.com, ana@example.com"


def sample(text: str = "acme broke my order", *, author: str = "customer",
           url: str | None = "https://social.example/1") -> SampleMention:
    return SampleMention(key="x:1", url=url, author=author, text=text, priority=80)


def notification(
    *, note_id: str = "acme.1:L1:email:open", kind: NotificationKind = "trigger",
    state: str = "open", severity: str = "critical", samples: list[SampleMention] | None = None,
    summary: str = "24 negative mentions in the 1-minute window from 12:00 UTC",
    target: str = TARGET, **incident: Any,
) -> Notification:
    inc = Incident.model_validate({
        "id": "acme.1", "fingerprint": "acme:negative_spike", "watch_id": "acme",
        "detector": "negative_spike", "severity": severity, "state": state,
        "opened_at": NOW, "updated_at": NOW, "summary": summary, "signal_ids": ["s1"],
        "samples": [sample()] if samples is None else samples, **incident,
    })
    return Notification(id=note_id, incident=inc, level=1, channel="email", target=target,
                        created_at=NOW, kind=kind)


def parts(message: EmailMessage) -> tuple[str, str]:
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert text is not None and html is not None
    return str(text.get_content()), str(html.get_content())


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def tags_of(html: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = _Tags()
    parser.feed(html)
    return parser.tags


@pytest.fixture
def signer() -> LinkSigner:
    return LinkSigner(secret=b"0123456789abcdef-test", base_url=PUBLIC)


@pytest_asyncio.fixture
async def smtp() -> AsyncIterator[FakeSMTP]:
    async with FakeSMTP() as server:
        yield server


def make(smtp: FakeSMTP, links: LinkSigner | None, **settings: Any) -> EmailNotifier:
    return EmailNotifier(
        settings=EmailSettings(host="127.0.0.1", port=smtp.port, timeout_s=5, **settings),
        links=links, watch_names={"acme": "Acme"})


def action_tokens(text: str) -> list[str]:
    return re.findall(re.escape(PUBLIC) + r"/a/([A-Za-z0-9_.-]+)", text)


async def test_delivers_text_and_html_with_ids_and_signed_links(
    smtp: FakeSMTP, signer: LinkSigner
) -> None:
    notifier = make(smtp, signer)
    assert isinstance(notifier, Notifier) and notifier.channel == "email"
    note = notification()
    receipt = await notifier.send(note)

    (msg,) = smtp.messages
    (env,) = smtp.envelopes
    assert env.mail_from == "escucha@localhost"
    assert env.rcpt_tos == ["oncall@example.com", "ana@example.com"]
    assert msg.get_content_type() == "multipart/alternative"
    assert msg["Subject"] == "[CRITICAL] Acme: negative spike"
    assert msg["From"] == "escucha@localhost"
    assert msg["To"] == "oncall@example.com, ana@example.com"
    assert msg["Message-ID"] == message_id(note.id, domain="localhost")
    assert receipt.external_id == msg["Message-ID"]
    assert msg["X-Escucha-Incident"] == "acme.1"
    assert msg["Auto-Submitted"] == "auto-generated"

    text, html = parts(msg)
    for body in (text, html):
        assert "CRITICAL" in body and "Acme" in body
        assert "24 negative mentions" in body
        assert "@customer" in body and "acme broke my order" in body
        assert "https://social.example/1" in body
        assert "open" in body  # the state
    # Both links, in both parts, and each is one the web route will accept.
    for body in (text, html):
        tokens = action_tokens(body)
        verified = {signer.verify(t).action: signer.verify(t).incident_id for t in tokens}
        assert verified == {"ack": "acme.1", "resolve": "acme.1"}
    anchors = [attrs for tag, attrs in tags_of(html) if tag == "a"]
    assert anchors and all(a.get("rel") == "noopener noreferrer" for a in anchors)


async def test_a_duplicate_send_carries_the_same_message_id(
    smtp: FakeSMTP, signer: LinkSigner
) -> None:
    notifier = make(smtp, signer)
    first = await notifier.send(notification())
    second = await notifier.send(notification())
    other = await notifier.send(notification(note_id="acme.1:L2:email:open"))
    ids = [m["Message-ID"] for m in smtp.messages]
    assert ids[0] == ids[1] == first.external_id == second.external_id
    assert ids[2] == other.external_id != ids[0]
    # Every message about the incident threads under the same root.
    assert len({m["References"] for m in smtp.messages}) == 1


@pytest.mark.parametrize(
    ("kind", "state", "extra", "first_line"),
    [
        ("trigger", "open", {}, "[CRITICAL] Acme: negative spike"),
        ("acknowledge", "acknowledged", {"acked_by": "ana", "acked_at": NOW},
         "Acknowledged by ana at 2024-05-01 12:00 UTC"),
        ("resolve", "resolved", {"resolved_by": "bo", "resolved_at": NOW},
         "Resolved by bo at 2024-05-01 12:00 UTC"),
        ("escalate", "open", {}, "Escalated to level 1: nobody has acknowledged it yet"),
        ("reminder", "open", {}, "Reminder: nobody has acknowledged it yet"),
    ],
)
def test_the_subject_stays_and_the_first_line_says_what_changed(
    signer: LinkSigner, kind: NotificationKind, state: str, extra: dict[str, Any],
    first_line: str,
) -> None:
    notifier = EmailNotifier(settings=EmailSettings(), links=signer, watch_names={"acme": "Acme"})
    msg = notifier.render(notification(kind=kind, state=state, **extra))
    assert msg["Subject"] == "[CRITICAL] Acme: negative spike"
    text, html = parts(msg)
    assert text.splitlines()[0] == first_line
    if kind != "trigger":
        assert f"<p><b>{first_line}</b></p>" in html


async def test_a_follow_up_replies_in_the_thread_of_the_first_message(
    smtp: FakeSMTP, signer: LinkSigner
) -> None:
    notifier = make(smtp, signer)
    first = await notifier.send(notification())
    follow = notification(note_id="acme.1:2:email:ack", kind="acknowledge",
                          state="acknowledged", acked_by="ana", acked_at=NOW)
    again = await notifier.send(follow.model_copy(update={"update_of": first.external_id}))
    trigger, reply = smtp.messages
    assert trigger["In-Reply-To"] is None
    assert reply["In-Reply-To"] == first.external_id == trigger["Message-ID"]
    # RFC 5322: the parent's References, then the parent.
    assert reply["References"] == f"{trigger['References']} {trigger['Message-ID']}"
    assert reply["Subject"] == "Re: " + trigger["Subject"]
    assert again.external_id == reply["Message-ID"] != trigger["Message-ID"]
    assert smtp.replies_to(trigger["Message-ID"]) == [reply]


@pytest.mark.parametrize("parent", [
    "<escucha.1@localhost>\r\nBcc: victim@example.com", "not-a-message-id",
    "<a@b> <c@d>", "<" + "x" * 300 + "@localhost>",
])
async def test_a_parent_that_is_not_one_message_id_is_not_replied_to(
    smtp: FakeSMTP, signer: LinkSigner, parent: str
) -> None:
    notifier = make(smtp, signer)
    note = notification(kind="acknowledge", state="acknowledged", acked_by="ana")
    await notifier.send(note.model_copy(update={"update_of": parent}))
    (msg,) = smtp.messages
    assert msg["In-Reply-To"] is None and msg["Bcc"] is None
    assert msg["References"].startswith("<escucha.incident.") and " " not in msg["References"]
    assert not msg["Subject"].startswith("Re:")
    assert smtp.envelopes[0].rcpt_tos == ["oncall@example.com", "ana@example.com"]


def test_a_digest_spans_incidents_and_replies_to_none(signer: LinkSigner) -> None:
    notifier = EmailNotifier(settings=EmailSettings(), links=signer, watch_names={"acme": "Acme"})
    note = notification(kind="digest").model_copy(update={
        "digest": ["a: 3", "b: 1"], "update_of": "<escucha.1@localhost>"})
    msg = notifier.render(note)
    assert msg["In-Reply-To"] is None
    assert msg["Subject"] == "[CRITICAL] Acme: negative spike — digest of 2 notices"


async def test_who_acknowledged_is_escaped_in_the_follow_up(
    smtp: FakeSMTP, signer: LinkSigner
) -> None:
    notifier = make(smtp, signer)
    note = notification(kind="acknowledge", state="acknowledged", samples=[sample(HOSTILE)],
                        acked_by='<img src=x onerror="alert(1)">\n<script>x</script>')
    await notifier.send(note.model_copy(update={"update_of": "<escucha.1@localhost>"}))
    (msg,) = smtp.messages
    text, html = parts(msg)
    assert "<img" not in html.lower() and "<script" not in html.lower()
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in html
    first_line = text.splitlines()[0]
    assert first_line.startswith('Acknowledged by <img src=x onerror="alert(1)"> <script>')
    assert "\n" not in msg["Subject"]


@pytest.mark.parametrize(
    ("state", "extra", "actions"),
    [
        ("open", {}, {"ack", "resolve"}),
        ("acknowledged", {"acked_by": "ana"}, {"resolve"}),
        ("resolved", {"resolved_by": "bo"}, set()),
    ],
)
def test_links_offer_only_what_is_left_to_do(
    signer: LinkSigner, state: str, extra: dict[str, Any], actions: set[str]
) -> None:
    notifier = EmailNotifier(settings=EmailSettings(), links=signer)
    text, html = parts(notifier.render(notification(state=state, **extra)))
    for body in (text, html):
        assert {signer.verify(t).action for t in action_tokens(body)} == actions


def test_without_a_link_signer_there_are_no_action_links() -> None:
    notifier = EmailNotifier(settings=EmailSettings(), links=None)
    text, html = parts(notifier.render(notification()))
    assert "/a/" not in text and "/a/" not in html
    assert "Acknowledge" not in text


async def test_hostile_mention_is_escaped_and_bounded(
    smtp: FakeSMTP, signer: LinkSigner
) -> None:
    long_text = HOSTILE + " " + "A" * 10_000
    samples = [
        sample(long_text, author='<img src=x onerror="alert(1)">', url="javascript:alert(1)"),
        sample("ok " * 5000, url='https://evil.example/"><script>'),
        sample("fine", url="https://social.example/2"),
    ]
    notifier = EmailNotifier(
        settings=EmailSettings(host="127.0.0.1", port=smtp.port, timeout_s=5), links=signer,
        watch_names={"acme": "<script>Acme</script>"})
    await notifier.send(notification(samples=samples, summary=HOSTILE + "B" * 10_000))
    (msg,) = smtp.messages
    text, html = parts(msg)

    assert "<script" not in html.lower() and "<img" not in html.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html  # still readable, as text
    for tag, attrs in tags_of(html):
        assert tag in {"html", "head", "meta", "title", "body", "h2", "h3", "table", "tr",
                       "th", "td", "p", "ul", "li", "b", "br", "a"}, tag
        assert not any(name.startswith("on") for name in attrs), (tag, attrs)
        if tag == "a":
            href = attrs["href"] or ""
            assert href.startswith((f"{PUBLIC}/a/", "https://social.example/2")), href
            assert attrs["rel"] == "noopener noreferrer"
    assert "javascript:" not in " ".join(str(a) for _, a in tags_of(html))
    assert "javascript:alert(1)" not in text  # an unsafe URL is dropped, not shown
    # Bounded: a 10,000-character mention makes neither a 10,000-character line nor body.
    for body in (text, html):
        assert max(len(line) for line in body.splitlines()) <= 500
        assert "A" * 600 not in body and "B" * 2100 not in body
    assert len(text) < 8000
    raw = msg.as_bytes()
    assert max(len(line) for line in raw.splitlines()) <= 998  # RFC 5322


async def test_header_injection_is_impossible(smtp: FakeSMTP, signer: LinkSigner) -> None:
    notifier = EmailNotifier(
        settings=EmailSettings(host="127.0.0.1", port=smtp.port, timeout_s=5), links=signer,
        watch_names={"acme": "Acme\r\nBcc: victim@example.com"})
    await notifier.send(notification(state="acknowledged",
                                     acked_by="ana\nX-Evil: 1\r\n\r\n<b>body</b>"))
    (msg,) = smtp.messages
    assert "\n" not in msg["Subject"] and "\r" not in msg["Subject"]
    assert msg["Bcc"] is None and msg["X-Evil"] is None
    assert smtp.envelopes[0].rcpt_tos == ["oncall@example.com", "ana@example.com"]


@pytest.mark.parametrize("target", ["", " , ", "not-an-address", "a@x.com, b@y.com\r\nBcc: c@z.com",
                                    "Ana <ana@example.com>"])
async def test_unusable_targets_are_not_retryable(smtp: FakeSMTP, target: str) -> None:
    with pytest.raises(DeliveryError) as info:
        await make(smtp, None).send(notification(target=target))
    assert info.value.retryable is False and "escalation target" in info.value.reason
    assert smtp.messages == []


def test_recipients_are_deduplicated() -> None:
    assert parse_recipients("A@example.com, a@example.com,b@example.com") == [
        "a@example.com", "b@example.com"]


@pytest.mark.parametrize(("code", "at", "retryable"), [
    (451, "rcpt", True), (450, "rcpt", True), (550, "rcpt", False), (553, "rcpt", False),
    (451, "data", True), (452, "data", True), (554, "data", False),
])
async def test_smtp_answers_are_classified(
    smtp: FakeSMTP, code: int, at: str, retryable: bool
) -> None:
    notifier = make(smtp, None)
    # RCPT is answered once per recipient (two here), DATA once per message.
    smtp.refuse_next(code, times=2 if at == "rcpt" else 1, at=at)  # type: ignore[arg-type]
    with pytest.raises(DeliveryError) as info:
        await notifier.send(notification())
    assert info.value.retryable is retryable
    assert str(code) in info.value.reason
    await notifier.send(notification())  # the script is used up: the next attempt goes through
    assert len(smtp.messages) == 1


async def test_a_partly_refused_list_is_delivered_not_retried(smtp: FakeSMTP) -> None:
    smtp.refuse_next(550, times=1)
    receipt = await make(smtp, None).send(notification())
    assert smtp.envelopes[0].rcpt_tos == ["ana@example.com"]
    assert "oncall@example.com (550)" in receipt.detail and "1 of 2" in receipt.detail


async def test_server_down_is_retryable_and_recovers_on_the_same_port(
    smtp: FakeSMTP
) -> None:
    notifier = make(smtp, None)
    port = smtp.port
    await smtp.go_down()
    with pytest.raises(DeliveryError) as info:
        await notifier.send(notification())
    assert info.value.retryable is True
    await smtp.come_up()
    assert smtp.port == port
    await notifier.send(notification())
    assert len(smtp.messages) == 1


async def test_a_silent_server_times_out_retryably() -> None:
    async def mute(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # never sends the 220 greeting
        writer.close()

    server = await asyncio.start_server(mute, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        notifier = EmailNotifier(
            settings=EmailSettings(host="127.0.0.1", port=port, timeout_s=0.3), links=None)
        with pytest.raises(DeliveryError) as info:
            await notifier.send(notification())
        assert info.value.retryable is True
    finally:
        server.close()
        await server.wait_closed()


# -- authentication and secrets ------------------------------------------------------------
@pytest_asyncio.fixture
async def auth_smtp() -> AsyncIterator[FakeSMTP]:
    async with FakeSMTP(username="escucha", password=PASSWORD) as server:
        yield server


async def test_auth_with_username_and_password(auth_smtp: FakeSMTP) -> None:
    notifier = make(auth_smtp, None, username="escucha", password=SecretStr(PASSWORD))
    await notifier.send(notification())
    assert auth_smtp.envelopes[0].login == "escucha"
    assert auth_smtp.auth_attempts == [("escucha", True)]


async def test_wrong_password_or_none_is_not_retryable_and_never_leaks(
    auth_smtp: FakeSMTP, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "wrong-" + PASSWORD
    errors = []
    for settings in ({"username": "escucha", "password": SecretStr(wrong)}, {}):
        notifier = make(auth_smtp, None, **settings)
        with pytest.raises(DeliveryError) as info:
            await notifier.send(notification())
        assert info.value.retryable is False
        errors.append(info.value)
    assert "535" in errors[0].reason and "password" in errors[0].reason  # says what to fix
    assert "530" in errors[1].reason  # the server wants AUTH
    # A server down mid-way must not leak it either.
    await auth_smtp.go_down()
    with pytest.raises(DeliveryError) as info:
        await make(auth_smtp, None, username="escucha", password=SecretStr(PASSWORD)).send(
            notification())
    errors.append(info.value)
    for err in errors:
        for shown in (str(err), repr(err), err.reason, repr(err.__cause__)):
            assert PASSWORD not in shown
    assert PASSWORD not in caplog.text
    assert auth_smtp.messages == []


def test_settings_never_show_the_password() -> None:
    settings = EmailSettings(username="escucha", password=SecretStr(PASSWORD))
    assert PASSWORD not in repr(settings) and PASSWORD not in str(settings.model_dump())


@pytest.mark.parametrize("bad", [
    {"starttls": True, "use_tls": True},
    {"port": 0},
    {"port": 70000},
    {"from_addr": "escucha@example.com\r\nBcc: x@y.z"},
    {"from_addr": "not an address"},
    {"username": "escucha"},  # without a password
    {"host": "smtp.example.com\r\n"},
    {"timeout_s": 0},
    {"unknown": 1},
])
def test_settings_refuse_bad_values(bad: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        EmailSettings(**bad)


def test_settings_accept_a_display_name_and_are_frozen() -> None:
    settings = EmailSettings(from_addr="escucha <alerts@example.com>", port=587, starttls=True)
    notifier = EmailNotifier(settings=settings, links=None)
    msg = notifier.render(notification(), ["oncall@example.com"])
    assert msg["Message-ID"].endswith("@example.com>")
    with pytest.raises(ValidationError):
        settings.port = 25


def test_the_date_is_the_notifications_not_the_sending_time() -> None:
    notifier = EmailNotifier(settings=EmailSettings(), links=None)
    first = notifier.render(notification())
    later = notification().model_copy(update={"created_at": NOW + timedelta(hours=1)})
    assert first["Date"] == notifier.render(notification())["Date"]
    assert first["Date"] != notifier.render(later)["Date"]


async def test_the_largest_story_is_shown_escaped(smtp: FakeSMTP) -> None:
    story = StorySummary(id="s", text=HOSTILE + " Acme charger exploded", count=120,
                         authors=118, span_min=9)
    evidence = Evidence(detector="negative_spike", severity="warning", window_start=NOW,
                        window_end=NOW, observed=312, expected=20, score=15, stories=41,
                        largest_story=story, campaign=False)
    await make(smtp, None).send(notification(evidence=[evidence]))
    text, html = parts(smtp.messages[0])
    for body in (text, html):
        assert "Largest story: \u00d7120 by 118 accounts in 9 min of 41 stories" in body
        assert "campaign" not in body
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert all(tag != "script" for tag, _ in tags_of(html))
    assert "<script>alert(1)</script>" in text  # the plain part is text: shown as written
