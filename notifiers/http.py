"""What HTTP notifiers share: the aiohttp session, and posting to a URL that is a secret.

Chat webhooks (Teams Workflows, Google Chat) carry their credential in the URL itself
(``sig=…``, ``key=…&token=…``). aiohttp puts the URL into many exception strings and some
services echo it in error pages, so :func:`post_secret_url` never lets either through: a
transport failure is described from the exception's type and errno only, and an answer's text
is scrubbed of every part of the URL before it may appear in an error.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import aiohttp
from pydantic import SecretStr

from notifiers.errors import DeliveryError, classify_exception

__all__ = ["Answer", "LazySession", "check_secret_url", "post_secret_url", "scrub",
           "url_secrets"]

_ANSWER_BYTES = 64 * 1024
_MIN_SECRET_PART = 6  # shorter path or query pieces ("v1", "api") are not worth hiding


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


@dataclass(frozen=True, kw_only=True)
class Answer:
    status: int
    body: bytes
    retry_after: str | None


def _transport_reason(exc: BaseException, timeout_s: float) -> str:
    if isinstance(exc, TimeoutError):
        return f"no answer within {timeout_s:g}s"
    name = type(exc).__name__
    code = getattr(exc, "errno", None)
    if isinstance(code, int) and code in errno.errorcode:
        name += f" [{errno.errorcode[code]}]"
    return name


async def post_secret_url(
    session: aiohttp.ClientSession, url: str, payload: Any, *, label: str, timeout_s: float,
) -> Answer:
    """POST ``payload`` as JSON to ``url`` (a secret) and return the answer, its body bounded.

    A transport failure raises a retryable :class:`DeliveryError` that names ``label``, never
    the URL, and is raised ``from None`` so no traceback carries aiohttp's text. Redirects are
    not followed: they would replay the card, and its signed links, to an unconfigured place.
    """
    timeout = aiohttp.ClientTimeout(total=timeout_s)
    try:
        async with session.post(url, json=payload, timeout=timeout,
                                allow_redirects=False) as resp:
            chunks: list[bytes] = []
            size = 0
            async for chunk in resp.content.iter_chunked(8192):
                chunks.append(chunk)
                size += len(chunk)
                if size >= _ANSWER_BYTES:
                    break
            return Answer(status=resp.status, body=b"".join(chunks)[:_ANSWER_BYTES],
                          retry_after=resp.headers.get("Retry-After"))
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        retryable = classify_exception(label, exc).retryable
        raise DeliveryError(f"{label}: {_transport_reason(exc, timeout_s)}",
                            retryable=retryable) from None
