"""The RSS/Atom connector against a fake feed server and the real broker."""

from __future__ import annotations

from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from streams.connectors.base import ConnectorContext, read_health
from streams.connectors.rss import RssConnector, RssFeed, RssSettings
from streams.runtime.broker import EmbeddedBroker
from tests.fakes.rss import FakeFeeds, FeedItem
from tests.support.connectors import dead_letters, raw_mentions, run_until

pytestmark = pytest.mark.timeout(60)


def _settings(*feeds: RssFeed, **extra: Any) -> RssSettings:
    return RssSettings(name="news", feeds=list(feeds), initial_backoff_s=0.05,
                       max_backoff_s=0.5, **extra)


def _feed(url: str, interval_s: float = 0.2) -> RssFeed:
    return RssFeed(url=url, interval_s=interval_s)


def _item(n: int, **kw: Any) -> FeedItem:
    defaults: dict[str, Any] = {
        "id": f"post-{n}", "title": f"Acme post {n}",
        "link": f"https://blog.example.org/posts/{n}",
        "summary": f"<p>Body of post {n}</p>",
        "published": datetime(2024, 5, 1, 10, n, tzinfo=UTC),
    }
    defaults.update(kw)
    return FeedItem(**defaults)


def _by_url(mentions: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {m["url"]: m for m in mentions}


async def test_rss2_atom_and_google_alerts_are_mapped(broker: EmbeddedBroker,
                                                      tmp_path: Path) -> None:
    async with FakeFeeds() as fake:
        rss = fake.add_feed("/blog.xml", format="rss", title="Acme blog", language="en-US",
                            items=[
            _item(1, title="Acme launches rockets", author="Jane Doe",
                  summary="<p>Big <a href='https://x.example'>news</a> &amp; more</p>"
                          "<script>alert(1)</script>"),
            _item(2, summary=""),
        ])
        atom = fake.add_feed("/atom.xml", format="atom", title="Noticias", language="es",
                             items=[
            _item(3, id="urn:uuid:3", title="Acme &amp; <i>Globex</i> se fusionan",
                  link="https://noticias.example.es/acme", author="Ana",
                  summary="<div>Texto de la <b>noticia</b></div>"),
        ])
        google = fake.add_feed("/alerts.xml", format="google", title="Google Alert - acme",
                               items=[
            _item(4, title="<b>Acme</b> recalls widgets - Example News",
                  link="https://news.example.com/story?id=1&ref=rss",
                  summary="The <b>Acme</b> recall affects&nbsp;...",
                  published=datetime(2024, 5, 2, 8, 30, tzinfo=UTC)),
        ])
        connector = RssConnector(_settings(_feed(rss), _feed(atom), _feed(google)))
        ctx = await run_until(connector, bootstrap=broker.bootstrap, datadir=tmp_path,
                              until=lambda c: c.health.events >= 4)
        mentions = await raw_mentions(broker.bootstrap)

    assert ctx.health.dead_letters == 0
    assert len(mentions) == 4
    got = _by_url(mentions)
    m1 = got["https://blog.example.org/posts/1"]
    assert m1["source"] == "rss"
    assert m1["text"] == "Acme launches rockets\nBig news & more"
    assert m1["author"]["handle"] == "Jane Doe"
    assert m1["author"]["name"] == "Jane Doe"
    assert m1["language"] == "en"
    assert datetime.fromisoformat(m1["created_at"]) == datetime(2024, 5, 1, 10, 1, tzinfo=UTC)
    assert len(m1["id"]) <= 512 and m1["id"].startswith("127.0.0.1:")

    m2 = got["https://blog.example.org/posts/2"]
    assert m2["text"] == "Acme post 2"  # no summary: the title alone
    assert m2["author"]["handle"] == "blog.example.org"  # no author: the site's domain

    m3 = got["https://noticias.example.es/acme"]
    assert m3["text"] == "Acme & Globex se fusionan\nTexto de la noticia"
    assert m3["author"]["handle"] == "Ana"
    assert m3["language"] == "es"

    # Google Alerts: the google.com/url redirect is unwrapped, <b> highlighting stripped.
    m4 = got["https://news.example.com/story?id=1&ref=rss"]
    assert m4["text"] == "Acme recalls widgets - Example News\nThe Acme recall affects ..."
    assert m4["author"]["handle"] == "news.example.com"
    assert m4["language"] is None
    assert datetime.fromisoformat(m4["created_at"]) == datetime(2024, 5, 2, 8, 30, tzinfo=UTC)

    assert len({m["id"] for m in mentions}) == 4
    assert all(r.user_agent and r.user_agent.startswith("escucha-rss/") for r in fake.requests)


async def test_conditional_get_sends_validators_and_304_emits_nothing(
        broker: EmbeddedBroker, tmp_path: Path) -> None:
    async with FakeFeeds() as fake:
        url = fake.add_feed("/feed.xml", items=[_item(1), _item(2)])
        connector = RssConnector(_settings(_feed(url, 0.2)))
        ctx = await run_until(connector, bootstrap=broker.bootstrap, datadir=tmp_path,
                              until=lambda c: len(fake.requests) >= 3)
        mentions = await raw_mentions(broker.bootstrap)

    first, second = fake.requests[0], fake.requests[1]
    assert first.status == 200 and first.if_none_match is None
    assert first.if_modified_since is None
    assert second.if_none_match == first.etag
    assert second.if_modified_since is not None
    assert second.status == 304
    assert all(r.status == 304 for r in fake.requests[1:])
    assert ctx.health.events == 2 and len(mentions) == 2
    assert ctx.health.duplicates == 0


async def test_relisted_items_are_not_emitted_again(broker: EmbeddedBroker,
                                                    tmp_path: Path) -> None:
    async with FakeFeeds() as fake:
        fake.ignore_conditional = True  # a server that always answers 200 with the full feed
        url = fake.add_feed("/feed.xml", items=[_item(1), _item(2)])
        connector = RssConnector(_settings(_feed(url, 0.1)))
        ctx = await run_until(connector, bootstrap=broker.bootstrap, datadir=tmp_path,
                              until=lambda c: len(fake.requests) >= 4)
        fake.add_items("/feed.xml", _item(3))
        ctx = await run_until(connector, bootstrap=broker.bootstrap, datadir=tmp_path,
                              until=lambda c: c.health.events >= 3)
        mentions = await raw_mentions(broker.bootstrap)

    assert all(r.status == 200 for r in fake.requests)
    # The per-feed seen ids filtered the re-listed entries before they reached ctx.emit.
    assert ctx.health.duplicates == 0
    assert sorted(m["url"] for m in mentions) == [
        f"https://blog.example.org/posts/{n}" for n in (1, 2, 3)]


async def test_each_feed_is_polled_on_its_own_interval(broker: EmbeddedBroker,
                                                       tmp_path: Path) -> None:
    async with FakeFeeds() as fake:
        fast = fake.add_feed("/fast.xml", items=[_item(1)])
        slow = fake.add_feed("/slow.xml", items=[_item(2)])
        connector = RssConnector(_settings(_feed(fast, 0.15), _feed(slow, 1.0)))
        await run_until(connector, bootstrap=broker.bootstrap, datadir=tmp_path,
                        until=lambda c: len(fake.requests_for("/slow.xml")) >= 3)

    fast_calls = fake.requests_for("/fast.xml")
    slow_calls = fake.requests_for("/slow.xml")
    gaps = [b.at - a.at for a, b in pairwise(slow_calls)]
    assert all(g >= 0.95 for g in gaps), gaps
    # ~2 s elapsed: the fast feed was polled many times meanwhile (~13 at 0.15 s).
    assert len(fast_calls) >= 3 * len(slow_calls), (len(fast_calls), len(slow_calls))


async def test_429_retry_after_is_honoured_for_that_feed_only(broker: EmbeddedBroker,
                                                              tmp_path: Path) -> None:
    async with FakeFeeds() as fake:
        limited = fake.add_feed("/limited.xml", items=[_item(1)])
        other = fake.add_feed("/other.xml", items=[_item(2)])
        fake.fail_next("/limited.xml", 429, retry_after=1)
        connector = RssConnector(_settings(_feed(limited, 0.2), _feed(other, 0.1)))
        ctx = await run_until(connector, bootstrap=broker.bootstrap, datadir=tmp_path,
                              until=lambda c: c.health.events >= 2)
        mentions = await raw_mentions(broker.bootstrap)

    calls = fake.requests_for("/limited.xml")
    assert calls[0].status == 429 and calls[1].status == 200
    assert calls[1].at - calls[0].at >= 1.0
    # The other feed kept its own schedule while the limited one waited.
    during = [r for r in fake.requests_for("/other.xml") if calls[0].at < r.at < calls[1].at]
    assert len(during) >= 3
    assert ctx.health.errors == 1
    assert len(mentions) == 2


async def test_5xx_is_retried_and_health_recovers(broker: EmbeddedBroker,
                                                  tmp_path: Path) -> None:
    async with FakeFeeds() as fake:
        url = fake.add_feed("/feed.xml", items=[_item(1), _item(2)])
        fake.fail_next("/feed.xml", 500, times=2)
        fake.fail_next("/feed.xml", 503, retry_after=1)
        connector = RssConnector(_settings(_feed(url, 0.2)))
        # Recovered: healthy again, not just delivered.
        ctx = await run_until(connector, bootstrap=broker.bootstrap, datadir=tmp_path,
                              until=lambda c: c.health.events >= 2
                              and c.health.state == "ok")
        mentions = await raw_mentions(broker.bootstrap)

    statuses = [r.status for r in fake.requests]
    assert statuses[:4] == [500, 500, 503, 200]
    assert fake.requests[3].at - fake.requests[2].at >= 1.0  # 503's Retry-After
    assert ctx.health.errors == 3
    assert ctx.health.consecutive_failures == 0
    assert "HTTP 503" in (ctx.health.last_error or "")
    assert len(mentions) == 2
    health = read_health(tmp_path, "news")
    assert health is not None and health.errors == 3


async def test_malformed_feed_and_entry_go_to_dead_letters(broker: EmbeddedBroker,
                                                           tmp_path: Path) -> None:
    async with FakeFeeds() as fake:
        broken = fake.set_raw("/broken.xml", b"<html><body><h1>Site moved</h1></body></html>")
        good = fake.add_feed("/feed.xml", format="atom", items=[
            _item(1), _item(2, link=None, title="No link here"), _item(3)])
        connector = RssConnector(_settings(_feed(broken, 5.0), _feed(good, 0.2)))
        added: list[bool] = []

        def until(c: ConnectorContext) -> bool:
            # Still running after the bad input: a new entry on the good feed arrives, and
            # the bad entry is not dead-lettered again on the following polls.
            if not added and c.health.events >= 2 and c.health.dead_letters >= 2:
                fake.add_items("/feed.xml", _item(4))
                added.append(True)
            return c.health.events >= 3

        ctx = await run_until(connector, bootstrap=broker.bootstrap, datadir=tmp_path,
                              until=until)
        mentions = await raw_mentions(broker.bootstrap)
        dead = await dead_letters(broker.bootstrap)

    assert sorted(m["url"] for m in mentions) == [
        f"https://blog.example.org/posts/{n}" for n in (1, 3, 4)]
    reasons = sorted(d["reason"] for d in dead)
    assert len(dead) == 2, reasons
    assert any("broken.xml is not RSS or Atom XML" in r for r in reasons)
    assert any("has no link" in r and "post-2" in r for r in reasons)
    not_a_feed = next(d for d in dead if "not RSS" in d["reason"])
    assert "Site moved" in not_a_feed["payload"]
    assert ctx.health.dead_letters == 2


async def test_restart_resumes_without_duplicates_or_gaps(broker: EmbeddedBroker,
                                                          tmp_path: Path) -> None:
    async with FakeFeeds() as fake:
        url = fake.add_feed("/feed.xml", items=[_item(1), _item(2)])
        settings = _settings(_feed(url, 0.2))
        await run_until(RssConnector(settings), bootstrap=broker.bootstrap, datadir=tmp_path,
                        until=lambda c: c.health.events >= 2)
        first_run = list(fake.requests)
        fake.add_items("/feed.xml", _item(3), _item(4))
        ctx = await run_until(RssConnector(settings), bootstrap=broker.bootstrap,
                              datadir=tmp_path, until=lambda c: c.health.events >= 4)
        mentions = await raw_mentions(broker.bootstrap)

    resumed = fake.requests[len(first_run)]
    last_ok = [r for r in first_run if r.status == 200][-1]
    assert resumed.if_none_match == last_ok.etag  # the stored cursor went out
    assert resumed.if_modified_since is not None
    assert resumed.status == 200
    urls = [m["url"] for m in mentions]
    assert sorted(urls) == [f"https://blog.example.org/posts/{n}" for n in (1, 2, 3, 4)]
    assert len(set(urls)) == len(urls)
    assert ctx.health.duplicates == 0  # old entries skipped by the cursor, not by luck


async def test_max_items_per_poll_spreads_a_burst_without_loss(broker: EmbeddedBroker,
                                                               tmp_path: Path) -> None:
    async with FakeFeeds() as fake:
        url = fake.add_feed("/feed.xml", items=[_item(n) for n in range(1, 6)])
        connector = RssConnector(_settings(_feed(url, 0.1), max_items_per_poll=2))
        ctx = await run_until(connector, bootstrap=broker.bootstrap, datadir=tmp_path,
                              until=lambda c: c.health.events >= 5)
        mentions = await raw_mentions(broker.bootstrap)

    ok = [r for r in fake.requests if r.status == 200]
    assert len(ok) >= 3
    # A capped poll stores no validators, so the next one fetches the whole feed again.
    assert ok[1].if_none_match is None
    assert sorted(m["url"] for m in mentions) == [
        f"https://blog.example.org/posts/{n}" for n in range(1, 6)]
    assert ctx.health.duplicates == 0
