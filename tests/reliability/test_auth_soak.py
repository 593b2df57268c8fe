"""Soak (`make test-slow`): 20 minutes of wrong guesses at every credential.

Real parts: the embedded broker and one `escucha worker` with every credential configured
(tests/support/secured.py). A bounded loop on loopback guesses API, console and ingest
tokens, passwords, signed links, Slack and PagerDuty signatures, from a few addresses that get
locked and from a stream of fresh ones that fill the throttle's memory to its bound. Every 30 s the
right credentials are tried from an address that never guessed: each must work. The
worker's RSS after the first two minutes and at the end must stay within 10%, and nothing
may answer 500 or drop a connection. ``ESCUCHA_AUTH_SOAK_S`` shortens the run.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import re
import time
import urllib.parse
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from streams.core.links import LinkSigner
from streams.runtime.broker import EmbeddedBroker
from tests.support.procs import EscuchaProcess, free_port, write_config
from tests.support.rawhttp import answered, request
from tests.support.secured import (
    ANA,
    API_TOKEN,
    CONSOLE_TOKEN,
    INGEST_TOKEN,
    LINK_SECRET,
    addresses,
    secured_sections,
)

SOAK_S = float(os.environ.get("ESCUCHA_AUTH_SOAK_S", "1200"))
pytestmark = [pytest.mark.slow, pytest.mark.timeout(SOAK_S + 600)]
WARMUP_S = min(120.0, SOAK_S / 5)
MAX_REQUESTS = 2_000_000  # bounded, whatever the machine's speed
_fresh = addresses(20)
_ATTACKERS = [f"127.9.0.{i}" for i in range(1, 9)]
_COLLEAGUE = "127.8.8.8"


def _rss(pid: int) -> int:
    return next(int(line.split()[1]) * 1024 for line in
                Path(f"/proc/{pid}/status").read_text().splitlines()
                if line.startswith("VmRSS:"))


def _bad(i: int) -> tuple[str, str, list[tuple[str, str]], bytes]:
    """The i-th wrong guess: one of every kind of credential, in turn."""
    json_ct = ("Content-Type", "application/json")
    kind = i % 7
    if kind == 0:
        return "GET", "/api/incidents", [("Authorization", f"Bearer guess{i}")], b""
    if kind == 1:
        return "GET", "/console", [("Authorization", f"Bearer guess{i}")], b""
    if kind == 2:
        return "POST", "/ingest", [("Authorization", f"Bearer guess{i}"), json_ct], b"{}"
    if kind == 3:
        return "GET", f"/a/forged{i}.sig", [], b""
    if kind == 4:
        return "POST", "/slack/actions", [
            ("X-Slack-Request-Timestamp", str(int(time.time()))),
            ("X-Slack-Signature", f"v0={i:064x}"),
            ("Content-Type", "application/x-www-form-urlencoded")], b"payload=%7B%7D"
    if kind == 5:
        return "POST", "/pagerduty/webhook", [("X-PagerDuty-Signature", f"v1={i:064x}"),
                                              json_ct], b'{"event": {}}'
    return "POST", "/console/login", [], f"guess{i}".encode()  # see _login_guess


async def _login_form(port: int, source: str) -> tuple[str, str]:
    form = await request(port, "GET", "/console/login", source=source)
    assert form is not None and form.status == 200
    nonce = re.search(r"escucha_login=([0-9a-f]+)", form.headers["set-cookie"]).group(1)
    csrf = re.search(rb'name="csrf" value="([^"]+)"', form.body).group(1).decode()
    return nonce, csrf


async def _sign_in(port: int, source: str, password: str) -> Any:
    """What an attacker scripts: fetch the form (its CSRF token), post a guess."""
    nonce, csrf = await _login_form(port, source)
    return await request(port, "POST", "/console/login", source=source, body=urllib.parse.urlencode(
        {"csrf": csrf, "username": ANA[0], "password": password}).encode(), headers=[
        ("Cookie", f"escucha_login={nonce}"),
        ("Content-Type", "application/x-www-form-urlencoded")])


async def _right_credentials_work(port: int) -> None:
    src = _COLLEAGUE
    api = await request(port, "GET", "/api/incidents", source=src,
                        headers=[("Authorization", f"Bearer {API_TOKEN}")])
    console = await request(port, "GET", "/console", source=src,
                            headers=[("Authorization", f"Bearer {CONSOLE_TOKEN}")])
    ingest = await request(port, "POST", "/ingest", source=src, body=json.dumps(
        {"text": "acme soak check", "author": "ops", "id": f"soak-{time.time()}"}).encode(),
        headers=[("Authorization", f"Bearer {INGEST_TOKEN}"),
                 ("Content-Type", "application/json")])
    link = LinkSigner(secret=LINK_SECRET.encode(), base_url="x").token("acme.0123abcd", "ack")
    page = await request(port, "GET", f"/a/{link}", source=src)
    login = await _sign_in(port, src, ANA[1])
    assert api and console and ingest and page and login
    got = (api.status, console.status, ingest.status, page.status, login.status)
    assert got == (200, 200, 202, 200, 303), got


async def test_twenty_minutes_of_guessing(tmp_path: Path, broker: EmbeddedBroker) -> None:
    port = free_port()
    config = write_config(tmp_path / "escucha.yaml",
                          **secured_sections(tmp_path, port=port, bootstrap=broker.bootstrap))
    worker = EscuchaProcess(["worker", "--config", str(config)], env={},
                            log=tmp_path / "worker.log")
    try:
        deadline = time.monotonic() + 180
        while await _answer(port, "/readyz") != 200:  # the model loaded: RSS at its level
            assert time.monotonic() < deadline, worker.output()[-3000:]
            await asyncio.sleep(0.5)
        statuses: Counter[tuple[str, int]] = Counter()
        sent = itertools.count()
        start = time.monotonic()
        rss_after_warmup: int | None = None
        next_check = start

        async def guess_forever(lane: int) -> None:
            while time.monotonic() - start < SOAK_S:
                i = next(sent)
                if i >= MAX_REQUESTS:
                    return
                method, path, headers, body = _bad(i)
                # Passwords cost a scrypt each: fresh addresses guess the cheap kinds, the
                # fixed attackers everything (and are locked after five of each).
                fixed = lane == 0 or path == "/console/login"
                source = _ATTACKERS[i % len(_ATTACKERS)] if fixed else next(_fresh)
                answer = (await _sign_in(port, source, body.decode()) if path == "/console/login"
                          else await answered(port, method, path, headers=headers, body=body,
                                              source=source))
                statuses[("attackers" if fixed else "fresh", answer.status)] += 1

        lanes = [asyncio.create_task(guess_forever(n)) for n in range(4)]
        try:
            while time.monotonic() - start < SOAK_S and not all(t.done() for t in lanes):
                await asyncio.sleep(1)
                for task in lanes:
                    if task.done() and task.exception() is not None:
                        raise task.exception()  # type: ignore[misc]
                if time.monotonic() >= next_check:
                    await _right_credentials_work(port)
                    next_check = time.monotonic() + 30
                if rss_after_warmup is None and time.monotonic() - start >= WARMUP_S:
                    rss_after_warmup = _rss(worker.proc.pid)
        finally:
            for task in lanes:
                task.cancel()
            await asyncio.gather(*lanes, return_exceptions=True)
        await _right_credentials_work(port)
        rss_end = _rss(worker.proc.pid)
        assert rss_after_warmup is not None
        growth = (rss_end - rss_after_warmup) / rss_after_warmup
        print(json.dumps({"seconds": round(time.monotonic() - start), "requests": sum(
            statuses.values()), "statuses": {f"{k[0]} {k[1]}": v for k, v in statuses.items()},
            "rss_after_warmup": rss_after_warmup, "rss_end": rss_end,
            "growth": round(growth, 4)}))
        # The fixed attackers were locked out after five guesses of each kind: almost all
        # of their guesses were never checked.
        attackers = {code: n for (who, code), n in statuses.items() if who == "attackers"}
        assert attackers.get(429, 0) > 20 * (attackers.get(401, 0) + attackers.get(403, 0))
        assert growth < 0.10, (rss_after_warmup, rss_end)
    finally:
        worker.close()


async def _answer(port: int, path: str) -> int | None:
    try:
        answer = await request(port, "GET", path)
    except OSError:
        return None
    return answer.status if answer else None
