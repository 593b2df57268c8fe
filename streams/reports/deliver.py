"""Render a report once and hand it to its channels: a PDF file, an email, a Slack upload.

The scheduler (agents/report/agent.py) and ``escucha report send`` both come through here, so a
report run by hand is exactly what the schedule would have sent. Each channel raises
:class:`DeliveryError` (``retryable`` says whether another try can help); the caller records
outcomes in the ledger and decides about retries.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import ssl
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from pathlib import Path

import aiosmtplib

from notifiers.base import Receipt
from notifiers.email import EmailSettings
from notifiers.errors import DeliveryError, classify_exception
from notifiers.slack_files import SlackFile, SlackFileUploader
from notifiers.text import console_safe
from streams.config.reports import ReportSettings
from streams.reports.charts import render_charts
from streams.reports.data import ReportData
from streams.reports.pdf import render_pdf
from streams.reports.render import chart_titles, html_body, slack_text, subject, text_body

__all__ = ["RenderedReport", "ReportSender", "email_message", "pdf_name", "render"]


@dataclass(frozen=True)
class RenderedReport:
    data: ReportData
    charts: dict[str, bytes]  # '<kind>-<watch id>' -> PNG
    text: str
    pdf: bytes
    slack: str

    def cids(self, domain: str) -> dict[str, str]:
        """Content-IDs of the charts, derived from the report: a re-send is byte-identical."""
        tag = hashlib.sha256(f"{self.data.report_id}|{self.data.end.isoformat()}".encode()
                             ).hexdigest()[:12]
        return {k: f"{k}.{tag}@{domain}" for k in self.charts}


def render(data: ReportData) -> RenderedReport:
    """Every format of the report (CPU-bound, ~1 s: run it in a thread from async code)."""
    charts = render_charts(data)
    return RenderedReport(data=data, charts=charts, text=text_body(data),
                          pdf=render_pdf(data, charts), slack=slack_text(data))


def pdf_name(data: ReportData) -> str:
    end = data.local(data.end)
    when = f"{end:%Y-%m-%dT%H%M}" if data.step == "h" else f"{end:%Y-%m-%d}"
    return f"{data.report_id}-{when}.pdf"


def _message_id(report_id: str, end: datetime, domain: str) -> str:
    digest = hashlib.sha256(f"{report_id}|{end.isoformat()}".encode()).hexdigest()[:32]
    return f"<escucha.report.{digest}@{domain}>"


def email_message(rendered: RenderedReport, *, from_addr: str, recipients: list[str],
                  attach_pdf: bool) -> EmailMessage:
    """multipart/alternative: the text part, and multipart/related holding the HTML with its
    charts inline (``cid:``); with ``attach_pdf`` the whole is wrapped in multipart/mixed
    beside the PDF."""
    data = rendered.data
    domain = parseaddr(from_addr)[1].rpartition("@")[2] or "escucha.invalid"
    cids = rendered.cids(domain)
    msg = EmailMessage()
    msg["Subject"] = subject(data)
    msg["From"] = from_addr
    msg["To"] = ", ".join(recipients)
    msg["Date"] = format_datetime(data.generated_at.astimezone(UTC))
    msg["Message-ID"] = _message_id(data.report_id, data.end, domain)
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies to a report
    msg.set_content(rendered.text)
    msg.add_alternative(html_body(data, cids), subtype="html")
    html_part = msg.get_payload()[1]  # type: ignore[index]
    assert isinstance(html_part, EmailMessage)  # what add_alternative made
    titles = chart_titles()
    for key, png in rendered.charts.items():
        kind = key.split("-", 1)[0]
        html_part.add_related(png, maintype="image", subtype="png", cid=f"<{cids[key]}>",
                              filename=f"{key}.png", disposition="inline")
        image = html_part.get_payload()[-1]  # type: ignore[index]
        assert isinstance(image, EmailMessage)
        image["Content-Description"] = titles.get(kind, kind)
    if attach_pdf:
        msg.add_attachment(rendered.pdf, maintype="application", subtype="pdf",
                           filename=pdf_name(data))
    return msg


def _smtp_error(exc: BaseException) -> DeliveryError:
    """4xx and transport failures are worth another try; 5xx and configuration are not."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        codes = [r.code for r in exc.recipients]
        return DeliveryError(f"email: every recipient was refused ({codes})",
                             retryable=any(400 <= c < 500 for c in codes))
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        text = console_safe(exc.message, limit=160)
        return DeliveryError(f"email: server answered {exc.code} {text}",
                             retryable=400 <= exc.code < 500)
    if isinstance(exc, ssl.SSLCertVerificationError):
        return DeliveryError("email: the server's TLS certificate is not trusted",
                             retryable=False)
    if isinstance(exc, OSError | TimeoutError | aiosmtplib.SMTPTimeoutError
                  | aiosmtplib.SMTPConnectError | aiosmtplib.SMTPServerDisconnected):
        return classify_exception("email", exc)
    return DeliveryError(f"email: {type(exc).__name__}", retryable=False)


