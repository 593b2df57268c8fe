"""A real worker with every credential configured, probed as an attacker would.

Each case of the security review is here: Faust's own views, guessing through every
credential (throttled per address and kind, never locking out another address), hostile
cookies, CSRF values, JSON bombs, CR/LF in redirects and ids, forged log lines, loose content
types, pages without security headers, a silence of everything, expiring silences (API, CLI,
console) and one from the config file. Refused requests carry the
marker "refused-marker"; at the end no topic holds it. Then hypothesis throws random
requests at every route: none may answer 500 or drop the connection.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import urllib.parse
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streams.cli import cli
from streams.core import topics
from streams.core.links import LinkSigner
from streams.runtime.broker import EmbeddedBroker
from tests.fakes.pagerduty import sign_webhook, webhook_event
from tests.support.kafka import read_all
from tests.support.procs import EscuchaProcess, free_port, metric_value, write_config
from tests.support.rawhttp import Answer, answered, request
from tests.support.secured import (
    ANA,
    API_TOKEN,
    CONSOLE_TOKEN,
    INGEST_TOKEN,
    LINK_SECRET,
    PAGERDUTY_SECRET,
    addresses,
    secured_sections,
)

MARK = "refused-marker"
INCIDENT = "acme.0123456789abcdef"
_sources = addresses(10)


def fresh_source() -> str:
    """A loopback address no other test used: its own throttle history."""
    return next(_sources)


class Worker:
    def __init__(self, port: int, proc: EscuchaProcess, bootstrap: str) -> None:
        self.port, self.proc, self.bootstrap = port, proc, bootstrap

    async def call(self, method: str, target: str, *, source: str = "127.0.0.1",
                   headers: list[tuple[str, str]] | None = None, body: bytes | str = b"",
                   ) -> Answer:
        raw = body.encode() if isinstance(body, str) else body
        return await answered(self.port, method, target, headers=headers, body=raw,
                              source=source)


@pytest.fixture(scope="module")
def worker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Worker]:
    tmp = tmp_path_factory.mktemp("hostile")
    broker = EmbeddedBroker(partitions=4, log_path=tmp / "broker.log")
    broker.start()
    port = free_port()
    sections = secured_sections(tmp, port=port, bootstrap=broker.bootstrap)
    # One silence from the file (config-0): the web refuses to expire it (edit the file).
    sections["escalation"] = {"silences": [{"matchers": {"watch": "globex"}, "comment": "file",
                                            "ends_at": "2099-01-01T00:00:00Z"}]}
    config = write_config(tmp / "escucha.yaml", **sections)
    proc = EscuchaProcess(["worker", "--config", str(config)], env={},
                          log=tmp / "worker.log")
    try:
        proc.wait_serving(port)
        yield Worker(port, proc, broker.bootstrap)
    finally:
        proc.close()
        broker.stop()


def bearer(token: str) -> list[tuple[str, str]]:
    return [("Authorization", f"Bearer {token}")]


JSON = [("Content-Type", "application/json")]


async def test_faust_views_are_not_served(worker: Worker) -> None:
    for path in ("/table/", "/table/escucha.incident-index/acme/",
                 f"/table/escucha.incidents/{INCIDENT}/", "/table/escucha.detect-state/acme/",
                 "/router/", "/stats/", "/"):
        assert (await worker.call("GET", path)).status == 404, path


async def _guess(worker: Worker, source: str, method: str, path: str,
                 headers: list[tuple[str, str]], body: bytes = b"") -> list[int]:
    return [(await worker.call(method, path, source=source, headers=headers, body=body)).status
            for _ in range(7)]


@pytest.mark.parametrize(("method", "path", "right", "ok"), [
    ("GET", "/console", CONSOLE_TOKEN, 200),
    ("GET", "/api/incidents", API_TOKEN, 200),
    ("POST", "/ingest", INGEST_TOKEN, 202),
])
async def test_bearer_guessing_is_throttled_per_address(worker: Worker, method: str, path: str,
                                                        right: str, ok: int) -> None:
    attacker, colleague = fresh_source(), fresh_source()
    body = json.dumps({"text": "acme is fine", "author": "x", "id": "throttle-" + path}).encode()
    headers = [("Content-Type", "application/json")]
    statuses = await _guess(worker, attacker, method, path, bearer("wrong-" + MARK) + headers,
                            body)
    # Five wrong guesses are refused as wrong; from then on the address waits (once a
    # bearer header on /console slipped past the throttle with a plain 303 each time).
    assert statuses == [401] * 5 + [429] * 2
    locked = await worker.call(method, path, source=attacker, headers=bearer(right) + headers,
                               body=body)
    assert locked.status == 429 and int(locked.headers["retry-after"]) >= 1
    # The right credential from anywhere else still works: nobody else is locked out.
    fine = await worker.call(method, path, source=colleague, headers=bearer(right) + headers,
                             body=body)
    assert fine.status == ok


async def _login_form(worker: Worker, source: str) -> tuple[str, str]:
    page = await worker.call("GET", "/console/login", source=source)
    nonce = re.search(r"escucha_login=([0-9a-f]+)", page.headers["set-cookie"]).group(1)
    csrf = re.search(rb'name="csrf" value="([^"]+)"', page.body).group(1).decode()
    return nonce, csrf


async def _sign_in(worker: Worker, source: str, password: str, *,
                   next_url: str = "/console") -> Answer:
    nonce, csrf = await _login_form(worker, source)
    form = urllib.parse.urlencode({"csrf": csrf, "username": ANA[0], "password": password,
                                   "next": next_url})
    return await worker.call("POST", "/console/login", source=source, body=form, headers=[
        ("Cookie", f"escucha_login={nonce}"),
        ("Content-Type", "application/x-www-form-urlencoded")])


async def test_password_guessing_is_throttled_and_ana_is_not_locked_out(worker: Worker) -> None:
    attacker, ana = fresh_source(), fresh_source()
    statuses = [(await _sign_in(worker, attacker, "guess")).status for _ in range(7)]
    assert statuses == [401] * 5 + [429] * 2
    assert (await _sign_in(worker, attacker, ANA[1])).status == 429
    signed_in = await _sign_in(worker, ana, ANA[1])
    assert signed_in.status == 303 and "escucha_session=" in signed_in.headers["set-cookie"]


async def test_link_and_slack_guessing_is_throttled(worker: Worker) -> None:
    source = fresh_source()
    links = [(await worker.call("GET", f"/a/forged.{MARK}{i}", source=source)).status
             for i in range(7)]
    assert links == [403] * 5 + [429] * 2
    source = fresh_source()
    body = b"payload=%7B%7D"
    stale = [("X-Slack-Request-Timestamp", str(int(time.time()))),
             ("X-Slack-Signature", "v0=" + "0" * 64),
             ("Content-Type", "application/x-www-form-urlencoded")]
    slack = [(await worker.call("POST", "/slack/actions", source=source, headers=stale,
                                body=body)).status for _ in range(7)]
    assert slack == [401] * 5 + [429] * 2
    source = fresh_source()
    guessed = [(await worker.call("POST", "/pagerduty/webhook", source=source,
                                  headers=[("X-PagerDuty-Signature", f"v1={i:064x}")],
                                  body=json.dumps({"event": {"id": MARK}}).encode())).status
               for i in range(7)]
    assert guessed == [401] * 5 + [429] * 2
    assert (metric_value(worker.port, "escucha_auth_refused_total",
                         {"kind": "link", "outcome": "throttled"}) or 0) >= 2


def _pagerduty(event_type: str, *, by: str, at: datetime | None = None,
               key: str = INCIDENT, secret: str = PAGERDUTY_SECRET,
               event_id: str | None = None) -> tuple[list[tuple[str, str]], bytes]:
    body = json.dumps(webhook_event(event_type, incident_key=key, by=by, occurred_at=at,
                                    event_id=event_id)).encode()
    return list(sign_webhook(body, [secret]).items()), body


async def test_pagerduty_webhooks_ack_once_and_refuse_forged_and_stale(worker: Worker) -> None:
    source = fresh_source()

    async def post(headers: list[tuple[str, str]], body: bytes) -> tuple[int, dict[str, Any]]:
        answer = await worker.call("POST", "/pagerduty/webhook", source=source,
                                   headers=headers, body=body)
        return answer.status, json.loads(answer.body)

    forged = _pagerduty("incident.acknowledged", by=MARK, secret="not-" + PAGERDUTY_SECRET)
    assert await post(*forged) == (401, {"error": "invalid signature"})
    stale = _pagerduty("incident.resolved", by=MARK,
                       at=datetime.now(UTC) - timedelta(hours=2))
    status, answer = await post(*stale)
    assert status == 400 and answer["error"].startswith("stale event: it occurred 720")
    headers, body = _pagerduty("incident.acknowledged", by="Ana Responder", event_id="pd-ev-1")
    assert await post(headers, body) == (202, {"status": "accepted", "incident_id": INCIDENT,
                                               "action": "ack"})
    assert await post(headers, body) == (200, {"status": "duplicate"})  # PagerDuty's retry
    foreign = _pagerduty("incident.acknowledged", by=MARK, key="d3640fbd41094207a1c11e58")
    assert (await post(*foreign))[1]["status"] == "ignored"
    triggered = _pagerduty("incident.triggered", by=MARK)
    assert (await post(*triggered))[1]["status"] == "ignored"

    acks = await read_all(worker.bootstrap, topics.ACKS.name, idle_s=2)
    mine = [a for a in acks if a["source"] == "pagerduty"]
    assert [(a["incident_id"], a["action"], a["by"]) for a in mine] == [
        (INCIDENT, "ack", "Ana Responder")]
    assert PAGERDUTY_SECRET not in worker.proc.output()


async def test_hostile_cookies_csrf_and_redirects_answer_4xx(worker: Worker) -> None:
    source = fresh_source()
    # A session cookie whose MAC is not ASCII: once a 500, with no sign-in needed.
    for cookie in ("escucha_session=eyJ1IjoiYSJ9.\u00f1\u00f1", "escucha_session=\u00f1.\u00f1"):
        answer = await worker.call("GET", "/console", source=source, headers=[("Cookie", cookie)])
        assert answer.status == 303 and answer.headers["location"].startswith("/console/login")
    signed_in = await _sign_in(worker, source, ANA[1])
    session = re.search(r"escucha_session=([^;]+)", signed_in.headers["set-cookie"]).group(1)
    form = urllib.parse.urlencode({"csrf": "\u00f1" * 43, "by": MARK})
    answer = await worker.call("POST", f"/console/incidents/{INCIDENT}/ack", source=source,
                               body=form, headers=[("Cookie", f"escucha_session={session}"),
                                                   ("Content-Type",
                                                    "application/x-www-form-urlencoded")])
    assert answer.status in (403, 404)
    # CR/LF in next=: once the connection dropped without an answer.
    answer = await worker.call("GET", "/console/login?next=/console%0D%0ASet-Cookie:%20x=1",
                               source=source)
    assert answer.status == 400 and "set-cookie" not in answer.headers
    answer = await _sign_in(worker, source, ANA[1], next_url="/console\r\nSet-Cookie: x=1")
    assert answer.status == 400 and "escucha_session" not in answer.headers.get("set-cookie", "")


async def test_json_bombs_and_bad_ids_answer_400(worker: Worker) -> None:
    bomb = b"[" * 30_000 + b"]" * 30_000
    for path in (f"/api/incidents/{INCIDENT}/ack", "/api/silences"):
        answer = await worker.call("POST", path, headers=bearer(API_TOKEN) + JSON, body=bomb)
        assert answer.status == 400 and b"deeper" in answer.body, path
    # A trailing newline once passed `^...$` with `.match`: the ack was accepted (202).
    answer = await worker.call("POST", "/api/incidents/acme.deadbeef%0A/ack",
                               headers=bearer(API_TOKEN) + JSON,
                               body=json.dumps({"by": MARK}))
    assert answer.status == 400
    answer = await worker.call("POST", f"/api/incidents/{INCIDENT}/ack",
                               headers=[*bearer(API_TOKEN), ("Content-Type", "text/plain")],
                               body=json.dumps({"by": MARK}))
    assert answer.status == 415


async def test_free_text_is_one_clean_line(worker: Worker) -> None:
    forged = "evil\n2026-01-01 INFO forged log line"
    answer = await worker.call("POST", f"/api/incidents/{INCIDENT}/ack",
                               headers=bearer(API_TOKEN) + JSON, body=json.dumps({"by": forged}))
    assert answer.status == 202
    acks = await read_all(worker.bootstrap, topics.ACKS.name, idle_s=2)
    stored = [a["by"] for a in acks if a["by"].startswith("evil")]
    assert stored == ["evil 2026-01-01 INFO forged log line"]
    await asyncio.sleep(0.5)
    log = worker.proc.output()
    assert "evil 2026-01-01 INFO forged log line" in log
    assert not any(line.startswith("2026-01-01 INFO forged") for line in log.splitlines())


async def test_content_types_headers_and_silences(worker: Worker) -> None:
    item = json.dumps({"text": f"acme {MARK}", "author": "x", "id": MARK})
    loose = await worker.call("POST", "/ingest", body=item, headers=[
        *bearer(INGEST_TOKEN), ("Content-Type", "text/plain; foo=json")])
    assert loose.status == 415
    lines = "\n".join(json.dumps({"text": f"acme ndjson {i}", "author": "x", "id": f"nd{i}"})
                      for i in range(2))
    nd = await worker.call("POST", "/ingest", body=lines, headers=[
        *bearer(INGEST_TOKEN), ("Content-Type", "application/x-ndjson")])
    assert nd.status == 202 and json.loads(nd.body)["accepted"] == 2
    # A signed link's pages carry the same policy as the console's.
    signer = LinkSigner(secret=LINK_SECRET.encode(), base_url="http://x")
    page = await worker.call("GET", f"/a/{signer.token(INCIDENT, 'ack')}")
    assert page.status == 200
    csp = page.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp
    assert "unsafe-inline" not in csp and page.headers["x-content-type-options"] == "nosniff"
    # A silence of everything must be asked for in so many words.
    for matchers in ({"watch": "*"}, {"watch": "~.*"}, {"severity": "!=nothing"}):
        refused = await worker.call("POST", "/api/silences", headers=bearer(API_TOKEN) + JSON,
                                    body=json.dumps({"matchers": matchers, "by": MARK}))
        assert refused.status == 400 and b'"all": true' in refused.body.replace(b"\\", b"")
    made = await worker.call("POST", "/api/silences", headers=bearer(API_TOKEN) + JSON,
                             body=json.dumps({"matchers": {"watch": "*"}, "all": True,
                                              "minutes": 1, "by": "ops"}))
    assert made.status == 201 and json.loads(made.body)["all"] is True


async def _listed(worker: Worker, silence_id: str, state: str) -> dict[str, Any]:
    """The silence as GET /api/silences shows it, once this worker's view holds it so."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        answer = await worker.call("GET", "/api/silences", headers=bearer(API_TOKEN))
        found = [s for s in json.loads(answer.body)["silences"]
                 if s["id"] == silence_id and s["state"] == state]
        if found:
            return found[0]
        await asyncio.sleep(0.2)
    raise AssertionError(f"{silence_id} never listed as {state}")


