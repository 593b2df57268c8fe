"""Email over SMTP: one multipart/alternative message (plain text + HTML) per notification.

Everything that comes from an incident (summary, sample text, author, watch name, who acked)
was written by strangers or copied from them, so it is cleaned, bounded and, in the HTML part,
escaped; the only links are ``safe_url`` ones. The ``Message-ID`` is derived from the
notification id, so a duplicate send (at-least-once delivery) is recognisable by any mail
client or filter; SMTP keeps no history we could ask, so ``find_sent`` cannot tell.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import re
import ssl
import textwrap
from collections.abc import Mapping, Sequence
from datetime import UTC
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr

import aiosmtplib
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from notifiers.base import ChannelSpec, Receipt, not_configured
from notifiers.errors import DeliveryError, classify_exception
from notifiers.playbook import playbook_lines
from notifiers.text import clean, console_safe, html_escape, safe_url
from streams.core.links import LinkSigner
from streams.core.records import Incident, Notification

__all__ = ["EmailNotifier", "EmailSettings", "message_id", "parse_recipients"]

log = logging.getLogger(__name__)

_WIDTH = 76            # wrap width of the text part (and of escaped HTML text lines)
_MAX_RECIPIENTS = 50   # a target is an on-call list, not a mailing list
_MAX_SAMPLES = 5
_SAMPLE_CHARS = 500
_SUMMARY_CHARS = 2000
_DIGEST_LINES = 50
_SUBJECT_CHARS = 200
# Conservative: what an on-call list needs, nothing that could smuggle a second header,
# a display name or a source route into the envelope.
_ADDRESS = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}"
    r"@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*"
)
_HOST = re.compile(r"[A-Za-z0-9._:\[\]-]{1,253}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


class EmailSettings(BaseModel):
    """How to reach the SMTP relay. Recipients come from each notification's target."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    host: str = Field(default="127.0.0.1", description="SMTP relay host name or address.")
    port: int = Field(default=25, ge=1, le=65535,
                      description="SMTP port: 25 (relay), 587 (submission + STARTTLS), 465 (TLS).")
    username: str | None = Field(default=None, description="Login for SMTP AUTH; unset: no AUTH.")
    password: SecretStr | None = Field(default=None, description="Password for SMTP AUTH.")
    from_addr: str = Field(default="escucha@localhost",
                           description="From address, e.g. 'escucha <alerts@example.com>'.")
    starttls: bool = Field(default=False,
                           description="Upgrade with STARTTLS after connecting (port 587); "
                           "fails if the server does not offer it.")
    use_tls: bool = Field(default=False, description="Connect with implicit TLS (port 465).")
    timeout_s: float = Field(default=10, gt=0, le=300,
                             description="Seconds allowed for each SMTP step.")

    @field_validator("host")
    @classmethod
    def _host_shape(cls, value: str) -> str:
        if not _HOST.fullmatch(value):
            raise ValueError("expected a host name or IP address, e.g. 'smtp.example.com'")
        return value

    @field_validator("username")
    @classmethod
    def _one_line_username(cls, value: str | None) -> str | None:
        if value is not None and (not value or _CONTROL.search(value)):
            raise ValueError("the username must be one line of printable characters")
        return value

    @field_validator("from_addr")
    @classmethod
    def _from_shape(cls, value: str) -> str:
        _, addr = parseaddr(value)
        if _CONTROL.search(value) or not _ADDRESS.fullmatch(addr):
            raise ValueError("expected an address such as 'escucha <alerts@example.com>'")
        return value

    @model_validator(mode="after")
    def _one_tls_mode(self) -> EmailSettings:
        if self.starttls and self.use_tls:
            raise ValueError("set either starttls (port 587) or use_tls (port 465), not both")
        if (self.username is None) != (self.password is None):
            raise ValueError("set both username and password for SMTP AUTH, or neither")
        return self


def parse_recipients(target: str) -> list[str]:
    """The addresses in a comma-separated target, deduplicated; DeliveryError if unusable."""
    seen: dict[str, None] = {}
    for raw in target.split(","):
        addr = raw.strip()
        if not addr:
            continue
        if not _ADDRESS.fullmatch(addr):
            shown = console_safe(addr, limit=80)
            raise DeliveryError(f"email: {shown!r} is not a plain address like 'oncall@example"
                                ".com'; fix the escalation target", retryable=False)
        seen.setdefault(addr.lower(), None)
    if not seen:
        raise DeliveryError("email: the target lists no address; fix the escalation target",
                            retryable=False)
    if len(seen) > _MAX_RECIPIENTS:
        raise DeliveryError(f"email: the target lists {len(seen)} addresses (at most "
                            f"{_MAX_RECIPIENTS}); use a mailing list", retryable=False)
    return list(seen)


