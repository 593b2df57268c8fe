"""Sign-in, sessions and CSRF for the console.

Sessions are stateless signed cookies, so any worker behind a load balancer accepts them
(workers share ``api.link_secret``). The CSRF token is derived from the session id with the
same key (the synchroniser-token pattern without server state): a page from another site
cannot read it, so it cannot forge a form post even though the browser sends the cookie.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace

from streams.config.console import ConsoleToken, ConsoleUser, Role
from streams.core.security import bearer_token, same_secret

__all__ = ["Authenticator", "Session", "hash_password", "verify_password"]

# OWASP's scrypt floor (N=2^17 is its first choice; 2^14 keeps a sign-in ~50 ms on 2 cores).
_N, _R, _P = 2**14, 8, 1
_MAXMEM = 64 * 1024 * 1024


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, maxmem=_MAXMEM)
    return f"scrypt${_N}${_R}${_P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, encoded: str) -> bool:
    try:
        _, n, r, p, salt, digest = encoded.split("$")
        got = hashlib.scrypt(password.encode(), salt=_unb64(salt), n=int(n), r=int(r),
                             p=int(p), maxmem=_MAXMEM)
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, _unb64(digest))


@dataclass(frozen=True)
class Session:
    user: str
    role: Role
    sid: str
    expires: float
    # Read from config on every request, not from the cookie: a changed language applies at
    # once, and a cookie cannot choose a catalogue.
    locale: str = "en"
    timezone: str = "UTC"

    @property
    def can_act(self) -> bool:
        return self.role == "responder"


class Authenticator:
    """Checks credentials and issues/reads session cookies and CSRF tokens."""

    def __init__(self, *, secret: bytes, users: Sequence[ConsoleUser],
                 tokens: Sequence[ConsoleToken], ttl_s: int) -> None:
        # A key of its own, so a session cookie can never pass as a signed ack link.
        self._key = hmac.new(secret, b"escucha-console-session-v1", hashlib.sha256).digest()
        self._users = {u.username: u for u in users}
        self._tokens = list(tokens)
        self._prefs = {t.name: (t.locale, t.timezone) for t in tokens}
        self._prefs.update({u.username: (u.locale, u.timezone) for u in users})
        self.ttl_s = ttl_s
        # Compared against when the name is unknown, so both paths take the same time.
        self._dummy = hash_password(secrets.token_hex(8))

    def password(self, username: str, password: str) -> tuple[str, Role] | None:
        user = self._users.get(username)
        ok = verify_password(password, user.password_hash if user else self._dummy)
        return (user.username, user.role) if ok and user else None

    def token(self, given: str) -> tuple[str, Role] | None:
        found = None
        for t in self._tokens:  # every token compared, in constant time each
            if same_secret(given, t.token.get_secret_value()) and found is None:
                found = (t.name, t.role)
        return found

    def bearer(self, header: str | None) -> Session | None:
        given = bearer_token(header)
        who = self.token(given) if given else None
        return self.with_prefs(Session(user=who[0], role=who[1], sid="bearer",
                                       expires=time.time() + 60)) if who else None

    def with_prefs(self, session: Session) -> Session:
        """``session`` with its user's configured language and time zone."""
        locale, tz = self._prefs.get(session.user, ("en", "UTC"))
        return replace(session, locale=locale, timezone=tz)

    def issue(self, user: str, role: Role, *, now: float | None = None) -> str:
        now = time.time() if now is None else now
        body = _b64(json.dumps({"u": user, "r": role, "s": secrets.token_hex(12),
                                "e": int(now + self.ttl_s)}, separators=(",", ":")).encode())
        return f"{body}.{self._sign(body)}"

    def read(self, cookie: str | None, *, now: float | None = None) -> Session | None:
        if not cookie or "." not in cookie or len(cookie) > 4096:
            return None
        body, _, mac = cookie.rpartition(".")
        if not same_secret(mac, self._sign(body)):
            return None
        try:
            data = json.loads(_unb64(body))
            session = Session(user=str(data["u"]), role=data["r"], sid=str(data["s"]),
                              expires=float(data["e"]))
        except (ValueError, KeyError, TypeError):
            return None
        if session.role not in ("viewer", "responder"):
            return None
        now = time.time() if now is None else now
        return self.with_prefs(session) if session.expires > now else None

    def csrf(self, sid: str) -> str:
        return self._sign("csrf:" + sid)

    def check_csrf(self, sid: str, given: str | None) -> bool:
        return bool(given) and same_secret(given, self.csrf(sid))

    def _sign(self, text: str) -> str:
        # surrogatepass: a cookie header can carry anything, and must not raise here.
        return _b64(hmac.new(self._key, text.encode("utf-8", "surrogatepass"),
                             hashlib.sha256).digest())