async def test_silences_expire_over_the_api_and_the_cli(worker: Worker) -> None:
    url = f"http://127.0.0.1:{worker.port}"

    def escucha(*args: str) -> Any:
        return CliRunner().invoke(cli, [*args, "--url", url], catch_exceptions=False,
                                  env={"ESCUCHA_API_TOKEN": API_TOKEN, "ESCUCHA_CONFIG": None})

    made = await asyncio.to_thread(escucha, "silences", "add", "watch=acme", "severity!=info",
                                   "--minutes", "30", "--by", "luis")
    assert made.exit_code == 0, made.output
    sid = re.search(r"silence (s-[0-9a-f]+)", made.output).group(1)
    live = await _listed(worker, sid, "active")
    assert live["matchers"] == {"watch": "acme", "severity": "!=info"}

    assert (await worker.call("DELETE", f"/api/silences/{sid}", source=fresh_source(),
                              body=json.dumps({"by": MARK}), headers=JSON)).status == 401
    unknown = await worker.call("DELETE", "/api/silences/s-ffffffffffffffff",
                                headers=bearer(API_TOKEN))
    assert unknown.status == 404
    from_file = await worker.call("DELETE", "/api/silences/config-0", headers=bearer(API_TOKEN))
    assert from_file.status == 409 and b"escucha.yaml" in from_file.body
    assert (await _listed(worker, "config-0", "active"))["comment"] == "file"

    out = await asyncio.to_thread(escucha, "silences", "expire", sid, "--by", "luis")
    assert out.exit_code == 0 and f"silence {sid}: expired" in out.output
    again = await worker.call("DELETE", f"/api/silences/{sid}", headers=bearer(API_TOKEN) + JSON,
                              body=json.dumps({"by": "ana"}))
    assert again.status == 200
    assert json.loads(again.body)["status"] == "already expired"
    # Counted once (the dashboards' "expired early"): the second DELETE expired nothing.
    assert await asyncio.to_thread(metric_value, worker.port,
                                   "escucha_silences_expired_total") == 1
    gone = await _listed(worker, sid, "expired")
    assert gone["expired_by"] == "luis" and gone["ends_at"] == gone["expired_at"]
    listed = (await asyncio.to_thread(escucha, "silences", "list")).output
    assert sid not in listed and "config-0" in listed
    listed = (await asyncio.to_thread(escucha, "silences", "list", "--all")).output
    assert re.search(rf"{sid}\s+expired .*expired by luis", listed), listed
    # Idempotent on the topic too: the silence, then one expiry; the second DELETE wrote none.
    records = await read_all(worker.bootstrap, topics.SILENCES.name, idle_s=2)
    assert [r.get("expired_by") for r in records if r["id"] == sid] == [None, "luis"]


