"""Guards for what arrives over HTTP: secrets compared safely, guessing slowed, input bounded.

Everything a request carries is attacker-controlled until a credential checks out, and free
text stays untrusted after. The pieces here are pure (no web framework), so each is tested
on its own; the web routes call them in the same order everywhere:

1. :class:`CredentialThrottle` first: a client address that keeps failing one kind of
   credential is refused (429, ``Retry-After``) *before* the credential is looked at, so a
   lock cannot be probed and the right secret from that address waits too. The lock is per
   address and per kind, so one attacker cannot lock anybody else out.
2. :func:`same_secret` compares in constant time on bytes: ``hmac.compare_digest`` raises
   on a ``str`` holding non-ASCII, which a header or cookie can.
3. :func:`read_json` refuses a body over its size and nesting limits before parsing it.
4. :func:`clean_text` makes stored free text (who acknowledged, a silence's comment) one
   printable, bounded line, so it cannot forge a log line or a timeline entry.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import re
import time
import unicodedata
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

__all__ = [
    "CREDENTIAL_KINDS",
    "CSP",
    "HTML_HEADERS",
    "BadRequest",
    "CredentialKind",
    "CredentialThrottle",
    "Gate",
    "bearer_token",
    "clean_text",
    "client_address",
    "has_control",
    "json_depth",
    "media_type",
    "read_json",
    "same_secret",
]

#: Every kind of credential a request can present; each has its own throttle per address.
CredentialKind = Literal["password", "console_token", "api_token", "ingest_token", "link",
                         "slack_signature", "pagerduty_signature"]
CREDENTIAL_KINDS: Final[tuple[CredentialKind, ...]] = (
    "password", "console_token", "api_token", "ingest_token", "link", "slack_signature",
    "pagerduty_signature")

#: No inline script or style anywhere, so the policy can forbid both: an injected <script> in a
#: mention would not run even if escaping were ever missed; no framing (clickjacking of the
#: Acknowledge button); forms post only here.
CSP: Final = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
              "frame-ancestors 'none'; form-action 'self'; base-uri 'none'")
#: Sent with every HTML page (a page may send a stricter policy of its own).
HTML_HEADERS: Final[dict[str, str]] = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

# C0 and C1 controls, DEL, and the Unicode line and paragraph separators: any of them in a
# stored name or a log argument can start a new (forged) line in some viewer.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_BIDI = re.compile("[\u202a-\u202e\u2066-\u2069\u200e\u200f]")  # disguise the text around
_SPACES = re.compile(r"\s+")
# A JSON string (with its escapes); everything between quotes is not structure.
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKET = re.compile(rb"[^\[\]{}]+")


class BadRequest(ValueError):
    """The request cannot be used as sent; ``status`` is the HTTP answer (400, 413, 415)."""

    def __init__(self, message: str, *, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def same_secret(given: str | bytes | None, expected: str | bytes) -> bool:
    """Whether ``given`` equals ``expected``, in time that does not depend on where they
    differ. Any ``given`` is safe: non-ASCII text, surrogates, ``None``."""
    if given is None:
        return False
    a = given if isinstance(given, bytes) else given.encode("utf-8", "surrogatepass")
    b = expected if isinstance(expected, bytes) else expected.encode("utf-8", "surrogatepass")
    return hmac.compare_digest(a, b)


def bearer_token(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, or None for any other."""
    scheme, _, given = (header or "").partition(" ")
    given = given.strip()
    return given if scheme.lower() == "bearer" and given else None


def has_control(text: str) -> bool:
    """Whether ``text`` holds a control character or a line separator (never in a header
    value, a redirect target or an id)."""
    return _CONTROL.search(text) is not None


def clean_text(value: object, *, limit: int) -> str:
    """Free text from a request as one printable line of at most ``limit`` characters:
    control characters and direction overrides removed, white space collapsed, NFC."""
    text = value if isinstance(value, str) else "" if value is None else str(value)
    text = text.encode("utf-8", "replace").decode("utf-8", "replace")  # lone surrogates
    text = _BIDI.sub("", _CONTROL.sub(" ", text))
    text = _SPACES.sub(" ", unicodedata.normalize("NFC", text)).strip()
    return text[:limit].rstrip()


def media_type(header: str | None) -> str:
    """The media type of a ``Content-Type`` header, lower case, without its parameters."""
    return (header or "").split(";", 1)[0].strip().lower()


def json_depth(raw: bytes) -> int:
    """How deeply ``raw`` nests arrays and objects, found without parsing it (so a body
    nested 100,000 deep costs a regular-expression pass, not the parser's recursion)."""
    skeleton = _NOT_BRACKET.sub(b"", _JSON_STRING.sub(b"", raw))
    depth = deepest = 0
    for byte in skeleton:
        depth += 1 if byte in b"[{" else -1
        deepest = max(deepest, depth)
    return deepest


