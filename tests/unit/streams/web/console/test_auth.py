"""Console sign-in: password hashes, signed session cookies, CSRF tokens, the login throttle."""

from __future__ import annotations

import pytest
from pydantic import SecretStr, ValidationError

from streams.config.console import ConsoleToken, ConsoleUser, WebConsoleSettings
from streams.web.console.auth import Authenticator, hash_password, verify_password

SECRET = b"0123456789abcdef0123456789abcdef"


def _auth(**kw: object) -> Authenticator:
    users = [ConsoleUser(username="ana", password_hash=hash_password("correct horse"),
                         role="responder"),
             ConsoleUser(username="vic", password_hash=hash_password("viewer pass 1"))]
    tokens = [ConsoleToken(name="bot", token=SecretStr("t" * 24), role="viewer")]
    return Authenticator(secret=SECRET, users=users, tokens=tokens, ttl_s=3600, **kw)  # type: ignore[arg-type]


def test_password_hash_round_trip_and_salted() -> None:
    a, b = hash_password("hunter2 hunter2"), hash_password("hunter2 hunter2")
    assert a != b and a.startswith("scrypt$")
    assert verify_password("hunter2 hunter2", a)
    assert not verify_password("hunter2 hunter3", a)
    assert not verify_password("x", "not-a-hash")


def test_password_and_token_sign_in_give_the_configured_role() -> None:
    auth = _auth()
    assert auth.password("ana", "correct horse") == ("ana", "responder")
    assert auth.password("vic", "viewer pass 1") == ("vic", "viewer")
    assert auth.password("ana", "wrong") is None
    assert auth.password("nobody", "correct horse") is None
    assert auth.token("t" * 24) == ("bot", "viewer")
    assert auth.token("t" * 23) is None


def test_session_cookie_is_signed_and_expires() -> None:
    auth = _auth()
    cookie = auth.issue("ana", "responder", now=1000.0)
    session = auth.read(cookie, now=1001.0)
    assert session is not None and session.user == "ana" and session.can_act
    assert auth.read(cookie, now=1000.0 + 3601) is None  # expired
    body, _, mac = cookie.rpartition(".")
    assert auth.read(body + "." + mac[:-2] + "AA", now=1001.0) is None  # tampered MAC
    forged = _auth().issue("ana", "responder")  # same users, same secret: verifies
    assert auth.read(forged) is not None
    other = Authenticator(secret=b"another secret 0123456789abcdef", users=[], tokens=[],
                          ttl_s=60)
    assert other.read(cookie, now=1001.0) is None  # a different key never verifies
    for junk in ("", "abc", "a.b", "x" * 5000, None):
        assert auth.read(junk) is None


def test_role_cannot_be_raised_by_editing_the_cookie() -> None:
    import base64
    import json

    auth = _auth()
    cookie = auth.issue("vic", "viewer")
    body, _, mac = cookie.rpartition(".")
    data = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    data["r"] = "responder"
    edited = base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")
    assert auth.read(f"{edited}.{mac}") is None


def test_csrf_token_is_bound_to_the_session() -> None:
    auth = _auth()
    one = auth.read(auth.issue("ana", "responder"))
    two = auth.read(auth.issue("ana", "responder"))
    assert one and two and one.sid != two.sid
    assert auth.check_csrf(one.sid, auth.csrf(one.sid))
    assert not auth.check_csrf(one.sid, auth.csrf(two.sid))
    assert not auth.check_csrf(one.sid, None) and not auth.check_csrf(one.sid, "")


def test_bearer_header() -> None:
    auth = _auth()
    session = auth.bearer("Bearer " + "t" * 24)
    assert session is not None and session.user == "bot" and not session.can_act
    assert auth.bearer("Basic " + "t" * 24) is None and auth.bearer(None) is None


def test_hostile_cookie_and_csrf_values_are_refused_not_raised() -> None:
    auth = _auth()
    cookie = auth.issue("ana", "responder", now=1000.0)
    body, _, mac = cookie.rpartition(".")
    # compare_digest raises TypeError on a non-ASCII str: these once answered 500.
    assert auth.read(body + ".ñ" + mac[1:], now=1001.0) is None
    assert auth.read("ñ.ñ") is None and auth.read("\udcff.x") is None
    session = auth.read(cookie, now=1001.0)
    assert session is not None
    assert not auth.check_csrf(session.sid, "ñ" * 43)
    assert auth.token("ñ" * 24) is None


def test_config_refuses_plain_passwords_and_short_tokens() -> None:
    with pytest.raises(ValidationError) as err:
        WebConsoleSettings.model_validate({
            "users": [{"username": "ana", "password_hash": "plaintext"}],
            "tokens": [{"name": "x", "token": "short"}]})
    text = str(err.value)
    assert "escucha console hash-password" in text and "16 characters" in text
    assert "plaintext" not in text and "short" not in text  # inputs are never echoed
