"""A claim on a live incident's sample mention reaches that incident's worker: the claim API
on the real web app puts an Ack (action ``claim``) on the real broker's acks topic, for the
incidents that hold the mention and not for a resolved one."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import aiohttp
from aiohttp.test_utils import TestServer

from agents.store import store_for
from streams.config.settings import Settings
from streams.core import topics
from streams.core.records import Incident, SampleMention
from streams.runtime.broker import EmbeddedBroker
from streams.wiring import build_worker
from tests.support.kafka import read_all
from tests.support.secured import API_TOKEN, secured_sections
from tests.support.store import enriched

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def incident(n: int, state: str, keys: list[str]) -> Incident:
    return Incident(
        id=f"acme.{n:016x}", fingerprint=f"acme:{n}", watch_id="acme", detector="spike",
        severity="warning", state=state, opened_at=T0, updated_at=T0, summary="s",  # type: ignore[arg-type]
        samples=[SampleMention(key=k, url=None, author="a", text="t", priority=1)
                 for k in keys])


async def test_a_claim_is_sent_to_the_live_incidents_holding_the_mention(
        tmp_path: Path, broker: EmbeddedBroker) -> None:
    sections = secured_sections(tmp_path, port=6066, bootstrap=broker.bootstrap)
    settings = Settings(**sections)
    writer = store_for(settings)
    writer.write([enriched(1, "Acme battery exploded")])
    writer.close()
    pipeline = build_worker(settings, bootstrap=broker.bootstrap)
    view = pipeline.views.incidents
    # What the view would have read from the incidents topic: two live incidents holding
    # x:1, a resolved one holding it, and one live incident without it.
    for inc in (incident(1, "open", ["x:1"]), incident(2, "acknowledged", ["x:9", "x:1"]),
                incident(3, "resolved", ["x:1"]), incident(4, "open", ["x:2"])):
        view.items[inc.id] = inc
    web = pipeline.app.web
    web.init_server()
    server = TestServer(web.web_app, host="127.0.0.1", port=0)
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as http, http.post(
                f"http://127.0.0.1:{server.port}/api/mentions/x:1/claim",
                json={"by": "Ana"},
                headers={"Authorization": f"Bearer {API_TOKEN}"}) as r:
            assert r.status == 200
    finally:
        await server.close()
        await pipeline.app.producer.stop()
    acks = await read_all(broker.bootstrap, topics.ACKS.name, idle_s=2)
    assert sorted((a["incident_id"], a["action"], a["by"], a["mention"], a["note"])
                  for a in acks) == [
        (f"acme.{n:016x}", "claim", "Ana", "x:1", "Ana is answering this") for n in (1, 2)]
    # And as data, so each reader's console and Slack say it in their language.
    assert [a["claim"] for a in acks] == [
        {"key": "claim", "params": {"state": "claimed", "who": "Ana", "reason": ""}}] * 2
