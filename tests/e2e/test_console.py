"""The incident console in real headless Chromium against a real worker.

Real parts: the embedded broker, `escucha worker` and `escucha replay` as processes, the bundled
model, local Slack Web API and ntfy servers, and Debian's chromium driven by Playwright. A
responder signs in, watches an incident appear without reloading, opens it and acknowledges
it; the Slack message changes in place and the escalation to push never happens. A viewer sees
no buttons and is refused if it posts anyway; requests without a session or a CSRF token
change nothing.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

from playwright.async_api import Page, expect

from streams.connectors.simulate import Crisis, SimBrand, simulate
from streams.runtime.broker import EmbeddedBroker
from streams.web.console.auth import hash_password
from tests.fakes.ntfy import FakeNtfy
from tests.fakes.slack import FakeSlack
from tests.fakes.smtp import FakeSMTP
from tests.support.browser import chromium
from tests.support.procs import EscuchaProcess, free_port, write_config

SIGNING_SECRET = "test-signing-secret-0123456789"
# Recent, so the watch overview's "last 24 hours" (wall clock) holds the replayed history.
_START = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=25)
PLAYBOOK_TEMPLATE = "We're on it <!channel> <https://evil.example|status> <b>"
ANA, VIC = ("ana", "ana's long password"), ("vic", "vic's long password")
# `ESCUCHA_SCREENSHOTS=docs/screenshots pytest tests/e2e/test_console.py` refreshes the README's.
SHOTS = os.environ.get("ESCUCHA_SCREENSHOTS")


def _history(path: Path) -> None:
    mentions = simulate(
        brands=[SimBrand(name="Acme", terms=("Acme", "AcmePhone")),
                SimBrand(name="Globex", terms=("Globex", "GlobexPay"))],
        start=_START, duration=timedelta(minutes=20), rate_per_min=30,
        crises=[Crisis(brand="Acme", start=timedelta(minutes=15),
                       duration=timedelta(minutes=4), multiplier=8.0, topic="outage")],
        seed=11)
    path.write_text("".join(m.model_dump_json() + "\n" for m in mentions))


def _post(url: str, body: bytes, headers: dict[str, str] | None = None) -> int:
    req = urllib.request.Request(url, data=body, method="POST", headers={
        "Content-Type": "application/x-www-form-urlencoded", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


async def _sign_in(page: Page, base: str, user: tuple[str, str]) -> None:
    await page.goto(f"{base}/console")
    await expect(page).to_have_url(f"{base}/console/login?next=/console")
    await page.get_by_label("Username").fill(user[0])
    await page.get_by_label("Password", exact=True).fill(user[1])
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("heading", name="Incidents")).to_be_visible()


async def _shot(page: Page, name: str, tmp: Path) -> None:
    path = tmp / name
    await page.screenshot(path=str(path), full_page=True)
    if SHOTS:
        await asyncio.to_thread(_keep, path, Path(SHOTS) / name)


def _keep(path: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(path, dest)


async def test_console_sign_in_live_incident_ack_and_roles(
    tmp_path: Path, broker: EmbeddedBroker
) -> None:
    history = tmp_path / "history.jsonl"
    _history(history)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    async with FakeSlack(signing_secret=SIGNING_SECRET, known_channels={"#crisis"}) as slack, \
            FakeNtfy(token="ntfy-token") as ntfy, FakeSMTP() as smtp:
        config = write_config(
            tmp_path / "escucha.yaml",
            detect={"warmup_min": 8, "lateness_min": 2},
            notifiers={
                "slack": {"token": "xoxb-test-token", "signing_secret": SIGNING_SECRET,
                          "channel": "#crisis", "base_url": slack.url},
                "push": {"base_url": ntfy.url, "token": "ntfy-token"},
                "email": {"host": "127.0.0.1", "port": smtp.port,
                          "from_addr": "escucha@example.com"},
            },
            api={"public_url": base, "link_secret": "link-secret-0123456789abcdef"},
            escalation={
                "policies": [{"id": "crisis", "levels": [
                    {"targets": [{"slack": "#crisis"}, {"email": ["comms@example.com"]}],
                     "timeout_s": 15},
                    {"targets": [{"push": "crisis-oncall"}], "timeout_s": 15},
                ]}],
                "route": {"policy": "crisis"},
            },
            playbooks=[{
                "id": "outage", "name": "Service outage", "owner": "Comms lead",
                "match": {"watch": "acme"}, "experts": ["Ops: Luis"],
                "steps": [{"id": "status", "text": "Check the status page with Ops"},
                          {"id": "holding", "text": "Post the holding statement"}],
                "templates": [{"channel": "x", "text": PLAYBOOK_TEMPLATE}],
                "do_not_respond": ["Do not argue with trolls"]}],
            console={"users": [
                {"username": ANA[0], "password_hash": hash_password(ANA[1]),
                 "role": "responder"},
                {"username": VIC[0], "password_hash": hash_password(VIC[1]), "role": "viewer"},
            ]},
            watches=[{"id": "acme", "name": "Acme", "terms": ["acme", "acmephone"],
                      "competitors": ["globex"]},
                     {"id": "globex", "name": "Globex", "terms": ["globex", "globexpay"]}],
            datadir=str(tmp_path / "var"),
        )
        env = {"ESCUCHA_KAFKA_BOOTSTRAP": broker.bootstrap, "ESCUCHA_WEB_PORT": str(port)}
        worker = EscuchaProcess(["worker", "--config", str(config)], env=env,
                                log=tmp_path / "worker.log")
        try:
            worker.wait_for_output(r"console at ", timeout=60)
            async with chromium() as browser:
                ana = await (await browser.new_context(viewport={"width": 1100,
                                                                 "height": 900})).new_page()
                for _ in range(60):  # the web server comes up a moment after the log line
                    try:
                        await _sign_in(ana, base, ANA)
                        break
                    except Exception:  # connection refused until it listens
                        await asyncio.sleep(1)
                else:
                    raise AssertionError(worker.output()[-3000:])
                await expect(ana.get_by_text("No incidents match.")).to_be_visible()
                await ana.evaluate("window.__notReloaded = true")

                # The crisis arrives through the pipeline while the page stays open.
                await asyncio.to_thread(
                    subprocess.run,
                    [sys.executable, "-m", "streams.cli", "replay", str(history),
                     "--config", str(config)],
                    env={**os.environ, **env}, check=True, timeout=120, capture_output=True)
                row = ana.locator('tr[data-id^="acme."]').first
                await expect(row).to_be_visible(timeout=150_000)
                assert await ana.evaluate("window.__notReloaded === true")  # no reload
                await expect(ana.get_by_role("status")).to_contain_text("open")
                await _shot(ana, "console-list.png", tmp_path)

                incident_id = await row.get_attribute("data-id")
                assert incident_id
                await row.get_by_role("link").click()
                await expect(ana.get_by_role("heading", name="Why this fired")).to_be_visible()
                await expect(ana.get_by_role("img", name="Mentions of Acme over time")
                             ).to_be_visible()
                await expect(ana.locator("svg.signals")).to_contain_text("expected")
                await expect(ana.get_by_role("heading", name="Who is on call")).to_be_visible()
                await expect(ana.locator(".oncall")).to_contain_text("slack #crisis")
                await expect(ana.locator(".mentions li").first).to_be_visible()
                await _shot(ana, "console-incident.png", tmp_path)

                # Without a CSRF token, or without a session, nothing changes.
                action = f"{base}/console/incidents/{incident_id}"
                cookies = {c["name"]: c["value"] for c in await ana.context.cookies()}
                cookie = f"escucha_session={cookies['escucha_session']}"
                assert _post(f"{action}/resolve", b"", {"Cookie": cookie}) == 403
                assert _post(f"{action}/resolve", b"csrf=forged", {"Cookie": cookie}) == 403
                assert _post(f"{action}/resolve", b"") == 401

                # A viewer sees the incident but no buttons, and a post of its own is refused.
                vic = await (await browser.new_context()).new_page()
                await _sign_in(vic, base, VIC)
                await vic.goto(f"{base}/console/incidents/{incident_id}")
                await expect(vic.get_by_text("signed in read-only")).to_be_visible()
                assert await vic.get_by_role("button", name="Acknowledge").count() == 0
                vic_csrf = await vic.evaluate(
                    "document.querySelector('input[name=csrf]').value")
                vic_cookie = {c["name"]: c["value"] for c in await vic.context.cookies()}
                assert _post(f"{action}/ack", f"csrf={vic_csrf}".encode(),
                             {"Cookie": f"escucha_session={vic_cookie['escucha_session']}"}
                             ) == 403

                # The watch overview, from the stored aggregates, readable by viewers too.
                await vic.goto(f"{base}/console/watches")
                acme_card = vic.locator("section.watch", has=vic.get_by_role(
                    "heading", name="Acme", exact=True))
                await expect(acme_card.locator(".sov")).to_contain_text("Globex")
                sov = await acme_card.locator(".sov").inner_text()
                shares = [float(x) for x in re.findall(r"([\d.]+)%", sov)]
                assert len(shares) == 2 and abs(sum(shares) - 100) < 0.2 and min(shares) > 5, sov
                await expect(acme_card.locator(".mentions li").first).to_contain_text("priority")
                await _shot(vic, "console-watches.png", tmp_path)

                # From the incident to its stored mentions, watch and window filled in; a
                # viewer searches, filters and exports them.
                await vic.goto(f"{base}/console/incidents/{incident_id}")
                await vic.get_by_role("link", name=re.compile(
                    r"All [\d,]+\+? mentions? of this incident")).click()
                await expect(vic.get_by_role("heading", name="Mentions", exact=True)
                             ).to_be_visible()
                await expect(vic.locator("select[name=watch]")).to_have_value("acme")
                await expect(vic.locator("input[name=since]")).not_to_have_value("")
                await expect(vic.locator("tr[data-key]").first).to_be_visible()
                await vic.get_by_label("Search", exact=True).fill("acme")
                await vic.locator("select[name=sentiment]").select_option("negative")
                await vic.get_by_role("button", name="Search").click()
                await expect(vic.locator("tr[data-key]").first).to_be_visible()
                sentiments = await vic.locator("tr[data-key] .sentiment").all_inner_texts()
                assert sentiments and set(sentiments) == {"negative"}, sentiments
                await expect(vic.locator("a.original").first).to_have_attribute(
                    "href", re.compile(r"^https?://"))
                async with vic.expect_download() as download_info:
                    await vic.get_by_role("link", name="CSV").click()
                saved = Path(await (await download_info.value).path())
                exported = await asyncio.to_thread(saved.read_text)
                rows = list(csv.DictReader(io.StringIO(exported)))
                assert len(rows) >= len(sentiments)
                assert {r["sentiment"] for r in rows} == {"negative"}
                assert all("acme" in r["watch_ids"].split() for r in rows)

                # The playbook is on the page; marking a step done lands on the timeline.
                playbook = ana.locator("#playbook-section")
                await expect(playbook).to_contain_text("Service outage")
                # Inside a closed <details>: its text content, shown as text, not markup.
                await expect(playbook.locator(".template").first).to_have_text(
                    PLAYBOOK_TEMPLATE)
                await playbook.get_by_role("button", name="Mark done").first.click()
                await expect(ana.get_by_role("status")).to_contain_text("Step marked done")
                await expect(ana.locator(".timeline")).to_contain_text(
                    "step done via the console: Check the status page", timeout=30_000)

                # The real click, once the page has gone out: the crisis's texts repeat, so
                # its incident waits escalation.story_wait_s (15 s) before paging, and one
                # acknowledged before that pages nobody (tests/unit/agents/escalate/test_merge).
                def slack_posted() -> bool:
                    return any(m["metadata"]["event_payload"]["incident_id"] == incident_id
                               for m in slack.messages())

                posted_by = time.monotonic() + 60
                while not slack_posted():
                    assert time.monotonic() < posted_by, "the incident never paged Slack"
                    await asyncio.sleep(0.5)
                await ana.get_by_role("button", name="Acknowledge").click()
                await expect(ana.get_by_role("status")).to_contain_text("Acknowledgement sent")
                await expect(ana.locator("#incident-state")).to_contain_text(
                    "acknowledged", timeout=30_000)
                await expect(ana.locator(".timeline")).to_contain_text("ana")

            def slack_updated() -> bool:
                return any(m["metadata"]["event_payload"]["incident_id"] == incident_id
                           and "Acknowledged by ana" in json.dumps(m["blocks"])
                           for m in slack.messages())

            deadline = time.monotonic() + 30
            while not slack_updated():
                assert time.monotonic() < deadline, "the Slack message never showed the ack"
                await asyncio.sleep(0.5)
            # The playbook reached Slack and email with the incident, its template escaped.
            msg = next(m for m in slack.messages()
                       if m["metadata"]["event_payload"]["incident_id"] == incident_id)
            blocks = json.dumps(msg["blocks"])
            assert "Playbook: Service outage" in blocks and "[x] Check the status page" in blocks
            assert "<!channel>" not in blocks and "&lt;!channel&gt;" in blocks
            mails = [m for m in smtp.messages if "comms@example.com" in str(m["To"])]
            assert mails, "no email to the level-1 address"
            parts = {p.get_content_type(): p.get_content() for p in mails[0].walk()
                     if not p.is_multipart()}
            assert "Playbook: Service outage" in parts["text/plain"]  # plain text stays text
            assert "Playbook: Service outage" in parts["text/html"]
            html = " ".join(parts["text/html"].split())
            assert "on it <!channel>" not in html and "|status> <b>" not in html
            assert "on it &lt;!channel&gt;" in html and "|status&gt; &lt;b&gt;" in html
            posts = [c for c in slack.posted if not c.params.get("thread_ts") and
                     c.params["metadata"]["event_payload"]["incident_id"] == incident_id]
            assert len(posts) == 1  # updated in place, not reposted
            # Level 1 times out after 15 s; acknowledged, nothing may reach level 2 (push).
            await asyncio.sleep(20)
            assert not [m for m in ntfy.messages if "acme" in json.dumps(m).lower()]
        finally:
            worker.close()
