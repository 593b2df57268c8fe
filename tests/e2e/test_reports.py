"""The weekly report end to end: a simulated fortnight with an Acme crisis, then `report send`.

Real parts: the embedded broker, `escucha worker`, `escucha replay` and `escucha report send`
as processes, the bundled model, aiosmtpd and a local Slack Web API server. The numbers in the
email (HTML and text), the PDF and the Slack message must equal what the classifier put on
escucha.mentions.enriched for the report's week and the week before.

`ESCUCHA_REPORT_SAMPLES=docs/report pytest tests/e2e/test_reports.py` keeps the PDF and the
charts of this run as the README's samples.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from pypdf import PdfReader

from agents.classify.matching import WatchMatcher
from streams.config.settings import load_settings
from streams.connectors.simulate import Crisis, SimBrand, simulate
from streams.core import topics
from streams.runtime.broker import EmbeddedBroker
from streams.runtime.views import AggregateView
from tests.fakes.slack import FakeSlack
from tests.fakes.smtp import FakeSMTP
from tests.support.kafka import read_all
from tests.support.procs import EscuchaProcess, free_port, write_config

TZ = ZoneInfo("Europe/Madrid")
API_TOKEN = "api-token-0123456789abcdef"
# The fortnight ends at last midnight in Madrid, as a Monday-morning report's week does; the
# crisis is the evening before, so the incident's times to act are hours, not weeks.
END = datetime.now(TZ).replace(hour=0, minute=0, second=0, microsecond=0).astimezone(UTC)
PNG = b"\x89PNG\r\n\x1a\n"
SAMPLES = os.environ.get("ESCUCHA_REPORT_SAMPLES")
_TD = 'style="padding:3px 8px;border-bottom:1px solid #e3e6ea;vertical-align:top"'


def _weeks_back(end: datetime, weeks: int) -> datetime:
    """``weeks`` calendar weeks before ``end`` in Madrid, as the report counts them."""
    local = end.astimezone(TZ).replace(tzinfo=None) - timedelta(days=7 * weeks)
    return local.replace(tzinfo=TZ).astimezone(UTC)


def _history(path: Path, config: Path) -> set[str]:
    mentions = list(simulate(
        brands=[SimBrand(name="Acme", terms=("Acme", "AcmePhone")),
                SimBrand(name="Globex", terms=("Globex", "GlobexPay"))],
        start=END - timedelta(days=14), duration=timedelta(days=14), rate_per_min=0.04,
        crises=[Crisis(brand="Acme", start=timedelta(days=13, hours=19),
                       duration=timedelta(minutes=20), multiplier=300.0, topic="outage")],
        seed=3))
    path.write_text("".join(m.model_dump_json() + "\n" for m in mentions))
    matcher = WatchMatcher(load_settings(config).watches)
    return {m.key for m in mentions if matcher.match(m)}


def _http(method: str, url: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    req = urllib.request.Request(url, method=method,
                                 data=json.dumps(body).encode() if body is not None else None,
                                 headers={"Authorization": f"Bearer {API_TOKEN}",
                                          "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError:
        return 0, None


async def _wait(what: str, check: Callable[[], Any], *, timeout: float,  # noqa: ASYNC109
                worker: EscuchaProcess, state: dict[str, int] | None = None) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = await check() if asyncio.iscoroutinefunction(check) else check()
        if found:
            return found
        await asyncio.sleep(1.0)
    raise AssertionError(f"timed out waiting for {what} ({state or ''})\n"
                         f"{worker.output()[-3000:]}")


def _counts(enriched: list[dict[str, Any]], since: datetime, until: datetime
            ) -> dict[str, dict[str, int]]:
    """Per watch, from the enriched topic, each (watch, mention) once."""
    seen: dict[tuple[str, str], dict[str, Any]] = {}
    for em in enriched:
        seen[(em["watch_id"], f"{em['mention']['source']}:{em['mention']['id']}")] = em
    out: dict[str, dict[str, int]] = {}
    for (watch, _), em in seen.items():
        if since <= datetime.fromisoformat(em["mention"]["created_at"]) < until:
            c = out.setdefault(watch, {"count": 0, "negative": 0, "reach": 0})
            c["count"] += 1
            c["negative"] += em["sentiment"]["label"] == "negative"
            c["reach"] += em["mention"]["author"]["followers"]
    return out


def _keep(name: str, content: bytes) -> None:
    if SAMPLES:
        Path(SAMPLES).mkdir(parents=True, exist_ok=True)
        (Path(SAMPLES) / name).write_bytes(content)


async def test_weekly_report_by_email_slack_and_pdf_matches_the_enriched_counts(
    tmp_path: Path, broker: EmbeddedBroker
) -> None:
    port = free_port()
    # The schedule fires three days from now: only `report send` may send during the test.
    weekday = (END.astimezone(TZ).isoweekday() + 3) % 7
    async with FakeSlack(known_channels={"#crisis", "#reports"}) as slack, \
            FakeSMTP() as smtp:
        config = write_config(
            tmp_path / "escucha.yaml",
            notifiers={"slack": {"token": "xoxb-test-token", "channel": "#crisis",
                                 "base_url": slack.url},
                       "email": {"host": "127.0.0.1", "port": smtp.port,
                                 "from_addr": "escucha <reports@example.com>"}},
            api={"tokens": [API_TOKEN], "public_url": f"http://127.0.0.1:{port}"},
            watches=[{"id": "acme", "name": "Acme", "terms": ["acme", "acmephone"],
                      "competitors": ["globex"]},
                     {"id": "globex", "name": "Globex", "terms": ["globex", "globexpay"]}],
            reports=[{"id": "weekly", "name": "Weekly brand report",
                      "audience": "Crisis team and board", "schedule": f"0 8 * * {weekday}",
                      "timezone": "Europe/Madrid", "period": "7d", "watches": ["acme"],
                      "email": ["board@example.com"], "slack": "#reports",
                      "pdf_dir": str(tmp_path / "reports")}],
            datadir=str(tmp_path / "var"),
        )
        history = tmp_path / "history.jsonl"
        replayed = _history(history, config)
        env = {"ESCUCHA_KAFKA_BOOTSTRAP": broker.bootstrap, "ESCUCHA_WEB_PORT": str(port)}
        run_env = {**os.environ, **env}
        worker = EscuchaProcess(["worker", "--config", str(config)], env=env,
                                log=tmp_path / "worker.log")
        view = AggregateView(bootstrap=broker.bootstrap, topic=topics.AGGREGATES.name)
        view_task = asyncio.create_task(view.run())
        try:
            started = time.monotonic()
            await asyncio.to_thread(
                subprocess.run, [sys.executable, "-m", "streams.cli", "replay", str(history),
                                 "--config", str(config)],
                env=run_env, check=True, timeout=120, capture_output=True)

            state: dict[str, int] = {}

            async def settled() -> list[dict[str, Any]] | None:
                # Every matching post classified, and the stored buckets add up to them.
                enriched = await read_all(broker.bootstrap, topics.ENRICHED.name, idle_s=1.0)
                keys = {f"{e['mention']['source']}:{e['mention']['id']}" for e in enriched}
                stored = sum(b.count for b in list(view.items.values()))
                distinct = len({(e["watch_id"], e["mention"]["id"]) for e in enriched})
                state.update(replayed=len(replayed), classified=len(keys & replayed),
                             enriched=len(enriched), distinct=distinct, stored=stored)
                return enriched if keys == replayed and stored == distinct else None

            enriched = await _wait("the aggregates to catch up", settled, timeout=150,
                                   worker=worker, state=state)
            base = f"http://127.0.0.1:{port}/api/incidents"

            def acme_incident() -> str | None:
                status, body = _http("GET", base)
                found = [i["id"] for i in (body or {}).get("incidents", [])
                         if status == 200 and i["watch_id"] == "acme"
                         and i["detector"] in ("volume_spike", "negative_spike")]
                return found[0] if found else None

            incident_id = await _wait("the crisis incident", acme_incident, timeout=60,
                                      worker=worker)
            for action in ("ack", "resolve"):
                status, _ = _http("POST", f"{base}/{incident_id}/{action}", {"by": "ana"})
                assert status == 202, status
            await _wait("the incident resolved", lambda: _http(
                "GET", f"{base}/{incident_id}")[1].get("state") == "resolved", timeout=30,
                worker=worker)
            await asyncio.sleep(1.5)  # the snapshot reaches escucha.incidents
            sent = await asyncio.to_thread(
                subprocess.run, [sys.executable, "-m", "streams.cli", "report", "send",
                                 "weekly", "--end", f"{END.astimezone(TZ):%Y-%m-%d}",
                                 "--config", str(config)],  # a bare date: Madrid's midnight
                env=run_env, timeout=120, capture_output=True, text=True)
            assert sent.returncode == 0, sent.stderr
            adhoc = tmp_path / "adhoc" / "acme.pdf"  # on demand, from the same stored data
            made = await asyncio.to_thread(
                subprocess.run, [sys.executable, "-m", "streams.cli", "report", "--watch",
                                 "acme", "--period", "7d", "--timezone", "Europe/Madrid",
                                 "--end", f"{END.astimezone(TZ):%Y-%m-%d}", "--out", str(adhoc),
                                 "--config", str(config)],
                env=run_env, timeout=120, capture_output=True, text=True)
            assert made.returncode == 0, made.stderr
            elapsed = time.monotonic() - started
        finally:
            view_task.cancel()
            worker.close()

    start, previous_start = _weeks_back(END, 1), _weeks_back(END, 2)
    now_ = _counts(enriched, start, END)
    before = _counts(enriched, previous_start, start)
    acme, globex = now_["acme"], now_["globex"]
    assert acme["count"] > 400 and before["acme"]["count"] > 100  # the crisis is in this week
    sov = 100 * acme["count"] / (acme["count"] + globex["count"])
    # (label, value) as the report words them; the value is the start of the line after it.
    facts = [("Mentions", f"{acme['count']:,} (previous period {before['acme']['count']:,}, "),
             ("Negative", f"{acme['negative']:,} ("),
             ("Reach", f"{acme['reach']:,} (previous {before['acme']['reach']:,})"),
             ("Share of voice", f"Acme {sov:.1f}% ({acme['count']:,}), Globex "
                                f"{100 - sov:.1f}% ({globex['count']:,})")]
    incidents = {}
    for raw in await read_all(broker.bootstrap, topics.INCIDENTS.name, idle_s=1.0):
        incidents[raw["id"]] = raw
    in_week = [i for i in incidents.values() if i["watch_id"] == "acme"
               and start <= datetime.fromisoformat(i["opened_at"]) < END]
    assert incident_id in {i["id"] for i in in_week}
    facts.append(("Incidents", f"{len(in_week)} (median time to acknowledge "))

    # The email: a text part and HTML with every chart inline, plus the PDF.
    reports = [m for m in smtp.messages if str(m["Subject"]).startswith("Weekly brand report")]
    assert len(reports) == 1, [str(m["Subject"]) for m in smtp.messages]
    mail: EmailMessage = reports[0]
    assert smtp.envelopes[smtp.messages.index(mail)].rcpt_tos == ["board@example.com"]
    text = mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    html_part = mail.get_body(("html",))
    assert html_part is not None
    html = html_part.get_content()
    related = next(p for p in mail.walk() if p.get_content_type() == "multipart/related")
    images = [p for p in related.iter_parts() if p.get_content_type() == "image/png"]
    assert len(images) == 3
    for image in images:
        assert image.get_content().startswith(PNG)
        assert f'src="cid:{image["Content-ID"].strip("<>")}"' in html
    for label, value in facts:
        assert f"{label}: {value}" in text, (label, value, text[:2000])
        assert f"<b>{label}</b></td><td {_TD}>{value}" in html, (label, value)

    # Slack: one message sharing one uploaded image, the same chart as in the email.
    assert len(slack.uploads) == 1 and slack.uploads[0].shared
    upload = slack.uploads[0]
    assert upload.channel == FakeSlack.channel_id("#reports")
    volume = next(p for p in images if "volume" in str(p.get_filename()))
    assert upload.content == volume.get_content()
    assert f"{acme['count']:,} mentions" in (upload.initial_comment or "")
    assert [c.method for c in slack.calls].count("files.completeUploadExternal") == 1

    # The PDF file, and the copy attached to the email, hold the same totals as text.
    pdfs = list((tmp_path / "reports").glob("weekly-*.pdf"))
    assert len(pdfs) == 1
    attached = next(p for p in mail.walk() if p.get_content_type() == "application/pdf")
    assert attached.get_content() == pdfs[0].read_bytes()
    pages = PdfReader(io.BytesIO(pdfs[0].read_bytes())).pages
    pdf_text = " ".join(" ".join(p.extract_text() for p in pages).split())
    for label, value in facts:
        assert " ".join(f"{label} {value}".split()) in pdf_text, (label, value)

    adhoc_pages = PdfReader(io.BytesIO(adhoc.read_bytes())).pages
    adhoc_text = " ".join(" ".join(p.extract_text() for p in adhoc_pages).split())
    label, value = facts[0]
    assert " ".join(f"{label} {value}".split()) in adhoc_text

    # The ledger holds what `send` delivered, so the schedule will not send that slot again.
    ledger = await read_all(broker.bootstrap, topics.REPORTS.name, idle_s=1.0)
    sent_by_hand = {(e["channel"], e["outcome"]) for e in ledger if e["trigger"] == "manual"}
    assert sent_by_hand == {("pdf", "delivered"), ("email", "delivered"),
                            ("slack", "delivered")}

    _keep("report-sample.pdf", pdfs[0].read_bytes())
    for image in images:
        kind = str(image.get_filename()).split("-", 1)[0]
        _keep(f"report-sample-{kind}.png", image.get_content())
    assert elapsed < 150, f"took {elapsed:.0f}s"
