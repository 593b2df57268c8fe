"""Signed, expiring action links (acknowledge/resolve) for email and push.

A link carries the incident id, the action and an expiry, signed with HMAC-SHA256. It needs
no login: whoever holds an unexpired link may perform that one action on that one incident,
which is what an on-call responder on a phone needs. Opening the link (GET) only shows a
confirmation page; the action happens on POST, so mail scanners that prefetch links change
nothing.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path

__all__ = ["LinkError", "LinkSigner", "SignedAction", "load_or_create_secret"]

_ACTIONS = ("ack", "resolve")


class LinkError(Exception):
    """The link is malformed, tampered with or expired; the message says which."""


class SignedAction:
    __slots__ = ("action", "expires", "incident_id")

    def __init__(self, incident_id: str, action: str, expires: datetime) -> None:
        self.incident_id = incident_id
        self.action = action
        self.expires = expires


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class LinkSigner:
    def __init__(
        self, *, secret: bytes, base_url: str, ttl: timedelta = timedelta(hours=24)
    ) -> None:
        if len(secret) < 16:
            raise ValueError("the link secret must be at least 16 bytes")
        self._secret = secret
        self.base_url = base_url.rstrip("/")
        self.ttl = ttl

    def _sign(self, payload: bytes) -> bytes:
        return hmac.new(self._secret, b"escucha-link:" + payload, hashlib.sha256).digest()

    def token(self, incident_id: str, action: str, *, now: datetime | None = None) -> str:
        if action not in _ACTIONS:
            raise ValueError(f"unknown action {action!r}")
        expires = (now or datetime.now(UTC)) + self.ttl
        payload = json.dumps({"i": incident_id, "a": action, "e": int(expires.timestamp())},
                             separators=(",", ":")).encode()
        return f"{_b64(payload)}.{_b64(self._sign(payload))}"

    def url(self, incident_id: str, action: str, *, now: datetime | None = None) -> str:
        return f"{self.base_url}/a/{self.token(incident_id, action, now=now)}"

    def verify(self, token: str, *, now: datetime | None = None) -> SignedAction:
        try:
            body, sig = token.split(".", 1)
            payload, given = _unb64(body), _unb64(sig)
        except (ValueError, TypeError) as exc:
            raise LinkError("this link is malformed") from exc
        if not hmac.compare_digest(self._sign(payload), given):
            raise LinkError("this link's signature does not match (altered or not ours)")
        try:
            data = json.loads(payload)
            incident_id, action, exp = str(data["i"]), str(data["a"]), int(data["e"])
        except (ValueError, KeyError, TypeError) as exc:
            raise LinkError("this link is malformed") from exc
        if action not in _ACTIONS:
            raise LinkError("this link's action is unknown")
        expires = datetime.fromtimestamp(exp, UTC)
        if (now or datetime.now(UTC)) >= expires:
            raise LinkError(f"this link expired at {expires:%Y-%m-%d %H:%M} UTC")
        return SignedAction(incident_id, action, expires)


def load_or_create_secret(datadir: Path) -> bytes:
    """The link secret kept in ``<datadir>/link-secret``, created (mode 0600) if missing.

    Fine for one machine; with several workers set ``api.link_secret`` so links signed by one
    verify on all.
    """
    path = datadir / "link-secret"
    try:
        return path.read_bytes()
    except FileNotFoundError:
        datadir.mkdir(parents=True, exist_ok=True)
        secret = secrets.token_bytes(32)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(secret)
        return secret