def message_id(notification_id: str, *, domain: str) -> str:
    """The Message-ID of a notification: the same for every attempt, unique per notification."""
    digest = hashlib.sha256(notification_id.encode("utf-8", "replace")).hexdigest()[:32]
    return f"<escucha.{digest}@{domain}>"


def _thread_id(incident_id: str, domain: str) -> str:
    # Every message about one incident references the same root, so clients thread them.
    digest = hashlib.sha256(incident_id.encode("utf-8", "replace")).hexdigest()[:32]
    return f"<escucha.incident.{digest}@{domain}>"


def _one_line(text: str, *, limit: int) -> str:
    """For headers: no CR/LF can survive, so no second header can be injected."""
    return console_safe(text, limit=limit)


def _status(notification: Notification) -> str:
    inc = notification.incident
    if inc.state == "resolved":
        return f"resolved by {inc.resolved_by}" if inc.resolved_by else "resolved"
    if inc.state == "acknowledged":
        return f"acknowledged by {inc.acked_by}" if inc.acked_by else "acknowledged"
    if notification.kind == "escalate":
        return f"escalated to level {notification.level}, not acknowledged"
    if notification.kind == "reminder":
        return "reminder: not acknowledged yet"
    if notification.kind == "digest":
        return f"digest of {len(notification.digest)} notices"
    return ""


def _subject(notification: Notification, watch_name: str) -> str:
    inc = notification.incident
    status = _status(notification)
    text = f"[{inc.severity.upper()}] {watch_name}: {inc.detector.replace('_', ' ')}"
    return _one_line(text + (f" — {status}" if status else ""), limit=_SUBJECT_CHARS)


def _wrap(text: str, *, limit: int, indent: str = "") -> list[str]:
    """Clean, bound and wrap; long 'words' are broken too, so no line outgrows the width."""
    lines = textwrap.wrap(clean(text, limit=limit), width=_WIDTH, initial_indent=indent,
                          subsequent_indent=indent, break_on_hyphens=False)
    return lines or [indent.rstrip()]


def _html_lines(lines: Sequence[str]) -> str:
    # Escaping after wrapping keeps entities whole; the newlines render as spaces.
    return "\n".join(html_escape(line.strip(), limit=_WIDTH * 2) for line in lines)


def _link(url: str, label: str) -> str:
    return (f'<a href="{html_escape(url, limit=4096)}" rel="noopener noreferrer" '
            f'target="_blank">{html_escape(label)}</a>')


def _state_line(inc: Incident) -> str:
    if inc.state == "acknowledged" and inc.acked_by:
        when = f" at {inc.acked_at:%Y-%m-%d %H:%M} UTC" if inc.acked_at else ""
        return f"acknowledged by {inc.acked_by}{when}"
    if inc.state == "resolved" and inc.resolved_by:
        when = f" at {inc.resolved_at:%Y-%m-%d %H:%M} UTC" if inc.resolved_at else ""
        return f"resolved by {inc.resolved_by}{when}"
    return inc.state


