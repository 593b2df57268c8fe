"""The Hacker News connector against a fake HN Search API and the real broker."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from streams.connectors.base import ConnectorContext
from streams.connectors.hackernews import HackerNewsConnector, HackerNewsSettings
from streams.runtime.broker import EmbeddedBroker
from tests.fakes.hackernews import FakeHackerNews
from tests.support.connectors import dead_letters, raw_mentions, run_until

pytestmark = pytest.mark.timeout(60)


def _settings(fake: FakeHackerNews, **extra: Any) -> HackerNewsSettings:
    values: dict[str, Any] = {"name": "hn", "api_url": fake.url, "queries": ["acme"],
                              "poll_interval_s": 0.2, "initial_backoff_s": 0.05,
                              "max_backoff_s": 0.5}
    values.update(extra)
    return HackerNewsSettings(**values)


def _now() -> int:
    return int(time.time())


async def test_stories_and_comments_are_mapped(broker: EmbeddedBroker,
                                               tmp_path: Path) -> None:
    t0 = _now()
    async with FakeHackerNews() as fake:
        story = fake.add_story(
            "Show HN: Acme widgets", author="alice", created_at_i=t0 - 120,
            url="https://acme.example/widgets", points=42, num_comments=7,
            story_text="<p>We shipped &amp; it <i>works</i></p><p>Try it</p>")
        comment = fake.add_comment(
            "I think <a href=\"https://acme.example\" rel=\"nofollow\">Acme</a> "
            "isn&#x27;t ready<p>Second para", story=story, author="bob", created_at_i=t0 - 60)
        fake.add_story("Globex quarterly results", created_at_i=t0 - 30)  # does not match
        connector = HackerNewsConnector(_settings(fake))
        ctx = await run_until(connector, bootstrap=broker.bootstrap, datadir=tmp_path,
                              until=lambda c: c.health.events >= 2 and len(fake.requests) >= 2)
        mentions = await raw_mentions(broker.bootstrap)

    assert ctx.health.dead_letters == 0
    got = {m["id"]: m for m in mentions}
    assert set(got) == {story["objectID"], comment["objectID"]}
    s = got[story["objectID"]]
    assert s["source"] == "hackernews"
    assert s["url"] == f"https://news.ycombinator.com/item?id={story['objectID']}"
    assert s["text"] == "Show HN: Acme widgets\nWe shipped & it works Try it"
    assert s["author"]["handle"] == "alice"
    assert s["engagement"] == {"likes": 42, "shares": 0, "replies": 7}
    assert datetime.fromisoformat(s["created_at"]) == datetime.fromtimestamp(t0 - 120, UTC)
    assert s["language"] is None
    c = got[comment["objectID"]]
    assert c["text"] == "I think Acme isn't ready Second para"
    assert c["author"]["handle"] == "bob"
    assert c["engagement"] == {"likes": 0, "shares": 0, "replies": 0}

    first = fake.requests[0].params
    assert first["query"] == "acme"
    assert first["tags"] == "(story,comment)"
    assert first["hitsPerPage"] == "100" and first["page"] == "0"
    since = int(first["numericFilters"].removeprefix("created_at_i>="))
    assert t0 - 3700 <= since <= t0 - 3500  # start_lookback_s=3600 on a first run


async def test_watch_terms_are_searched_when_no_queries(broker: EmbeddedBroker,
                                                        tmp_path: Path) -> None:
    async with FakeHackerNews() as fake:
        a = fake.add_story("Acme outage", created_at_i=_now() - 50)
        g = fake.add_story("Globex hires", created_at_i=_now() - 40)
        fake.add_story("Unrelated", created_at_i=_now() - 30)
        connector = HackerNewsConnector(_settings(fake, queries=[]))
        await run_until(connector, bootstrap=broker.bootstrap, datadir=tmp_path,
                        terms=["acme", "globex"], until=lambda c: c.health.events >= 2)
        mentions = await raw_mentions(broker.bootstrap)

    assert {m["id"] for m in mentions} == {a["objectID"], g["objectID"]}
    assert {r.params["query"] for r in fake.requests} == {"acme", "globex"}


async def test_pages_through_all_results(broker: EmbeddedBroker, tmp_path: Path) -> None:
    t0 = _now()
    async with FakeHackerNews() as fake:
        for n in range(250):
            fake.add_story(f"Acme item {n}", created_at_i=t0 - 1000 + n)
        connector = HackerNewsConnector(_settings(fake, hits_per_page=100))
        ctx = await run_until(connector, bootstrap=broker.bootstrap, datadir=tmp_path,
                              until=lambda c: c.health.events >= 250)
        mentions = await raw_mentions(broker.bootstrap)

    assert [r.params["page"] for r in fake.requests[:3]] == ["0", "1", "2"]
    assert len(mentions) == 250 and len({m["id"] for m in mentions}) == 250
    assert ctx.health.duplicates == 0


async def test_pagination_cap_narrows_the_window(broker: EmbeddedBroker,
                                                 tmp_path: Path) -> None:
    t0 = _now()
    async with FakeHackerNews(pagination_limit=100) as fake:  # Algolia's cap, made small
        for n in range(250):
            fake.add_story(f"Acme item {n}", created_at_i=t0 - 1000 + n)
        connector = HackerNewsConnector(_settings(fake, hits_per_page=50))
        await run_until(connector, bootstrap=broker.bootstrap, datadir=tmp_path,
                        until=lambda c: c.health.events >= 250)
        mentions = await raw_mentions(broker.bootstrap)

    assert len(mentions) == 250 and len({m["id"] for m in mentions}) == 250
    assert any("created_at_i<=" in r.params["numericFilters"] for r in fake.requests)


async def test_cursor_advances_and_boundary_second_has_no_gap(broker: EmbeddedBroker,
                                                              tmp_path: Path) -> None:
    t0 = _now()
    async with FakeHackerNews() as fake:
        fake.add_story("Acme one", created_at_i=t0 - 10)
        fake.add_story("Acme two", created_at_i=t0 - 5)
        added: list[bool] = []

        def until(c: ConnectorContext) -> bool:
            if not added and c.health.events >= 2:
                # Indexed late, in the same second as the newest seen: must not be lost.
                fake.add_story("Acme late", created_at_i=t0 - 5)
                fake.add_story("Acme three", created_at_i=t0 - 1)
                added.append(True)
            return c.health.events >= 4

        ctx = await run_until(connector := HackerNewsConnector(_settings(fake)),
                              bootstrap=broker.bootstrap, datadir=tmp_path, until=until)
        assert connector.source == "hackernews"
        mentions = await raw_mentions(broker.bootstrap)

    filters = [r.params["numericFilters"] for r in fake.requests]
    assert f"created_at_i>={t0 - 5}" in filters[1:]
    assert sorted(m["text"] for m in mentions) == ["Acme late", "Acme one", "Acme three",
                                                   "Acme two"]
    assert ctx.health.duplicates == 0  # the boundary ids in the cursor skipped "Acme two"


async def test_429_retry_after_is_honoured(broker: EmbeddedBroker, tmp_path: Path) -> None:
    async with FakeHackerNews() as fake:
        fake.add_story("Acme", created_at_i=_now() - 5)
        fake.fail_next(429, retry_after=1)
        connector = HackerNewsConnector(_settings(fake))
        ctx = await run_until(connector, bootstrap=broker.bootstrap, datadir=tmp_path,
                              until=lambda c: c.health.events >= 1)

    first, second = fake.requests[0], fake.requests[1]
    assert first.status == 429 and second.status == 200
    assert second.at - first.at >= 1.0
    assert second.params == first.params  # the same request, retried
    assert ctx.health.errors == 1


async def test_5xx_is_retried_and_health_recovers(broker: EmbeddedBroker,
                                                  tmp_path: Path) -> None:
    async with FakeHackerNews() as fake:
        fake.add_story("Acme", created_at_i=_now() - 5)
        fake.fail_next(500, times=2)
        fake.fail_next(503)
        connector = HackerNewsConnector(_settings(fake))
        ctx = await run_until(connector, bootstrap=broker.bootstrap, datadir=tmp_path,
                              until=lambda c: c.health.events >= 1 and c.health.state == "ok")
        mentions = await raw_mentions(broker.bootstrap)

    assert [r.status for r in fake.requests[:4]] == [500, 500, 503, 200]
    assert ctx.health.errors == 3 and ctx.health.consecutive_failures == 0
    assert "HTTP 503" in (ctx.health.last_error or "")
    assert len(mentions) == 1


async def test_hit_without_object_id_goes_to_dead_letters(broker: EmbeddedBroker,
                                                          tmp_path: Path) -> None:
    t0 = _now()
    async with FakeHackerNews() as fake:
        good = [fake.add_story("Acme one", created_at_i=t0 - 30),
                fake.add_story("Acme two", created_at_i=t0 - 20)]
        # The newest hit is the bad one, so every later poll fetches it again.
        fake.add_raw({"_tags": ["story"], "author": "x", "title": "Acme bad",
                      "created_at_i": t0 - 10, "points": 1})
        added: list[bool] = []

        def until(c: ConnectorContext) -> bool:
            if not added and c.health.events >= 2 and c.health.dead_letters >= 1:
                good.append(fake.add_story("Acme three", created_at_i=t0 - 10))
                added.append(True)
            return c.health.events >= 3 and len(fake.requests) >= 5

        ctx = await run_until(HackerNewsConnector(_settings(fake)),
                              bootstrap=broker.bootstrap, datadir=tmp_path, until=until)
        mentions = await raw_mentions(broker.bootstrap)
        dead = await dead_letters(broker.bootstrap)

    assert {m["id"] for m in mentions} == {h["objectID"] for h in good}
    assert len(dead) == 1, [d["reason"] for d in dead]  # refused once, not on every poll
    assert "has no objectID" in dead[0]["reason"]
    assert "Acme bad" in dead[0]["payload"]
    assert ctx.health.dead_letters == 1


async def test_restart_resumes_without_duplicates_or_gaps(broker: EmbeddedBroker,
                                                          tmp_path: Path) -> None:
    t0 = _now()
    async with FakeHackerNews() as fake:
        for n in range(3):
            fake.add_story(f"Acme {n}", created_at_i=t0 - 100 + n)
        settings = _settings(fake)
        await run_until(HackerNewsConnector(settings), bootstrap=broker.bootstrap,
                        datadir=tmp_path, until=lambda c: c.health.events >= 3)
        first_run = len(fake.requests)
        for n in range(3, 5):
            fake.add_story(f"Acme {n}", created_at_i=t0 - 100 + n)
        ctx = await run_until(HackerNewsConnector(settings), bootstrap=broker.bootstrap,
                              datadir=tmp_path, until=lambda c: c.health.events >= 5)
        mentions = await raw_mentions(broker.bootstrap)

    resumed = fake.requests[first_run].params
    assert resumed["numericFilters"] == f"created_at_i>={t0 - 98}"  # the stored cursor
    texts = [m["text"] for m in mentions]
    assert sorted(texts) == [f"Acme {n}" for n in range(5)]
    assert len(set(texts)) == len(texts)
    assert ctx.health.duplicates == 0
