"""A recording SMTP server: aiosmtpd's ``Controller`` on 127.0.0.1 with a free port.

Real SMTP on the wire (EHLO, AUTH PLAIN/LOGIN, MAIL, RCPT, DATA), so ``aiosmtplib`` talks to
it unchanged. Scripted failures answer RCPT or DATA with a chosen code; ``go_down`` and
``come_up`` stop and restart the server on the same port, as a relay restart would.

aiosmtpd's threaded controller runs the server in its own thread and event loop: the
handler's state is shared through a lock, and starting/stopping runs in a worker thread so
the test's loop is never blocked.
"""

from __future__ import annotations

import asyncio
import hmac
import socket
import threading
import warnings
from dataclasses import dataclass
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default as default_policy
from typing import Any, Literal

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

__all__ = ["FakeSMTP", "RecordedEnvelope"]

Stage = Literal["rcpt", "data"]

_TEXTS = {
    421: "4.3.2 Service shutting down, try again later",
    450: "4.2.1 Mailbox busy, try again later",
    451: "4.3.0 Local error in processing, try again later",
    452: "4.3.1 Insufficient system storage",
    550: "5.1.1 Mailbox unavailable",
    552: "5.3.4 Message size exceeds fixed limit",
    553: "5.1.3 Mailbox name not allowed",
    554: "5.6.0 Transaction failed",
}


@dataclass(frozen=True)
class RecordedEnvelope:
    """What the server accepted: the SMTP envelope, not the headers."""

    mail_from: str
    rcpt_tos: list[str]
    login: str | None  # the AUTH login, when the session authenticated


@dataclass
class _Refusal:
    stage: Stage
    code: int
    remaining: int


def _free_port(host: str) -> int:
    # aiosmtpd's controller connects to its own port to check it is up, so it needs a
    # concrete port: let the kernel pick one, then hand it over.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class FakeSMTP:
    """An SMTP server on loopback that keeps every accepted message.

    ``messages`` are parsed with ``email.policy.default``; ``envelopes`` hold the envelope of
    each, in the same order. With ``username``/``password`` every transaction requires AUTH
    (PLAIN or LOGIN, allowed without TLS since this is loopback only).
    """

    def __init__(
        self,
        *,
        username: str | None = None,
        password: str | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        if (username is None) != (password is None):
            raise ValueError("FakeSMTP needs both username and password, or neither")
        self.host = host
        self.username = username
        self.password = password
        self.messages: list[EmailMessage] = []
        self.envelopes: list[RecordedEnvelope] = []
        self.auth_attempts: list[tuple[str, bool]] = []  # (login, accepted)
        self._port: int | None = None
        self._controller: Controller | None = None
        self._lock = threading.Lock()
        self._refusals: list[_Refusal] = []

    # -- lifecycle -------------------------------------------------------------------------
    async def start(self) -> None:
        if self._controller is not None:
            raise RuntimeError("FakeSMTP is already running")
        if self._port is None:
            self._port = _free_port(self.host)
        kwargs: dict[str, Any] = {"server_hostname": "fake-smtp.test"}  # no getfqdn() lookup
        if self.username is not None:
            kwargs.update(authenticator=self._authenticate, auth_required=True,
                          auth_require_tls=False)
        controller = _Controller(_Handler(self), hostname=self.host, port=self._port,
                                ready_timeout=10, **kwargs)
        await asyncio.to_thread(controller.start)
        self._controller = controller

    async def stop(self) -> None:
        controller, self._controller = self._controller, None
        if controller is not None:
            await asyncio.to_thread(controller.stop)

    async def go_down(self) -> None:
        """Stop listening; connections are refused until ``come_up``."""
        await self.stop()

    async def come_up(self) -> None:
        """Listen again, on the same port."""
        await self.start()

    async def __aenter__(self) -> FakeSMTP:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("FakeSMTP has no port yet: await start() or use 'async with'")
        return self._port

    @property
    def running(self) -> bool:
        return self._controller is not None

    def replies_to(self, message_id: str) -> list[EmailMessage]:
        """The accepted messages a mail client shows as replies to ``message_id``: those whose
        ``In-Reply-To`` names it (RFC 5322 3.6.4)."""
        with self._lock:
            return [m for m in self.messages if m["In-Reply-To"] == message_id]

    # -- scripting ---------------------------------------------------------------------------
    def refuse_next(self, code: int = 451, *, times: int = 1, at: Stage = "rcpt") -> None:
        """Answer the next ``times`` RCPT commands (one per recipient) or DATA commands with
        ``code``: 4xx is a temporary refusal, 5xx a permanent one."""
        if not 400 <= code <= 599 or times < 1 or at not in ("rcpt", "data"):
            raise ValueError("refuse_next needs a 4xx/5xx code, times >= 1, at 'rcpt' or 'data'")
        with self._lock:
            self._refusals.append(_Refusal(at, code, times))

    def _take_refusal(self, stage: Stage) -> str | None:
        with self._lock:
            for refusal in self._refusals:
                if refusal.stage == stage:
                    refusal.remaining -= 1
                    if refusal.remaining == 0:
                        self._refusals.remove(refusal)
                    text = _TEXTS.get(refusal.code, f"{refusal.code // 100}.0.0 Refused")
                    return f"{refusal.code} {text}"
        return None

    def _record(self, envelope: Envelope, session: Session) -> None:
        raw = envelope.original_content or b""
        if isinstance(envelope.content, bytes) and not raw:
            raw = envelope.content
        message = BytesParser(policy=default_policy).parsebytes(raw)
        auth = session.auth_data  # what _authenticate returned on success
        with self._lock:
            self.messages.append(message)
            self.envelopes.append(RecordedEnvelope(
                mail_from=str(envelope.mail_from), rcpt_tos=list(envelope.rcpt_tos),
                login=auth.login.decode() if isinstance(auth, LoginPassword) else None))

    def _authenticate(self, server: SMTP, session: Session, envelope: Envelope,
                      mechanism: str, auth_data: Any) -> AuthResult:
        assert self.username is not None and self.password is not None
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        ok = hmac.compare_digest(auth_data.login, self.username.encode()) and \
            hmac.compare_digest(auth_data.password, self.password.encode())
        with self._lock:
            self.auth_attempts.append((auth_data.login.decode("utf-8", "replace"), ok))
        return AuthResult(success=ok, handled=False, auth_data=auth_data)


class _Controller(Controller):
    def factory(self) -> SMTP:
        # AUTH without TLS is what aiosmtpd warns about; on loopback only, it is the point.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Requiring AUTH while not requiring TLS")
            return SMTP(self.handler, **self.SMTP_kwargs)


class _Handler:
    """aiosmtpd handler hooks; runs on the controller's thread."""

    def __init__(self, fake: FakeSMTP) -> None:
        self._fake = fake

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope,
                          address: str, rcpt_options: list[str]) -> str:
        refusal = self._fake._take_refusal("rcpt")
        if refusal is not None:
            return refusal
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        refusal = self._fake._take_refusal("data")
        if refusal is not None:
            return refusal
        self._fake._record(envelope, session)
        return "250 2.0.0 Message accepted for delivery"