class EmailNotifier:
    channel = "email"

    def __init__(
        self,
        *,
        settings: EmailSettings,
        links: LinkSigner | None,
        watch_names: Mapping[str, str] | None = None,
    ) -> None:
        self._settings = settings
        self._links = links
        self._watch_names = dict(watch_names or {})
        self._sender = parseaddr(settings.from_addr)[1]
        self._domain = self._sender.rpartition("@")[2] or "escucha.invalid"
        if settings.password is not None and not (settings.starttls or settings.use_tls) \
                and not _is_loopback(settings.host):
            log.warning("email: SMTP AUTH to %s without starttls/use_tls sends the password "
                        "unencrypted; set notifiers.email.starttls", settings.host)

    def _watch(self, notification: Notification) -> str:
        wid = notification.incident.watch_id
        return self._watch_names.get(wid, wid)

    def _action_links(self, inc: Incident) -> list[tuple[str, str]]:
        if self._links is None or inc.state == "resolved":
            return []
        wanted = [("Acknowledge", "ack")] if inc.state == "open" else []
        wanted.append(("Resolve", "resolve"))
        out = []
        for label, action in wanted:
            url = safe_url(self._links.url(inc.id, action))
            if url is None:  # a misconfigured public_url must not become a broken link
                log.warning("email: action link for %s is not a plain http(s) URL; check "
                            "api.public_url", inc.id)
                continue
            out.append((label, url))
        return out

    def render(self, notification: Notification, recipients: Sequence[str] = ()) -> EmailMessage:
        """The message for a notification, without sending it (also for previews)."""
        inc = notification.incident
        watch = self._watch(notification)
        subject = _subject(notification, watch)
        text: list[str] = [subject, ""]
        html: list[str] = [
            "<!DOCTYPE html>",
            '<html><head><meta charset="utf-8">',
            f"<title>{html_escape(subject)}</title></head>",
            '<body style="font-family:sans-serif;line-height:1.4">',
            f"<h2>{html_escape(subject)}</h2>",
            "<table>",
        ]
        facts = [("Severity", inc.severity.upper()), ("Watch", watch),
                 ("Detector", inc.detector), ("State", _state_line(inc)),
                 ("Level", str(notification.level)),
                 ("Opened", f"{inc.opened_at:%Y-%m-%d %H:%M} UTC")]
        for name, value in facts:
            shown = _one_line(value, limit=200)
            text.append(f"{name}: {shown}")
            html.append(f'<tr><th align="left">{name}</th><td>{html_escape(shown)}</td></tr>')
        html.append("</table>")

        summary = _wrap(inc.summary, limit=_SUMMARY_CHARS)
        text += ["", *summary]
        html.append(f"<p>{_html_lines(summary)}</p>")

        if notification.kind == "digest" and notification.digest:
            text += ["", "Since the last message:"]
            html.append("<h3>Since the last message</h3>\n<ul>")
            for line in notification.digest[:_DIGEST_LINES]:
                wrapped = _wrap(line, limit=300, indent="  ")
                text += ["-" + wrapped[0][1:], *wrapped[1:]]
                html.append(f"<li>{_html_lines(wrapped)}</li>")
            html.append("</ul>")

        if inc.samples:
            text += ["", "What people say:"]
            html.append("<h3>What people say</h3>\n<ul>")
            for sample in inc.samples[:_MAX_SAMPLES]:
                who = _one_line(sample.author, limit=64)
                said = _wrap(sample.text, limit=_SAMPLE_CHARS, indent="    ")
                url = safe_url(sample.url)
                text.append(f"- @{who} (priority {sample.priority}):")
                text += said
                item = (f"<li><b>@{html_escape(who)}</b> (priority {sample.priority}):<br>\n"
                        f"{_html_lines(said)}")
                if url:
                    text.append(f"    {url}")
                    item += "<br>\n" + _link(url, "open")
                html.append(item + "</li>")
            html.append("</ul>")

        if inc.playbook is not None:
            book = playbook_lines(inc.playbook, inc.language)
            text += ["", *(w for line in book for w in _wrap(line, limit=600))]
            html.append("<h3>" + html_escape(_one_line(book[0], limit=200)) + "</h3>\n<ul>")
            html += [f"<li>{_html_lines(_wrap(line, limit=600))}</li>" for line in book[1:]]
            html.append("</ul>")

        actions = self._action_links(inc)
        if actions:
            text += ["", "Act on it (each link asks you to confirm first):"]
            text += [f"  {label}: {url}" for label, url in actions]
            html.append("<p>" + " &middot; ".join(_link(u, label) for label, u in actions)
                        + "</p>")

        footer = _one_line(f"incident {inc.id} · notification {notification.id}", limit=400)
        text += ["", "-- ", footer]
        html += [f'<p style="color:#666;font-size:small">{html_escape(footer)}</p>',
                 "</body></html>"]

        msg = EmailMessage()
        msg["Subject"] = subject
        msg["From"] = self._settings.from_addr
        if recipients:
            msg["To"] = ", ".join(recipients)
        created = notification.created_at
        # The notification's own time, not now: every retry produces the same message.
        msg["Date"] = format_datetime(created if created.tzinfo else created.replace(tzinfo=UTC))
        msg["Message-ID"] = message_id(notification.id, domain=self._domain)
        msg["References"] = _thread_id(inc.id, self._domain)
        msg["X-Escucha-Incident"] = _one_line(inc.id, limit=200)
        msg["X-Escucha-Severity"] = inc.severity
        # RFC 3834: no vacation auto-replies to an alert address.
        msg["Auto-Submitted"] = "auto-generated"
        if inc.severity == "critical":
            msg["Importance"] = "high"
            msg["X-Priority"] = "1"
        msg.set_content("\n".join(text) + "\n")
        msg.add_alternative("\n".join(html) + "\n", subtype="html")
        return msg

    async def send(self, notification: Notification) -> Receipt:
        recipients = parse_recipients(notification.target)
        message = self.render(notification, recipients)
        s = self._settings
        password = s.password.get_secret_value() if s.password is not None else None
        try:
            refused, _ = await aiosmtplib.send(
                message, sender=self._sender, recipients=recipients, hostname=s.host,
                port=s.port, username=s.username, password=password, use_tls=s.use_tls,
                start_tls=s.starttls, timeout=s.timeout_s,
            )
        except Exception as exc:  # aiosmtplib raises many types; _classify sorts them
            raise _redact(_classify(exc), password) from exc
        mid = str(message["Message-ID"])
        detail = f"accepted by {s.host}:{s.port} for {len(recipients) - len(refused)} of " \
                 f"{len(recipients)} recipient(s)"
        if refused:
            # Not an error: the others have it, and a retry would send them a duplicate.
            shown = ", ".join(f"{addr} ({resp.code})" for addr, resp in list(refused.items())[:5])
            detail += f"; refused: {shown}"
            log.warning("email: %s partly refused: %s", notification.id, shown)
        return Receipt(external_id=mid, detail=detail)

    async def find_sent(self, notification: Notification) -> Receipt | None:
        return None  # SMTP keeps no history we can query; the Message-ID marks duplicates

    async def close(self) -> None:
        return None  # a connection per send: nothing held open


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _server_text(message: str) -> str:
    return _one_line(message, limit=160)