def read_json(raw: bytes, *, max_bytes: int, max_depth: int = 32) -> Any:
    """Parse a request body as JSON within limits; :class:`BadRequest` says what is wrong.

    Size and nesting are checked before the parser sees the body; invalid UTF-8, invalid
    JSON and numbers the parser cannot hold are each a 400, never an exception escaping."""
    if len(raw) > max_bytes:
        raise BadRequest(f"the body is over {max_bytes} bytes", status=413)
    if json_depth(raw) > max_depth:
        raise BadRequest(f"the JSON nests deeper than {max_depth} levels")
    try:
        return json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise BadRequest(f"the body is not UTF-8 ({exc.reason} at byte {exc.start})") from None
    except RecursionError:  # unreachable after the depth check; kept as a last guard
        raise BadRequest("the JSON nests too deeply") from None
    except ValueError as exc:
        raise BadRequest(f"the body is not JSON: {exc}") from None


def client_address(peer: str | None, forwarded_for: str | None,
                   trusted: Sequence[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> str:
    """The address a request came from: the TCP peer, or, when the peer is one of the
    ``trusted`` proxies, the last address in ``X-Forwarded-For`` that is not (the ones
    before it were written by the client and prove nothing)."""
    address = (peer or "").strip() or "unknown"
    if not trusted or not _within(address, trusted):
        return address
    for hop in reversed([h.strip() for h in (forwarded_for or "").split(",") if h.strip()]):
        if not _within(hop, trusted):
            return hop if _parses(hop) else address
    return address


def _parses(address: str) -> bool:
    try:
        ipaddress.ip_address(address)
    except ValueError:
        return False
    return True


def _within(address: str, networks: Iterable[ipaddress.IPv4Network | ipaddress.IPv6Network],
            ) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in networks)


@dataclass(frozen=True)
class _Key:
    kind: str
    client: str


class CredentialThrottle:
    """Slows guessing: ``limit`` failures of one kind of credential from one address within
    ``window_s`` lock that address out of that kind for ``lock_s`` after its last failure.

    Once locked, a failure more (after the lock ends) locks it again at once, so guessing
    settles at one try per ``lock_s``. Successes do not reset the count: a valid low-rights
    token must not buy an attacker fresh guesses at the others. At most ``max_clients``
    (address, kind) pairs are remembered, the least recently failed forgotten first, so a
    spray from many addresses costs bounded memory.
    """

    def __init__(self, *, limit: int = 5, window_s: float = 300.0, lock_s: float = 60.0,
                 max_clients: int = 20_000, clock: Callable[[], float] = time.monotonic,
                 ) -> None:
        if limit < 1 or window_s <= 0 or lock_s <= 0 or max_clients < 1:
            raise ValueError("limit, window_s, lock_s and max_clients must be positive")
        self.limit, self.window_s, self.lock_s = limit, window_s, lock_s
        self.max_clients = max_clients
        self._clock = clock
        self._fails: OrderedDict[_Key, deque[float]] = OrderedDict()

    def retry_after(self, kind: str, client: str) -> float | None:
        """Seconds until ``client`` may try ``kind`` again, or None when it may now."""
        fails = self._fails.get(_Key(kind, client))
        if fails is None or len(fails) < self.limit:
            return None
        now = self._clock()
        if now - fails[0] >= self.window_s:
            return None
        wait = self.lock_s - (now - fails[-1])
        return wait if wait > 0 else None

    def failed(self, kind: str, client: str) -> None:
        """Count one failed credential of ``kind`` from ``client``."""
        key, now = _Key(kind, client), self._clock()
        fails = self._fails.pop(key, None) or deque(maxlen=self.limit)
        while fails and now - fails[0] >= self.window_s:
            fails.popleft()
        fails.append(now)
        self._fails[key] = fails  # most recent last: eviction takes the oldest first
        while len(self._fails) > self.max_clients:
            self._fails.popitem(last=False)

    def __len__(self) -> int:
        return len(self._fails)


class Gate:
    """The one place every credential check asks: the shared throttle, which address a
    request is from, and the count of refusals (``on_refused(kind, outcome)``)."""

    def __init__(self, *, throttle: CredentialThrottle | None = None,
                 trusted_proxies: Sequence[str] = (),
                 on_refused: Callable[[str, str], None] = lambda kind, outcome: None) -> None:
        self.throttle = throttle or CredentialThrottle()
        self._proxies = [ipaddress.ip_network(p, strict=False) for p in trusted_proxies]
        self._on_refused = on_refused

    def client(self, peer: str | None, forwarded_for: str | None) -> str:
        return client_address(peer, forwarded_for, self._proxies)

    def locked(self, kind: CredentialKind, client: str) -> float | None:
        """Seconds ``client`` must wait before presenting ``kind`` again (counted as a
        throttled refusal), or None."""
        wait = self.throttle.retry_after(kind, client)
        if wait is not None:
            self._on_refused(kind, "throttled")
        return wait

    def failed(self, kind: CredentialKind, client: str) -> None:
        self.throttle.failed(kind, client)
        self._on_refused(kind, "invalid")
