"""Escalation end to end: Slack → push → email, stopped by an acknowledgement from Slack.

Real parts: the embedded broker, `escucha worker` and `escucha replay` as processes, the
bundled model, and local servers speaking Slack's Web API, ntfy's publish API and SMTP.
Two brands go into crisis together; Acme is acknowledged with a signed Slack button click,
Globex nobody answers, so it escalates to push (level 2) and then email (level 3).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from streams.connectors.simulate import Crisis, SimBrand, simulate
from streams.core.links import LinkSigner
from streams.runtime.broker import EmbeddedBroker
from tests.fakes.ntfy import FakeNtfy
from tests.fakes.slack import FakeSlack, sign_slack_request
from tests.fakes.smtp import FakeSMTP
from tests.support.procs import EscuchaProcess, free_port, write_config

SIGNING_SECRET = "test-signing-secret-0123456789"
API_TOKEN = "api-token-0123456789abcdef"
LINK_SECRET = "link-secret-0123456789abcdef"
_START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _history(path: Path) -> None:
    mentions = simulate(
        brands=[SimBrand(name="Acme", terms=("Acme", "AcmePhone")),
                SimBrand(name="Globex", terms=("Globex", "GlobexPay"))],
        start=_START, duration=timedelta(minutes=20), rate_per_min=30,
        crises=[Crisis(brand="Acme", start=timedelta(minutes=15),
                       duration=timedelta(minutes=4), multiplier=8.0, topic="outage"),
                Crisis(brand="Globex", start=timedelta(minutes=15),
                       duration=timedelta(minutes=4), multiplier=8.0, topic="data breach")],
        seed=11)
    path.write_text("".join(m.model_dump_json() + "\n" for m in mentions))


def _http(method: str, url: str, *, body: bytes | None = None,
          headers: dict[str, str] | None = None) -> tuple[int, str]:
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def _block_action(incident_id: str, action_id: str, channel: str, ts: str) -> bytes:
    """A block_actions interaction as Slack sends it: form-encoded `payload` JSON."""
    payload = {
        "type": "block_actions", "api_app_id": "A0001", "token": "legacy-unused",
        "team": {"id": "T0001", "domain": "escucha-test"},
        "user": {"id": "U0ANA", "username": "ana", "name": "ana", "team_id": "T0001"},
        "container": {"type": "message", "message_ts": ts, "channel_id": channel},
        "channel": {"id": channel, "name": "crisis"},
        "message": {"type": "message", "ts": ts, "text": "alert"},
        "trigger_id": "1.2.3", "response_url": "https://hooks.slack.com/actions/T/1/x",
        "actions": [{"type": "button", "action_id": action_id, "block_id": "actions",
                     "value": incident_id, "action_ts": str(time.time())}],
    }
    return urllib.parse.urlencode({"payload": json.dumps(payload)}).encode()


def _incident_of(call: Any) -> str:
    return str(call.params["metadata"]["event_payload"]["incident_id"])


async def _wait(predicate: Any, *, timeout: float, what: str) -> Any:  # noqa: ASYNC109
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        await asyncio.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


async def test_ack_from_slack_stops_escalation_and_unacked_escalates(
    tmp_path: Path, broker: EmbeddedBroker
) -> None:
    history = tmp_path / "history.jsonl"
    _history(history)
    port = free_port()
    async with FakeSlack(signing_secret=SIGNING_SECRET, known_channels={"#crisis"}) as slack, \
            FakeNtfy(token="ntfy-token") as ntfy, FakeSMTP() as smtp:
        config = write_config(
            tmp_path / "escucha.yaml",
            # The replayed history is only 20 minutes long, published in event-time order.
            detect={"warmup_min": 8, "lateness_min": 2},
            notifiers={
                "slack": {"token": "xoxb-test-token", "signing_secret": SIGNING_SECRET,
                          "channel": "#crisis", "base_url": slack.url},
                "push": {"base_url": ntfy.url, "token": "ntfy-token"},
                "email": {"host": "127.0.0.1", "port": smtp.port,
                          "from_addr": "escucha@example.com"},
            },
            api={"tokens": [API_TOKEN], "public_url": f"http://127.0.0.1:{port}",
                 "link_secret": LINK_SECRET},
            escalation={
                "policies": [{"id": "crisis", "levels": [
                    {"targets": [{"slack": "#crisis"}, {"slack": "#nonexistent"}],
                     "timeout_s": 10},
                    {"targets": [{"push": "crisis-oncall"}], "timeout_s": 10},
                    {"targets": [{"email": ["lead@example.com"]}], "timeout_s": 10},
                ]}],
                "route": {"policy": "crisis"},
                "fallback": [{"email": ["fallback@example.com"]}],
            },
            watches=[{"id": "acme", "name": "Acme", "terms": ["acme", "acmephone"]},
                     {"id": "globex", "name": "Globex", "terms": ["globex", "globexpay"]}],
            datadir=str(tmp_path / "var"),
        )
        env = {"ESCUCHA_KAFKA_BOOTSTRAP": broker.bootstrap, "ESCUCHA_WEB_PORT": str(port)}
        worker = EscuchaProcess(["worker", "--config", str(config)], env=env,
                                log=tmp_path / "worker.log")
        try:
            await asyncio.to_thread(
                subprocess.run,
                [sys.executable, "-m", "streams.cli", "replay", str(history),
                 "--config", str(config)],
                env={**os.environ, **env}, check=True, timeout=120, capture_output=True)

            def first_posts() -> dict[str, Any] | None:
                posts = {}
                for call in slack.posted:
                    if call.params.get("thread_ts"):
                        continue
                    posts[_incident_of(call).split(".")[0]] = call
                return posts if {"acme", "globex"} <= posts.keys() else None

            posts = await _wait(first_posts, timeout=150, what="both Slack alerts")
            acme, globex = _incident_of(posts["acme"]), _incident_of(posts["globex"])
            acme_msg = next(m for m in slack.messages() if
                            m["metadata"]["event_payload"]["incident_id"] == acme)
            channel, ts = acme_msg["channel"], acme_msg["ts"]

            # A forged and a stale click change nothing.
            body = _block_action(acme, "escucha_ack", channel, ts)
            forged = sign_slack_request(body, signing_secret="not-the-secret")
            stale = sign_slack_request(body, signing_secret=SIGNING_SECRET,
                                       timestamp=int(time.time()) - 6 * 60)
            for headers in (forged, stale):
                status, _ = _http("POST", f"http://127.0.0.1:{port}/slack/actions",
                                  body=body, headers={**headers, "Content-Type":
                                                      "application/x-www-form-urlencoded"})
                assert status == 401
            # The real click.
            status, _ = _http(
                "POST", f"http://127.0.0.1:{port}/slack/actions", body=body,
                headers={**sign_slack_request(body, signing_secret=SIGNING_SECRET),
                         "Content-Type": "application/x-www-form-urlencoded"})
            assert status == 200

            def acked_in_place() -> bool:
                msg = next(m for m in slack.messages() if m["ts"] == ts)
                return "Acknowledged by ana" in json.dumps(msg["blocks"])

            await _wait(acked_in_place, timeout=30, what="the Slack message to show the ack")
            assert sum(1 for c in slack.posted if not c.params.get("thread_ts")
                       and _incident_of(c) == acme) == 1  # updated in place, not reposted

            # Globex, unanswered, reaches push at ~10 s and email at ~20 s.
            await _wait(lambda: [m for m in ntfy.messages if globex.split(".")[0] in
                                 json.dumps(m).lower()], timeout=60, what="level-2 push")
            await _wait(lambda: [m for m in smtp.messages if "lead@example.com" in
                                 str(m["To"])], timeout=60, what="level-3 email")
            # Acme never escalated: no push, no email about it.
            assert not [m for m in ntfy.messages if "acme" in json.dumps(m).lower()]
            assert not [m for m in smtp.messages if "lead@example.com" in str(m["To"])
                        and "Acme" in str(m["Subject"])]
            # #nonexistent answered channel_not_found: the fallback address got the alert.
            await _wait(lambda: [m for m in smtp.messages if "fallback@example.com" in
                                 str(m["To"])], timeout=30, what="fallback email")

            # Links: tampered and expired ones are refused; GET never acts.
            signer = LinkSigner(secret=LINK_SECRET.encode(), base_url=f"http://127.0.0.1:{port}")
            good = signer.token(globex, "ack")
            tampered = good[:-3] + ("AAA" if not good.endswith("AAA") else "BBB")
            expired = signer.token(globex, "ack", now=datetime.now(UTC) - timedelta(days=2))
            for token in (tampered, expired):
                status, page = _http("POST", f"http://127.0.0.1:{port}/a/{token}", body=b"")
                assert status == 403, page
            status, page = _http("GET", f"http://127.0.0.1:{port}/a/{good}")
            assert status == 200 and "<form" in page

            # The API needs its token; with it, resolve Acme.
            status, _ = _http("POST", f"http://127.0.0.1:{port}/api/incidents/{acme}/resolve")
            assert status == 401
            status, _ = _http("POST", f"http://127.0.0.1:{port}/api/incidents/{acme}/resolve",
                              body=b'{"by": "lead"}',
                              headers={"Authorization": f"Bearer {API_TOKEN}",
                                       "Content-Type": "application/json"})
            assert status == 202

            def resolved() -> bool:
                _, text = _http("GET", f"http://127.0.0.1:{port}/api/incidents/{acme}",
                                headers={"Authorization": f"Bearer {API_TOKEN}"})
                data = json.loads(text)
                return data.get("state") == "resolved"

            await _wait(resolved, timeout=30, what="Acme resolved")
            _, text = _http("GET", f"http://127.0.0.1:{port}/api/incidents/{acme}",
                            headers={"Authorization": f"Bearer {API_TOKEN}"})
            kinds = [e["kind"] for e in json.loads(text)["timeline"]]
            assert "ack" in kinds and "resolve" in kinds and "escalate" not in kinds

            # The CLI lists both and acknowledges Globex through the same API.
            cli_env = {**os.environ, "ESCUCHA_API_TOKEN": API_TOKEN}
            url = f"http://127.0.0.1:{port}"
            listed = (await asyncio.to_thread(
                subprocess.run,
                [sys.executable, "-m", "streams.cli", "incidents", "list", "--url", url],
                env=cli_env, capture_output=True, text=True, timeout=60, check=True)).stdout
            assert acme in listed and globex in listed and "resolved" in listed
            await asyncio.to_thread(
                subprocess.run,
                [sys.executable, "-m", "streams.cli", "incidents", "ack", globex, "--url", url,
                 "--by", "luis"], env=cli_env, capture_output=True, timeout=60, check=True)

            def globex_acked() -> bool:
                _, text = _http("GET", f"{url}/api/incidents/{globex}",
                                headers={"Authorization": f"Bearer {API_TOKEN}"})
                data = json.loads(text)
                return data.get("state") == "acknowledged" and data.get("acked_by") == "luis"

            await _wait(globex_acked, timeout=30, what="Globex acknowledged from the CLI")

            # A silence over the API is listed back.
            status, text = _http("POST", f"{url}/api/silences",
                                 body=json.dumps({"matchers": {"watch": "globex"},
                                                  "minutes": 30, "by": "luis"}).encode(),
                                 headers={"Authorization": f"Bearer {API_TOKEN}",
                                          "Content-Type": "application/json"})
            assert status == 201, text

            def silence_listed() -> bool:
                _, listed = _http("GET", f"{url}/api/silences",
                                  headers={"Authorization": f"Bearer {API_TOKEN}"})
                return "globex" in listed

            await _wait(silence_listed, timeout=30, what="the silence to be listed")
        finally:
            worker.close()
