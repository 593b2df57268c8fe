"""The Mastodon connector against a fake Mastodon server and the real embedded broker."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from streams.connectors.base import ConnectorContext
from streams.connectors.mastodon import MastodonConnector, MastodonSettings
from streams.runtime.broker import EmbeddedBroker
from tests.fakes.mastodon import FakeMastodon, frame
from tests.support.connectors import dead_letters, raw_mentions, run_until

TOKEN = "tok-3f9a-secret"


def _settings(fake: FakeMastodon, **overrides: Any) -> MastodonSettings:
    values: dict[str, Any] = {
        "name": "masto", "base_url": fake.url, "access_token": TOKEN, "hashtags": ["#Acme"],
        "search": False, "initial_backoff_s": 0.05, "max_backoff_s": 0.5,
        "poll_interval_s": 0.2, "stream_idle_timeout_s": 5.0, "request_timeout_s": 5.0,
    }
    values.update(overrides)
    return MastodonSettings(**values)


class _Live:
    """The connector under ``run_until`` in the background, steered by the test."""

    def __init__(self, settings: MastodonSettings, broker: EmbeddedBroker, datadir: Path,
                 terms: list[str] | None = None) -> None:
        self.ctx: ConnectorContext | None = None
        self._stop = False
        self.task = asyncio.create_task(run_until(
            MastodonConnector(settings), bootstrap=broker.bootstrap, datadir=datadir,
            until=self._until, timeout=60.0, terms=terms))

    def _until(self, ctx: ConnectorContext) -> bool:
        self.ctx = ctx
        return self._stop

    async def wait(self, cond: Callable[[ConnectorContext], bool], within_s: float = 15.0,
                   ) -> ConnectorContext:
        deadline = time.monotonic() + within_s
        while self.ctx is None or not cond(self.ctx):
            if self.task.done():
                self.task.result()
                raise AssertionError("the connector stopped")
            if time.monotonic() > deadline:
                health = self.ctx.health if self.ctx else None
                raise AssertionError(f"condition not met in {within_s}s; health: {health}")
            await asyncio.sleep(0.02)
        return self.ctx

    async def finish(self) -> ConnectorContext:
        self._stop = True
        return await self.task


def _ids(records: list[dict[str, Any]]) -> Counter[str]:
    return Counter(r["id"] for r in records)


async def test_stream_delivers_statuses_as_mentions(broker: EmbeddedBroker,
                                                    tmp_path: Path) -> None:
    async with FakeMastodon(token=TOKEN, heartbeat_s=0.2) as fake:
        earlier = fake.post("Earlier post about acme", tags=["acme"])
        live = _Live(_settings(fake, public=True), broker, tmp_path)
        await live.wait(lambda c: c.health.events >= 1 and c.health.state == "ok")
        await fake.wait_streams(2)
        polls = len(fake.timeline_requests())
        html = ('<p>Acme&#39;s app is <strong>down</strong> again<br />since 9am</p><p>anyone? '
                '<a href="https://fake.social/tags/acme" class="mention hashtag" rel="tag">#'
                '<span>acme</span></a> <a href="https://acme.example/status/long" rel="nofollow">'
                '<span class="invisible">https://</span><span class="ellipsis">acme.example/'
                'stat</span><span class="invisible">us/long</span></a></p>')
        rich = fake.post(html=html, tags=["acme"], acct="bob@other.example", display_name="Bob",
                         followers=4321, language="de", spoiler="outage", favourites=5,
                         reblogs=2, replies=1)
        original = fake.status("the original post", tags=["acme"], acct="carol@x.example",
                               display_name="", followers=-1)
        fake.post(status=fake.status("", acct="dave", reblog=original))
        await live.wait(lambda c: c.health.events >= 3)
        await live.finish()

    assert len(fake.timeline_requests()) == polls, "live statuses must come by the stream"
    records = await raw_mentions(broker.bootstrap)
    # The rich status reached both the hashtag and the public stream: published once.
    assert _ids(records) == Counter([earlier["id"], rich["id"], original["id"]])
    by_id = {r["id"]: r for r in records}
    m = by_id[rich["id"]]
    assert m["source"] == "mastodon"
    assert m["url"] == rich["url"]
    assert m["author"] == {"handle": "bob@other.example", "name": "Bob", "followers": 4321,
                           "verified": False}
    assert m["text"] == ("outage\n\nAcme's app is down again\nsince 9am\n\n"
                         "anyone? #acme https://acme.example/status/long")
    assert m["language"] == "de"
    assert m["engagement"] == {"likes": 5, "shares": 2, "replies": 1}
    assert datetime.fromisoformat(m["created_at"]) == datetime.fromisoformat(rich["created_at"])
    boosted = by_id[original["id"]]  # a reblog is published as the original post
    assert boosted["author"] == {"handle": "carol@x.example", "name": None, "followers": 0,
                                 "verified": False}
    assert boosted["text"] == "the original post #acme"
    streams = {(r.path, r.query.get("tag")) for r in fake.stream_requests()}
    assert streams == {("/api/v1/streaming/hashtag", "Acme"), ("/api/v1/streaming/public", None)}
    assert all(r.token == TOKEN for r in fake.requests)
    assert await dead_letters(broker.bootstrap) == []


async def test_dropped_stream_mid_event_reconnects_and_fills_the_gap(
        broker: EmbeddedBroker, tmp_path: Path) -> None:
    async with FakeMastodon(token=TOKEN, heartbeat_s=0.2) as fake:
        live = _Live(_settings(fake), broker, tmp_path)
        await fake.wait_streams(1)
        await live.wait(lambda c: c.health.state == "ok")
        first = fake.post("first", tags=["acme"])
        await live.wait(lambda c: c.health.events >= 1)
        cut = fake.status("cut in half by a dropped connection", tags=["acme"])
        dropped_at = time.time()
        fake.drop_streams_mid_event(cut)
        await live.wait(lambda c: c.health.events >= 2)
        await fake.wait_streams(1)
        third = fake.post("third, on the new stream", tags=["acme"])
        ctx = await live.wait(lambda c: c.health.events >= 3 and c.health.state == "ok")
        errors = ctx.health.errors
        await live.finish()

    assert errors >= 1
    assert len(fake.stream_requests()) >= 2
    after = [r for r in fake.timeline_requests() if r.at >= dropped_at]
    assert after and after[0].query.get("min_id") == first["id"]  # the catch-up from the cursor
    assert _ids(await raw_mentions(broker.bootstrap)) == Counter(
        [first["id"], cut["id"], third["id"]])
    assert await dead_letters(broker.bootstrap) == []  # the half event was not emitted


async def test_polling_pages_forward_with_min_id_and_link_headers(
        broker: EmbeddedBroker, tmp_path: Path) -> None:
    async with FakeMastodon(token=TOKEN) as fake:
        start = fake.post("already there", tags=["acme"])
        live = _Live(_settings(fake, mode="poll", page_limit=2), broker, tmp_path)
        await live.wait(lambda c: c.health.events >= 1)
        posts = [fake.post(f"news {i}", tags=["acme"]) for i in range(3)]
        broken = fake.add_raw({"content": "<p>no id #acme</p>",
                               "created_at": "2024-05-01T10:00:00.000Z"}, tags=["acme"])
        posts += [fake.post(f"news {i}", tags=["acme"]) for i in range(3, 5)]
        ctx = await live.wait(lambda c: c.health.events >= 6 and c.health.dead_letters >= 1)
        assert ctx.cursor == {"tag:acme": posts[-1]["id"]}
        await live.finish()

    requests = fake.timeline_requests()
    assert requests[0].query == {"limit": "2"}  # first look: the newest page
    assert all(r.path == "/api/v1/timelines/tag/Acme" and "since_id" not in r.query
               for r in requests)
    last_idle = max(i for i, r in enumerate(requests) if r.query.get("min_id") == start["id"])
    chain = [r.query.get("min_id") for r in requests[last_idle:last_idle + 4]]
    # Pages of two, each asked for with the min_id of the server's rel="prev" link; the third
    # starts after the id-less status, which only the link knows about.
    assert chain == [start["id"], posts[1]["id"], str(broken), posts[4]["id"]]
    assert not fake.stream_requests()
    assert _ids(await raw_mentions(broker.bootstrap)) == Counter(
        [start["id"]] + [p["id"] for p in posts])
    dlq = await dead_letters(broker.bootstrap)
    assert len(dlq) == 1 and "no id" in dlq[0]["reason"]


@pytest.mark.parametrize("header", ["x-ratelimit-reset", "retry-after"])
async def test_rate_limit_waits_as_long_as_the_server_says(broker: EmbeddedBroker,
                                                           tmp_path: Path, header: str) -> None:
    async with FakeMastodon(token=TOKEN) as fake:
        status = fake.post("rate limited at first", tags=["acme"])
        if header == "retry-after":
            fake.fail_next(429, retry_after=1)
        else:  # what Mastodon sends: X-RateLimit-Remaining: 0 and an ISO reset time
            fake.fail_next(429, reset_in_s=1.0)
        live = _Live(_settings(fake, mode="poll"), broker, tmp_path)
        ctx = await live.wait(lambda c: c.health.events >= 1)
        errors = ctx.health.errors
        await live.finish()

    first, retry = fake.timeline_requests()[:2]
    assert (first.status, retry.status) == (429, 200)
    assert retry.at - first.at >= 1.0
    assert errors >= 1
    assert _ids(await raw_mentions(broker.bootstrap)) == Counter([status["id"]])


@pytest.mark.parametrize("mode", ["poll", "stream"])
async def test_server_errors_are_retried_and_health_recovers(
        broker: EmbeddedBroker, tmp_path: Path, mode: str,
        caplog: pytest.LogCaptureFixture) -> None:
    async with FakeMastodon(token=TOKEN, heartbeat_s=0.2) as fake:
        before = fake.post("before the outage", tags=["acme"])
        fake.fail_next(503, on="rest" if mode == "poll" else "stream", times=2)
        live = _Live(_settings(fake, mode=mode), broker, tmp_path)
        expected = [before["id"]]
        if mode == "stream":
            await fake.wait_streams(1)
            await live.wait(lambda c: c.health.events >= 1)
            expected.append(fake.post("on the stream", tags=["acme"])["id"])
        ctx = await live.wait(lambda c: c.health.events >= len(expected)
                              and c.health.state == "ok")
        errors, failures = ctx.health.errors, ctx.health.consecutive_failures
        await live.finish()

    refused = [r for r in fake.requests if r.status == 503]
    assert len(refused) == 2
    assert errors >= 2 and failures == 0
    saved = (tmp_path / "connectors" / "masto.json").read_text()
    assert "503" in saved and TOKEN not in saved and TOKEN not in caplog.text
    assert _ids(await raw_mentions(broker.bootstrap)) == Counter(expected)


async def test_malformed_statuses_go_to_the_dead_letter_topic(broker: EmbeddedBroker,
                                                              tmp_path: Path) -> None:
    async with FakeMastodon(token=TOKEN, heartbeat_s=0.2) as fake:
        live = _Live(_settings(fake), broker, tmp_path)
        await fake.wait_streams(1)
        await live.wait(lambda c: c.health.state == "ok")
        good = [fake.post("good one", tags=["acme"])]
        fake.push_raw(b"event: update\ndata: {not json at all\n\n")
        fake.push_raw(frame({"content": "<p>no id</p>", "created_at": "2024-05-01T10:00:00Z",
                             "account": {"acct": "eve"}}))
        bad_date = fake.status("bad date", tags=["acme"])
        bad_date["created_at"] = "yesterday"
        fake.push_raw(frame(bad_date))
        fake.push_raw(b"event: delete\ndata: 12345\n\n")  # not a status: ignored
        good.append(fake.post("good two", tags=["acme"]))
        await live.wait(lambda c: c.health.events >= 2 and c.health.dead_letters >= 3)
        good.append(fake.post("still running", tags=["acme"]))
        ctx = await live.wait(lambda c: c.health.events >= 3)
        assert ctx.health.state == "ok"
        await live.finish()

    assert _ids(await raw_mentions(broker.bootstrap)) == Counter(g["id"] for g in good)
    dlq = await dead_letters(broker.bootstrap)
    reasons = sorted(d["reason"] for d in dlq)
    assert len(reasons) == 3
    assert any("not JSON" in r for r in reasons)
    assert any("no id" in r for r in reasons)
    assert any(bad_date["id"] in r and "created_at" in r for r in reasons)
    assert any("{not json at all" in d["payload"] for d in dlq)


async def test_restart_resumes_from_the_cursor_without_gap_or_duplicate(
        broker: EmbeddedBroker, tmp_path: Path) -> None:
    # Pages of two, one page per catch-up round: the backlog after the restart takes several
    # rounds, and a status streamed meanwhile must not move the cursor past the backlog.
    settings: dict[str, Any] = {"page_limit": 2, "max_pages": 1}
    async with FakeMastodon(token=TOKEN, heartbeat_s=0.2) as fake:
        posted = [fake.post("one", tags=["acme"]), fake.post("two", tags=["acme"])]
        live = _Live(_settings(fake, **settings), broker, tmp_path)
        await live.wait(lambda c: c.health.events >= 2)
        await fake.wait_streams(1)
        posted.append(fake.post("three, streamed", tags=["acme"]))
        await live.wait(lambda c: c.health.events >= 3)
        first = await live.finish()
        assert first.cursor == {"tag:acme": posted[2]["id"]}

        restarted_at = time.time()
        posted += [fake.post(f"{n}, while down", tags=["acme"])
                   for n in ("four", "five", "six", "seven", "eight")]
        fake.pause_rest()
        live = _Live(_settings(fake, **settings), broker, tmp_path)
        await fake.wait_streams(1)
        posted.append(fake.post("nine, streamed during the catch-up", tags=["acme"]))
        fake.resume_rest()
        ctx = await live.wait(lambda c: c.health.events >= 9 and not c.health.consecutive_failures
                              and c.cursor == {"tag:acme": posted[-1]["id"]})
        assert ctx.health.duplicates >= 1  # "nine" came by the stream and by the catch-up
        posted.append(fake.post("ten, streamed", tags=["acme"]))
        await live.wait(lambda c: c.health.events >= 10)
        await live.finish()

    assert _ids(await raw_mentions(broker.bootstrap)) == Counter(p["id"] for p in posted)
    second = [r for r in fake.requests if r.at >= restarted_at]
    resumed = [r.query.get("min_id") for r in second if not r.is_stream]
    assert resumed[:4] == [posted[2]["id"], posted[4]["id"], posted[6]["id"], posted[8]["id"]]
    # The stream was open before the catch-up asked, so nothing could slip between them.
    assert second[0].is_stream


@pytest.mark.parametrize(("refusal", "stream_attempts"), [(503, 2), (401, 1)])
async def test_refused_streams_fall_back_to_polling(broker: EmbeddedBroker, tmp_path: Path,
                                                    refusal: int, stream_attempts: int) -> None:
    async with FakeMastodon(token=TOKEN) as fake:
        fake.stream_status = refusal
        posted = [fake.post("before", tags=["acme"])]
        settings = _settings(fake, stream_failures_before_poll=2, stream_retry_s=60.0)
        live = _Live(settings, broker, tmp_path)
        await live.wait(lambda c: c.health.events >= 1)
        posted.append(fake.post("while polling", tags=["acme"]))
        await live.wait(lambda c: c.health.events >= 2 and c.health.state == "ok")
        await live.finish()

    assert len(fake.stream_requests()) == stream_attempts
    assert any(r.query.get("min_id") == posted[0]["id"] for r in fake.timeline_requests())
    assert _ids(await raw_mentions(broker.bootstrap)) == Counter(p["id"] for p in posted)


async def test_keywords_default_to_the_watch_terms_and_page_with_min_id(
        broker: EmbeddedBroker, tmp_path: Path) -> None:
    async with FakeMastodon(token=TOKEN) as fake:
        posted = [fake.post("Acme outage again"), fake.post("unrelated")]
        settings = _settings(fake, mode="poll", hashtags=[], search=True, languages=["en"])
        live = _Live(settings, broker, tmp_path, terms=["acme"])
        await live.wait(lambda c: c.health.events >= 1)
        french = fake.post("acme ne répond pas", language="fr")  # filtered out by language
        later = fake.post("acme support is not answering")
        ctx = await live.wait(lambda c: c.health.events >= 2)
        assert ctx.cursor == {"search:acme": later["id"]}
        assert ctx.health.dead_letters == 0 and french["id"] < later["id"]
        await live.finish()

    searches = fake.timeline_requests("/api/v2/search")
    assert searches and all(r.query.get("q") == "acme" and r.query.get("type") == "statuses"
                            for r in searches)
    assert "min_id" not in searches[0].query
    assert any(r.query.get("min_id") == posted[0]["id"] for r in searches[1:])
    assert _ids(await raw_mentions(broker.bootstrap)) == Counter([posted[0]["id"], later["id"]])