async def test_a_responder_expires_a_silence_from_the_console(worker: Worker) -> None:
    made = await worker.call("POST", "/api/silences", headers=bearer(API_TOKEN) + JSON,
                             body=json.dumps({"matchers": {"watch": "globex"}, "minutes": 10}))
    sid = json.loads(made.body)["id"]
    await _listed(worker, sid, "active")
    source = fresh_source()
    signed_in = await _sign_in(worker, source, ANA[1])
    cookie = re.search(r"escucha_session=[^;]+", signed_in.headers["set-cookie"]).group(0)
    form = [("Cookie", cookie), ("Content-Type", "application/x-www-form-urlencoded")]
    page = await worker.call("GET", "/console/silences", source=source, headers=form[:1])
    assert page.status == 200 and f"/console/silences/{sid}/expire".encode() in page.body
    assert b"in escucha.yaml" in page.body
    csrf = re.search(rb'name="csrf" value="([^"]+)"', page.body).group(1).decode()
    good = urllib.parse.urlencode({"csrf": csrf})
    target = f"/console/silences/{sid}/expire"

    forged = await worker.call("POST", target, source=source, headers=form, body="csrf=x")
    assert forged.status == 403
    viewer = await worker.call("POST", target, headers=bearer(CONSOLE_TOKEN) + form[1:])
    assert viewer.status == 403 and b"Viewers cannot" in viewer.body
    from_file = await worker.call("POST", "/console/silences/config-0/expire", source=source,
                                  headers=form, body=good)
    assert from_file.status == 409 and b"escucha.yaml" in from_file.body
    await _listed(worker, sid, "active")  # none of those changed it

    done = await worker.call("POST", target, source=source, headers=form, body=good)
    assert done.status == 303 and done.headers["location"] == "/console/silences?done=expired"
    assert (await _listed(worker, sid, "expired"))["expired_by"] == "ana"


