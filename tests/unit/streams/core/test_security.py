"""The request guards alone: constant-time compare, throttle, bounded JSON, clean text."""

from __future__ import annotations

import ipaddress
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.core.security import (
    BadRequest,
    CredentialThrottle,
    bearer_token,
    clean_text,
    client_address,
    has_control,
    json_depth,
    media_type,
    read_json,
    same_secret,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_same_secret_takes_any_input() -> None:
    assert same_secret("abc", "abc") and same_secret(b"abc", "abc")
    assert not same_secret("abd", "abc") and not same_secret(None, "abc")
    # hmac.compare_digest raises TypeError on non-ASCII str; this must simply say no.
    assert not same_secret("ñ" * 43, "a" * 43)
    assert not same_secret("\udcff", "abc")  # a lone surrogate, as a bad header decodes
    assert same_secret("clé", "clé")


def test_bearer_token() -> None:
    assert bearer_token("Bearer abc") == "abc" and bearer_token("bearer  abc ") == "abc"
    assert bearer_token("Basic abc") is None and bearer_token("Bearer ") is None
    assert bearer_token(None) is None and bearer_token("") is None


def test_throttle_locks_after_limit_and_only_that_address_and_kind() -> None:
    clock = Clock()
    t = CredentialThrottle(limit=5, window_s=300, lock_s=60, clock=clock)
    for _ in range(4):
        t.failed("api_token", "10.0.0.1")
    assert t.retry_after("api_token", "10.0.0.1") is None  # four is not yet the limit
    t.failed("api_token", "10.0.0.1")
    assert t.retry_after("api_token", "10.0.0.1") == pytest.approx(60)
    # Another address, or another kind from the same address, is not held back.
    assert t.retry_after("api_token", "10.0.0.2") is None
    assert t.retry_after("password", "10.0.0.1") is None
    clock.now += 59.5
    assert t.retry_after("api_token", "10.0.0.1") == pytest.approx(0.5)
    clock.now += 1
    assert t.retry_after("api_token", "10.0.0.1") is None
    # One more failure within the window locks again at once: one guess per lock period.
    t.failed("api_token", "10.0.0.1")
    assert t.retry_after("api_token", "10.0.0.1") == pytest.approx(60)


def test_throttle_window_forgets_old_failures() -> None:
    clock = Clock()
    t = CredentialThrottle(limit=3, window_s=100, lock_s=10, clock=clock)
    t.failed("link", "a")
    t.failed("link", "a")
    clock.now += 101  # the first two fall out of the window
    t.failed("link", "a")
    assert t.retry_after("link", "a") is None
    t.failed("link", "a")
    assert t.retry_after("link", "a") is None
    t.failed("link", "a")
    assert t.retry_after("link", "a") == pytest.approx(10)
    clock.now += 100  # the oldest of the last three is now outside the window
    assert t.retry_after("link", "a") is None


def test_throttle_memory_is_bounded_oldest_forgotten_first() -> None:
    clock = Clock()
    t = CredentialThrottle(limit=2, max_clients=100, clock=clock)
    for i in range(1000):
        t.failed("password", f"10.0.{i // 256}.{i % 256}")
        clock.now += 0.001
    assert len(t) == 100
    t.failed("password", "10.0.3.231")  # the newest is kept: its second failure locks it
    assert t.retry_after("password", "10.0.3.231") is not None
    t.failed("password", "10.0.0.0")  # long forgotten: starts again from one failure
    assert t.retry_after("password", "10.0.0.0") is None


def test_throttle_rejects_nonsense_settings() -> None:
    with pytest.raises(ValueError):
        CredentialThrottle(limit=0)


def test_json_depth_counts_structure_not_strings() -> None:
    assert json_depth(b'{"a": [1, {"b": 2}]}') == 3
    assert json_depth(b'"[[[[[[[[["') == 0
    assert json_depth(b'{"a": "\\"[[[[", "b": []}') == 2
    assert json_depth(b"[" * 30_000 + b"]" * 30_000) == 30_000


def test_read_json_limits_before_parsing() -> None:
    assert read_json(b'{"by": "ana"}', max_bytes=100) == {"by": "ana"}
    with pytest.raises(BadRequest) as big:
        read_json(b"[" + b"1," * 100 + b"1]", max_bytes=100)
    assert big.value.status == 413
    with pytest.raises(BadRequest, match="deeper than 32"):
        read_json(b"[" * 30_000 + b"]" * 30_000, max_bytes=1 << 20)
    assert read_json(b"[" * 32 + b"]" * 32, max_bytes=1 << 20) is not None
    with pytest.raises(BadRequest, match="deeper"):
        read_json(b"[" * 33 + b"]" * 33, max_bytes=1 << 20)
    with pytest.raises(BadRequest, match="UTF-8"):
        read_json(b'{"a": "\xff"}', max_bytes=100)
    with pytest.raises(BadRequest, match="not JSON"):
        read_json(b"{not json", max_bytes=100)


@given(st.binary(max_size=300))
def test_read_json_never_raises_anything_else(raw: bytes) -> None:
    try:
        read_json(raw, max_bytes=200, max_depth=8)
    except BadRequest as exc:
        assert exc.status in (400, 413)


def test_clean_text_one_printable_bounded_line() -> None:
    forged = "evil\n2026-01-01 INFO forged log line"
    assert clean_text(forged, limit=80) == "evil 2026-01-01 INFO forged log line"
    assert "\n" not in clean_text("a\r\nb\u2028c\u2029d\x1b[31m", limit=80)
    assert clean_text("  ana \t ", limit=80) == "ana"
    assert clean_text("x" * 500, limit=80) == "x" * 80
    assert clean_text("\u202eevil", limit=80) == "evil"
    assert clean_text(None, limit=10) == "" and clean_text(42, limit=10) == "42"
    assert clean_text("\udcff", limit=10) == "?"


@given(st.text())
def test_clean_text_never_leaves_a_control_character(text: str) -> None:
    out = clean_text(text, limit=100)
    assert not has_control(out) and len(out) <= 100


def test_media_type() -> None:
    assert media_type("application/json; charset=utf-8") == "application/json"
    assert media_type("Application/JSON") == "application/json"
    assert media_type("text/plain; foo=json") == "text/plain"
    assert media_type(None) == ""


def test_client_address_trusts_only_configured_proxies() -> None:
    proxies = [ipaddress.ip_network("10.0.0.0/8")]
    # No proxy configured: the header is the client's word and is ignored.
    assert client_address("203.0.113.9", "1.2.3.4", []) == "203.0.113.9"
    # From an untrusted peer, the header is ignored too.
    assert client_address("203.0.113.9", "1.2.3.4", proxies) == "203.0.113.9"
    # Through the proxy: the last hop that is not a proxy.
    assert client_address("10.0.0.5", "1.2.3.4, 198.51.100.7, 10.0.0.9", proxies) \
        == "198.51.100.7"
    assert client_address("10.0.0.5", None, proxies) == "10.0.0.5"
    assert client_address("10.0.0.5", "not-an-ip", proxies) == "10.0.0.5"


def test_has_control() -> None:
    assert has_control("a\nb") and has_control("a\rb") and has_control("\x00")
    assert has_control("a\u2028b") and not has_control("acme.0123abcd")
    assert not has_control(json.dumps({"a": "ñ"}))
