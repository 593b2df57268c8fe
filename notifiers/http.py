"""What HTTP notifiers share: the aiohttp session, finding a named target, posting to a URL
that is a secret, and turning a refusal into a :class:`DeliveryError`.

Chat webhooks (Teams Workflows, Google Chat) and many generic hooks carry their credential in
the URL itself (``sig=…``, ``key=…&token=…``, ``/hooks/<token>``). aiohttp puts the URL into
many exception strings and some services echo it in error pages, so :func:`post` never lets
either through: a transport failure is described from the exception's type and errno only,
and :func:`error_detail` scrubs an answer's text of every part of the URL before it may
appear in an error.
"""

from __future__ import annotations

import errno
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlsplit

import aiohttp
from pydantic import SecretStr

from notifiers.errors import DeliveryError, classify_exception, classify_http
from notifiers.text import console_safe

__all__ = ["Answer", "LazySession", "check_secret_url", "configured", "error_detail", "post",
           "read_bounded", "refused", "scrub", "url_secrets"]

log = logging.getLogger(__name__)

T = TypeVar("T")

_ANSWER_BYTES = 64 * 1024
_MIN_SECRET_PART = 6  # shorter path or query pieces ("v1", "api") are not worth hiding
_REDIRECT_HINT = "redirects are not followed: configure the final URL"


class LazySession:
    def __init__(self, session: aiohttp.ClientSession | None = None) -> None:
        self._session = session
        self._owned = session is None  # a session we were given is the caller's to close

    def get(self) -> aiohttp.ClientSession:
        # Created on first use: a ClientSession must be made inside the running loop.
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
            self._owned = True
        return self._session

    async def close(self) -> None:
        if self._owned and self._session is not None and not self._session.closed:
            await self._session.close()


_LOOPBACK = ("127.0.0.1", "::1", "localhost")


def check_secret_url(value: SecretStr) -> SecretStr:
    """A pydantic validator body for a credential-bearing URL: https (plain http only to a
    loopback test server), with a host. The message never repeats the URL."""
    try:
        parts = urlsplit(value.get_secret_value().strip())
    except ValueError:
        raise ValueError("must be an https:// URL") from None
    if not parts.hostname or parts.scheme not in ("http", "https"):
        raise ValueError("must be an https:// URL with a host")
    if parts.scheme == "http" and parts.hostname not in _LOOPBACK:
        # Over plain http the URL, which is the credential, crosses the network in clear.
        raise ValueError("must be https:// (plain http only to 127.0.0.1 or localhost)")
    return SecretStr(value.get_secret_value().strip())


def url_secrets(url: str) -> list[str]:
    """The pieces of a credential-bearing URL that must never be shown: the URL, its path and
    query, and every path segment and query value long enough to be a token."""
    parts = urlsplit(url)
    pieces = [url, parts.path, parts.query]
    pieces += [seg for seg in parts.path.split("/") if len(seg) >= _MIN_SECRET_PART]
    pieces += [value for _, value in parse_qsl(parts.query) if len(value) >= _MIN_SECRET_PART]
    # Longest first, so a token inside the path is not half-replaced before the path is.
    return sorted({p for p in pieces if p}, key=len, reverse=True)


def scrub(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, "***")
    return text


def configured(entries: Mapping[str, T], target: str, *, channel: str,
               kind: str) -> tuple[T, str]:
    """The entry of ``notifiers.<channel>.<kind>s`` a notification's target names, and the
    label its errors and logs use (``"<channel> <name>"``, never the URL). An unknown name is
    a permanent failure that lists the known ones."""
    name = console_safe(target, limit=100)
    entry = entries.get(target)
    if entry is None:
        known = ", ".join(sorted(entries)) or "none configured"
        raise DeliveryError(f"{channel}: unknown {kind} {name!r}; add it to "
                            f"notifiers.{channel}.{kind}s (known: {known})", retryable=False)
    return entry, f"{channel} {name}"


@dataclass(frozen=True, kw_only=True)
class Answer:
    status: int
    body: bytes
    retry_after: str | None

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


def _transport_reason(exc: BaseException, timeout_s: float) -> str:
    if isinstance(exc, TimeoutError):
        return f"no answer within {timeout_s:g}s"
    name = type(exc).__name__
    code = getattr(exc, "errno", None)
    if isinstance(code, int) and code in errno.errorcode:
        name += f" [{errno.errorcode[code]}]"
    if isinstance(exc, aiohttp.ClientConnectorError | ConnectionRefusedError):
        name += " (is the receiver up, and the configured URL right?)"
    return name


async def read_bounded(resp: aiohttp.ClientResponse) -> bytes:
    """The answer's body, at most 64 KiB of it: never unbounded into memory."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in resp.content.iter_chunked(8192):
        chunks.append(chunk)
        size += len(chunk)
        if size >= _ANSWER_BYTES:
            break
    return b"".join(chunks)[:_ANSWER_BYTES]


async def post(
    session: aiohttp.ClientSession, url: str, *, label: str, timeout_s: float,
    json_body: Any = None, data: bytes | None = None, headers: Mapping[str, str] | None = None,
    read_body: bool = True,
) -> Answer:
    """POST ``json_body`` (as JSON) or ``data`` to ``url`` (a secret) and return the answer,
    its body bounded (or empty with ``read_body=False``).

    A transport failure raises a retryable :class:`DeliveryError` that names ``label``, never
    the URL, and is raised ``from None`` so no traceback carries aiohttp's text. Redirects are
    not followed: they would replay the message, its signed links and signature, to a place
    nobody configured.
    """
    timeout = aiohttp.ClientTimeout(total=timeout_s)
    try:
        async with session.post(url, json=json_body, data=data, headers=headers,
                                timeout=timeout, allow_redirects=False) as resp:
            body = await read_bounded(resp) if read_body else b""
            return Answer(status=resp.status, body=body,
                          retry_after=resp.headers.get("Retry-After"))
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        retryable = classify_exception(label, exc).retryable
        reason = f"{label}: {_transport_reason(exc, timeout_s)}"
        log.debug("%s: not delivered: %s", label, reason)
        raise DeliveryError(reason, retryable=retryable) from None


def error_detail(body: bytes, fields: Sequence[str], url: str) -> str:
    """A JSON ``{"error": {...}}`` answer (Google's, Logic Apps') as one line of its string
    ``fields``, scrubbed of every part of ``url`` (the secret it was posted to); "" for
    anything else."""
    try:
        data = json.loads(body)
    except ValueError:
        return ""  # an HTML error page may echo the request URL: never shown
    error = data.get("error") if isinstance(data, dict) else None
    if not isinstance(error, dict):
        return ""
    text = " ".join(error[k] for k in fields if isinstance(error.get(k), str))
    return console_safe(scrub(text, url_secrets(url)), limit=160)


def refused(label: str, answer: Answer, *, hints: Mapping[int, str], detail: str = "",
            what: str = "") -> DeliveryError:
    """The error for an answer that is not 2xx: retryable or not by status (Retry-After
    kept), with the service's ``detail`` and the hint for that status, which says what to
    fix. ``what`` (a notification id) only goes to the debug log."""
    hint = _REDIRECT_HINT if 300 <= answer.status < 400 else hints.get(answer.status, "")
    err = classify_http(label, answer.status, "; ".join(p for p in (detail, hint) if p),
                        answer.retry_after)
    log.debug("%s: %s refused: %s", label, what, err.reason)
    return err