def _write_atomically(path: Path, content: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # A reader (a file share, a sync client) never sees half a PDF.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(content)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class ReportSender:
    """Sends rendered reports to the channels a ReportSettings names."""

    def __init__(self, *, email: EmailSettings | None, slack_token: str | None,
                 slack_base_url: str = "https://slack.com/api/") -> None:
        self._email = email
        self._slack = (SlackFileUploader(token=slack_token, base_url=slack_base_url)
                       if slack_token else None)

    async def send(self, report: ReportSettings, rendered: RenderedReport,
                   channel: str) -> Receipt:
        if channel == "pdf":
            return await self._pdf(report, rendered)
        if channel == "email":
            return await self._mail(report, rendered)
        if channel == "slack":
            return await self._slack_upload(report, rendered)
        raise DeliveryError(f"report: unknown channel {channel!r}", retryable=False)

    async def _pdf(self, report: ReportSettings, rendered: RenderedReport) -> Receipt:
        if report.pdf_dir is None:
            raise DeliveryError("pdf: the report has no pdf_dir", retryable=False)
        path = report.pdf_dir / pdf_name(rendered.data)
        try:
            await asyncio.to_thread(_write_atomically, path, rendered.pdf)
        except OSError as exc:
            raise DeliveryError(f"pdf: cannot write {path}: {exc.strerror}",
                                retryable=False) from exc
        return Receipt(external_id=str(path), detail=f"wrote {len(rendered.pdf)} bytes")

    async def _mail(self, report: ReportSettings, rendered: RenderedReport) -> Receipt:
        s = self._email
        if s is None or not report.email:
            raise DeliveryError("email: notifiers.email is not configured", retryable=False)
        msg = email_message(rendered, from_addr=s.from_addr, recipients=report.email,
                            attach_pdf=report.attach_pdf)
        password = s.password.get_secret_value() if s.password is not None else None
        try:
            refused, _ = await aiosmtplib.send(
                msg, sender=parseaddr(s.from_addr)[1], recipients=report.email,
                hostname=s.host, port=s.port, username=s.username, password=password,
                use_tls=s.use_tls, start_tls=s.starttls, timeout=s.timeout_s)
        except Exception as exc:  # aiosmtplib raises many types; _smtp_error sorts them
            error = _smtp_error(exc)
            if password and password in error.reason:  # a server echoing what it was sent
                error = DeliveryError(error.reason.replace(password, "***"),
                                      retryable=error.retryable)
            raise error from exc
        accepted = len(report.email) - len(refused)
        return Receipt(external_id=str(msg["Message-ID"]),
                       detail=f"accepted for {accepted} of {len(report.email)} recipient(s)")

    async def _slack_upload(self, report: ReportSettings, rendered: RenderedReport) -> Receipt:
        if self._slack is None or report.slack is None:
            raise DeliveryError("slack: notifiers.slack.token is not set", retryable=False)
        titles = chart_titles()
        # The volume chart says the most at a glance; the full report is the PDF and email.
        files = [SlackFile(filename=f"{key}.png", content=png,
                           title=f"{w.name}: {titles['volume'].lower()}",
                           alt_text=titles["volume"])
                 for w in rendered.data.watches
                 for key, png in rendered.charts.items() if key == f"volume-{w.watch_id}"]
        return await self._slack.upload(report.slack, files[:10], comment=rendered.slack)
