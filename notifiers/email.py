"""Email over SMTP: one multipart/alternative message (plain text + HTML) per notification.

The message itself (escaping, threading) is built by ``notifiers.email_message``. Its
``Message-ID`` is derived from the notification id, so a duplicate send (at-least-once
delivery) is recognisable by any mail client or filter; SMTP keeps no history we could ask,
so ``find_sent`` cannot tell. The receipt's ``external_id`` is that Message-ID: the deliver
stage hands it back as ``update_of``, and every later message about the incident to the same
addresses (acknowledged, escalated, resolved) replies to it in one thread.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import ssl
from collections.abc import Mapping, Sequence
from email.message import EmailMessage
from email.utils import parseaddr

import aiosmtplib
from pydantic import ConfigDict, Field, SecretStr, field_validator, model_validator

from notifiers.base import ChannelSpec, Receipt, not_configured
from notifiers.email_message import Letterhead, build_message, message_id
from notifiers.errors import DeliveryError, classify_exception
from notifiers.stories import watch_label
from notifiers.text import console_safe, safe_url
from streams.core.links import LinkSigner
from streams.core.records import Incident, Notification
from streams.i18n import Lang
from streams.i18n.fields import ChannelLocale

__all__ = ["EmailNotifier", "EmailSettings", "message_id", "parse_recipients"]

log = logging.getLogger(__name__)

_MAX_RECIPIENTS = 50   # a target is an on-call list, not a mailing list
# Conservative: what an on-call list needs, nothing that could smuggle a second header,
# a display name or a source route into the envelope.
_ADDRESS = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}"
    r"@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*"
)
_HOST = re.compile(r"[A-Za-z0-9._:\[\]-]{1,253}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


class EmailSettings(ChannelLocale):
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
        return watch_label(notification.incident, self._watch_names)

    def _action_links(self, inc: Incident, lang: Lang) -> list[tuple[str, str]]:
        if self._links is None or inc.state == "resolved":
            return []
        wanted = [(lang._("Acknowledge"), "ack")] if inc.state == "open" else []
        wanted.append((lang._("Resolve"), "resolve"))
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
        lang = self._settings.lang_for(notification.target)
        head = Letterhead(from_addr=self._settings.from_addr, domain=self._domain,
                          watch_name=self._watch(notification),
                          actions=self._action_links(notification.incident, lang), lang=lang)
        return build_message(notification, head, recipients)

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
    return console_safe(message, limit=160)


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
    name="email", settings=EmailSettings, default_on=False, updatable=True,
    target_type=list[str], target_help="Addresses.", personal=True,
    build=lambda s, ctx: EmailNotifier(settings=s, links=ctx.links, watch_names=ctx.watch_names),
    problem=not_configured("email"), address=lambda value: ",".join(value),
)