_ROUTES = ["/api/incidents", "/api/incidents/{id}", "/api/incidents/{id}/{action}",
           "/api/silences", "/api/silences/{id}", "/console/silences",
           "/console/silences/{id}/{action}", "/slack/actions", "/pagerduty/webhook",
           "/a/{token}", "/ingest", "/console",
           "/console/login", "/console/logout", "/console/events", "/console/watches",
           "/console/incidents/{id}", "/console/incidents/{id}/{action}",
           "/console/static/{name}", "/healthz", "/readyz", "/metrics", "/{junk}"]
_segment = st.one_of(st.sampled_from([INCIDENT, "ack", "resolve", "silence", "console.css",
                                      "..", "%00", "%0a", "%E2%80%A8", "x" * 300]),
                     st.text(max_size=30).map(lambda t: urllib.parse.quote(t, safe="")))
_header_value = st.one_of(
    st.sampled_from(["Bearer " + API_TOKEN, "Bearer " + CONSOLE_TOKEN, "Bearer " + INGEST_TOKEN,
                     "Bearer", "Basic YTpi", "application/json", "application/x-ndjson",
                     "multipart/form-data", "application/x-www-form-urlencoded",
                     "escucha_session=a.b", "escucha_login=zz", "v0=" + "a" * 64,
                     "v1=" + "a" * 64 + ",v1=", "1",
                     "\u00f1" * 10]),
    st.text(alphabet=st.characters(blacklist_characters="\r\n", blacklist_categories=["Cs"]),
            max_size=40))