def _transient(code: int) -> bool:
    return 400 <= code < 500


def _classify(exc: BaseException) -> DeliveryError:
    """4xx and transport failures are worth another try; 5xx and configuration errors not."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        refused = exc.recipients
        shown = "; ".join(f"{r.recipient} ({r.code} {_server_text(r.message)})"
                          for r in refused[:5])
        return DeliveryError(f"email: every recipient was refused: {shown}",
                             retryable=any(_transient(r.code) for r in refused))
    if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
        return DeliveryError(
            f"email: login refused ({exc.code} {_server_text(exc.message)}); check "
            "notifiers.email.username and password", retryable=_transient(exc.code))
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        what = type(exc).__name__.removeprefix("SMTP")
        return DeliveryError(f"email: {what}: server answered {exc.code} "
                             f"{_server_text(exc.message)}", retryable=_transient(exc.code))
    if isinstance(exc, aiosmtplib.SMTPNotSupported):
        return DeliveryError(f"email: {_server_text(exc.message)}; check notifiers.email."
                             "starttls/use_tls and whether the server offers AUTH",
                             retryable=False)
    if isinstance(exc, ssl.SSLCertVerificationError):
        return DeliveryError(f"email: the server's TLS certificate is not trusted "
                             f"({_server_text(str(exc))})", retryable=False)
    if isinstance(exc, OSError | TimeoutError | aiosmtplib.SMTPTimeoutError
                  | aiosmtplib.SMTPConnectError | aiosmtplib.SMTPServerDisconnected):
        return classify_exception("email", exc)
    if isinstance(exc, aiosmtplib.SMTPException):
        return DeliveryError(f"email: {type(exc).__name__}: {_server_text(exc.message)}",
                             retryable=False)
    return DeliveryError(f"email: unexpected {type(exc).__name__}", retryable=False)


def _redact(error: DeliveryError, secret: str | None) -> DeliveryError:
    """A server that echoes what it was sent must not put the password into our logs."""
    if not secret or secret not in error.reason:
        return error
    return DeliveryError(error.reason.replace(secret, "***"), retryable=error.retryable,
                         retry_after=error.retry_after)

CHANNEL = ChannelSpec(
    name="email", settings=EmailSettings, default_on=False, updatable=False,
    target_type=list[str], target_help="Addresses.", personal=True,
    build=lambda s, ctx: EmailNotifier(settings=s, links=ctx.links, watch_names=ctx.watch_names),
    problem=not_configured("email"), address=lambda value: ",".join(value),
)