_json = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=10), kids,
                                                               max_size=4), max_leaves=15)
_body = st.one_of(st.just(b""), st.binary(max_size=200),
                  _json.map(lambda v: json.dumps(v).encode()),
                  st.fixed_dictionaries({"matchers": _json, "by": _json, "minutes": _json,
                                         "all": _json}).map(lambda v: json.dumps(v).encode()),
                  st.integers(1, 60).map(lambda n: b"[" * n * 10 + b"]" * n * 10))
_request = st.tuples(
    st.sampled_from(["GET", "POST", "PUT", "DELETE", "HEAD", "PATCH", "OPTIONS"]),
    st.sampled_from(_ROUTES), st.lists(_segment, min_size=3, max_size=3),
    st.dictionaries(st.sampled_from(["Authorization", "Cookie", "Content-Type", "Origin",
                                     "X-Forwarded-For", "X-Slack-Signature",
                                     "X-Slack-Request-Timestamp", "X-CSRF-Token",
                                     "X-PagerDuty-Signature"]),
                    _header_value, max_size=4),
    _body)


@settings(max_examples=250, deadline=None, suppress_health_check=list(HealthCheck))
@given(req=_request)
def test_no_request_answers_500(worker: Worker, req: tuple[Any, ...]) -> None:
    method, template, segments, headers, body = req
    parts = iter(segments)
    target = re.sub(r"\{\w+\}", lambda _: next(parts), template)
    # Each example from an address of its own, so the throttle does not hide the handlers.
    answer = asyncio.run(request(worker.port, method, target, headers=list(headers.items()),
                                 body=body, source=fresh_source()))
    assert answer is not None, f"{method} {target}: no answer"
    assert answer.status < 500 or (template == "/readyz" and answer.status == 503), \
        (method, target, headers, body[:200], answer.status, answer.body[:300])


async def test_refused_requests_changed_nothing(worker: Worker) -> None:
    for topic in (topics.ACKS, topics.SILENCES, topics.RAW):
        records = await read_all(worker.bootstrap, topic.name, idle_s=2)
        assert not [r for r in records if MARK in json.dumps(r)], topic.name
    assert (await worker.call("GET", "/healthz")).status == 200
