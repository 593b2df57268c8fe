"""The X connector against a fake X API v2 (stream, rules, recent search) and the real broker."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest_asyncio

from streams.connectors.base import ConnectorContext, read_health
from streams.connectors.x import XConnector, XSettings
from streams.runtime.broker import EmbeddedBroker
from tests.fakes.x import FakeX
from tests.support.connectors import dead_letters, raw_mentions, run_until

RULES = {"brand": "acme -is:retweet"}


@pytest_asyncio.fixture
async def fake() -> AsyncIterator[FakeX]:
    async with FakeX(keepalive_s=0.1) as server:
        yield server


def settings(fake: FakeX, **overrides: Any) -> XSettings:
    # X's schedule shrunk ~25x so that every test stays within a few seconds.
    values: dict[str, Any] = dict(
        name="x-test", bearer_token=fake.token, api_url=fake.url, initial_backoff_s=0.01,
        max_backoff_s=0.02, stall_timeout_s=3.0, network_backoff_step_s=0.05,
        network_backoff_max_s=0.5, http_backoff_base_s=0.2, http_backoff_max_s=2.0,
        rate_limit_backoff_base_s=0.1, rate_limit_backoff_max_s=2.0, request_timeout_s=5.0)
    return XSettings(**(values | overrides))


async def after(cond: Callable[[], bool], action: Callable[[], object],
                within: float = 15.0) -> None:
    """Run ``action`` once ``cond`` holds (a script running beside the connector)."""
    deadline = time.monotonic() + within
    while not cond():
        if time.monotonic() > deadline:
            raise TimeoutError("script condition never held")
        await asyncio.sleep(0.02)
    action()


def script(*steps: tuple[Callable[[], bool], Callable[[], object]]) -> asyncio.Task[None]:
    async def run() -> None:
        for cond, action in steps:
            await after(cond, action)
    return asyncio.create_task(run())


def events(n: int) -> Callable[[ConnectorContext], bool]:
    """``n`` mentions published and the connector healthy (the runner marks it "stopped"
    once run_until returns, so the state is checked here)."""
    return lambda ctx: ctx.health.events >= n and ctx.health.state == "ok"


async def test_rules_sync_deletes_stale_adds_missing_keeps_equal(
        broker: EmbeddedBroker, fake: FakeX, tmp_path: Path) -> None:
    kept = fake.add_rule("acme -is:retweet", "brand")
    moved = fake.add_rule("acme ceo", "old-tag")  # same value, other tag: replaced
    stale = fake.add_rule("competitor", "rival")
    wanted = {"brand": "acme -is:retweet", "exec": '"jane doe"', "ceo": "acme ceo"}
    conn = XConnector(settings(fake), rules=wanted)
    await run_until(conn, bootstrap=broker.bootstrap, datadir=tmp_path,
                    until=lambda ctx: fake.connected >= 1)

    assert {(r["tag"], r["value"]) for r in fake.rules.values()} == set(
        (t, v) for t, v in wanted.items())
    assert kept in fake.rules  # the equal rule was left alone, not re-created
    posts = [r.body for r in fake.calls("/rules", "POST")]
    assert sorted(posts[0]["delete"]["ids"]) == sorted([moved, stale])
    assert sorted(posts[1]["add"], key=lambda a: a["tag"]) == [
        {"value": "acme ceo", "tag": "ceo"}, {"value": '"jane doe"', "tag": "exec"}]
    assert len(posts) == 2
    assert all(r.token == fake.token for r in fake.requests)


async def test_rule_from_terms_and_invalid_rule_reported_without_a_loop(
        broker: EmbeddedBroker, fake: FakeX, tmp_path: Path) -> None:
    # No rules anywhere: one rule from the watch terms, quoted and OR'ed.
    conn = XConnector(settings(fake, name="x-terms"))
    await run_until(conn, bootstrap=broker.bootstrap, datadir=tmp_path / "a",
                    terms=["Acme Corp", 'say "hi"'], until=lambda ctx: fake.connected >= 1)
    assert [(r["tag"], r["value"]) for r in fake.rules.values()] == [
        ("escucha-terms", '"Acme Corp" OR "say hi"')]

    # A rule X refuses: logged, in health, the others added, and never sent again.
    fake.rules.clear()
    bad = XConnector(settings(fake, name="x-bad"),
                     rules={"good": "acme", "bad": "(acme OR"})
    fake.requests.clear()
    script((lambda: fake.opened >= 2, lambda: fake.post("acme is great")))
    ctx = await run_until(bad, bootstrap=broker.bootstrap, datadir=tmp_path / "b",
                          until=events(1))
    await asyncio.sleep(0.5)  # room for a (wrong) retry loop to show itself
    adds = [r.body["add"] for r in fake.calls("/rules", "POST")]
    assert adds == [[{"value": "(acme OR", "tag": "bad"}, {"value": "acme", "tag": "good"}],
                    [{"value": "acme", "tag": "good"}]]
    assert [r["value"] for r in fake.rules.values()] == ["acme"]
    assert ctx.health.last_error is not None
    assert "(acme OR" in ctx.health.last_error and "Unbalanced" in ctx.health.last_error
    assert len(fake.stream_requests) == 1 and ctx.health.errors == 0
    health = read_health(tmp_path / "b", "x-bad")
    assert health is not None and "(acme OR" in (health.last_error or "")


async def test_stream_delivers_mapped_mentions_through_keepalives(
        broker: EmbeddedBroker, fake: FakeX, tmp_path: Path) -> None:
    conn = XConnector(settings(fake), rules=RULES)
    posts: list[dict[str, Any]] = []
    script(
        (lambda: fake.connected >= 1, lambda: posts.append(fake.post(
            "acme &amp; co &lt;3", username="bob", name="Bob B", followers=1234,
            verified=True, likes=5, retweets=2, quotes=1, replies=3))),
        (lambda: fake.keepalives_sent >= 3, lambda: posts.append(fake.post(
            "#acme", username="carol", lang="qht"))),
        (lambda: fake.keepalives_sent >= 6, lambda: fake.post("nothing about it")),
        (lambda: fake.keepalives_sent >= 7, lambda: posts.append(fake.post(
            "acme again", lang="und"))),
    )
    ctx = await run_until(conn, bootstrap=broker.bootstrap, datadir=tmp_path, until=events(3))

    got = {m["id"]: m for m in await raw_mentions(broker.bootstrap)}
    assert sorted(got) == sorted(p["id"] for p in posts)  # 4 partitions: no global order
    first = got[posts[0]["id"]]
    assert first["source"] == "x"
    assert first["url"] == f"https://x.com/bob/status/{posts[0]['id']}"
    assert first["author"] == {"handle": "bob", "name": "Bob B", "followers": 1234,
                               "verified": True}
    assert first["text"] == "acme & co <3"
    assert first["language"] == "en"
    assert first["created_at"].startswith(posts[0]["created_at"][:19])
    assert first["engagement"] == {"likes": 5, "shares": 3, "replies": 3}
    assert got[posts[1]["id"]]["language"] is None  # "qht": hashtags only
    assert got[posts[2]["id"]]["language"] is None  # "und"
    assert await dead_letters(broker.bootstrap, idle_s=0.5) == []
    stream = fake.stream_requests
    assert len(stream) == 1 and stream[0].token == fake.token
    assert set(stream[0].query["tweet.fields"].split(",")) >= {
        "created_at", "lang", "public_metrics", "author_id", "conversation_id"}
    assert stream[0].query["expansions"] == "author_id"
    assert set(stream[0].query["user.fields"].split(",")) == {
        "username", "name", "public_metrics", "verified"}
    assert ctx.cursor["last_id"] == posts[-1]["id"]
    assert ctx.health.errors == 0


async def test_stream_dropped_mid_line_reconnects_without_garbage(
        broker: EmbeddedBroker, fake: FakeX, tmp_path: Path) -> None:
    conn = XConnector(settings(fake), rules=RULES)
    first: list[dict[str, Any]] = []
    script(
        (lambda: fake.connected >= 1, lambda: first.append(fake.post("acme one"))),
        (lambda: len(first) == 1 and fake.keepalives_sent >= 2, fake.drop_next),
        (lambda: True, lambda: first.append(fake.post("acme two, cut in half"))),
        (lambda: fake.opened >= 2, lambda: first.append(fake.post("acme three"))),
    )
    ctx = await run_until(conn, bootstrap=broker.bootstrap, datadir=tmp_path, until=events(3))

    raw = await raw_mentions(broker.bootstrap)
    assert Counter(m["id"] for m in raw) == Counter(p["id"] for p in first)
    assert await dead_letters(broker.bootstrap, idle_s=0.5) == []
    assert len(fake.stream_requests) == 2
    # The half-sent post came back through recent search, from the last id the stream gave.
    assert fake.search_requests[0].query["since_id"] == first[0]["id"]
    assert ctx.health.errors == 1


async def test_stalled_stream_is_reconnected(
        broker: EmbeddedBroker, fake: FakeX, tmp_path: Path) -> None:
    fake.stall_next()
    conn = XConnector(settings(fake, stall_timeout_s=0.6), rules=RULES)
    posted: list[dict[str, Any]] = []
    script((lambda: len(fake.stream_requests) >= 1, lambda: posted.append(fake.post("acme"))),
           (lambda: fake.opened >= 2, lambda: posted.append(fake.post("acme live"))))
    ctx = await run_until(conn, bootstrap=broker.bootstrap, datadir=tmp_path, until=events(2))

    first, second = fake.stream_requests[:2]
    assert second.at - first.at >= 0.6
    assert ctx.health.errors == 1 and "stalled" in (ctx.health.last_error or "")
    # The post made during the stall was never streamed; backfill found it.
    raw = await raw_mentions(broker.bootstrap)
    assert sorted(m["id"] for m in raw) == sorted(p["id"] for p in posted)


async def test_429_waits_for_rate_limit_reset(
        broker: EmbeddedBroker, fake: FakeX, tmp_path: Path) -> None:
    fake.fail_next("stream", 429, reset_in=2)
    conn = XConnector(settings(fake), rules=RULES)
    script((lambda: fake.connected >= 1, lambda: fake.post("acme")))
    ctx = await run_until(conn, bootstrap=broker.bootstrap, datadir=tmp_path, until=events(1))

    refused, retried = fake.stream_requests[:2]
    assert refused.status == 429
    reset = float(refused.headers["x-rate-limit-reset"])
    assert retried.at >= reset
    assert ctx.health.errors == 1
    assert "429" in (ctx.health.last_error or "")


async def test_503_retried_with_exponential_backoff(
        broker: EmbeddedBroker, fake: FakeX, tmp_path: Path) -> None:
    fake.fail_next("stream", 503, times=2)
    conn = XConnector(settings(fake), rules=RULES)
    script((lambda: fake.connected >= 1, lambda: fake.post("acme")))
    ctx = await run_until(conn, bootstrap=broker.bootstrap, datadir=tmp_path, until=events(1))

    a, b, c = fake.stream_requests[:3]
    assert [a.status, b.status, c.status] == [503, 503, 200]
    assert b.at - a.at >= 0.2 and c.at - b.at >= 0.4  # 0.2 s doubling (X: 5 s doubling)
    assert ctx.health.errors == 2
    assert ctx.health.consecutive_failures == 0


async def test_malformed_lines_go_to_dead_letters_and_stream_continues(
        broker: EmbeddedBroker, fake: FakeX, tmp_path: Path) -> None:
    conn = XConnector(settings(fake), rules=RULES)
    good: list[dict[str, Any]] = []
    no_date = {"data": {"id": "1800000000000000001", "text": "acme", "author_id": "7"},
               "includes": {"users": [{"id": "7", "username": "dan", "name": "Dan"}]}}

    def garbage() -> None:
        fake.send_raw(b'{"data": {"id": "18000\r\n')
        fake.send_raw(json.dumps(no_date).encode() + b"\r\n")

    script((lambda: fake.connected >= 1, lambda: good.append(fake.post("acme before"))),
           (lambda: len(good) == 1, garbage),
           (lambda: True, lambda: good.append(fake.post("acme after"))))
    ctx = await run_until(conn, bootstrap=broker.bootstrap, datadir=tmp_path,
                          until=lambda c: c.health.events >= 2 and c.health.dead_letters >= 2)

    assert sorted(m["id"] for m in await raw_mentions(broker.bootstrap)) == sorted(
        p["id"] for p in good)
    dlq = await dead_letters(broker.bootstrap, idle_s=0.5)
    reasons = sorted(d["reason"] for d in dlq)
    assert len(dlq) == 2
    assert "not valid JSON" in reasons[0] or "not valid JSON" in reasons[1]
    assert any("created_at" in r for r in reasons)
    assert all(d["stage"] == "ingest" for d in dlq)
    assert len(fake.stream_requests) == 1  # no reconnect for bad content
    assert ctx.health.errors == 0 and ctx.health.dead_letters == 2


async def test_operational_disconnect_message_reconnects_without_dead_letter(
        broker: EmbeddedBroker, fake: FakeX, tmp_path: Path) -> None:
    conn = XConnector(settings(fake, backfill=False), rules=RULES)
    script((lambda: fake.connected >= 1, fake.disconnect),
           (lambda: fake.opened >= 2, lambda: fake.post("acme")))
    ctx = await run_until(conn, bootstrap=broker.bootstrap, datadir=tmp_path, until=events(1))

    assert len(fake.stream_requests) == 2
    assert "operational-disconnect" in (ctx.health.last_error or "")
    assert ctx.health.dead_letters == 0
    assert fake.search_requests == []  # backfill off


async def test_restart_backfills_through_recent_search_without_dup_or_gap(
        broker: EmbeddedBroker, fake: FakeX, tmp_path: Path) -> None:
    conn = XConnector(settings(fake, search_page_size=10), rules=RULES)
    before: list[dict[str, Any]] = []
    script((lambda: fake.connected >= 1,
            lambda: before.extend([fake.post("acme 1"), fake.post("acme 2")])))
    ctx = await run_until(conn, bootstrap=broker.bootstrap, datadir=tmp_path, until=events(2))
    assert ctx.cursor["last_id"] == before[-1]["id"]
    await asyncio.sleep(0.2)  # let the fake see the first stream go

    # While it is down: 23 matching posts and one that matches no rule.
    down = [fake.post(f"acme down {i}") for i in range(23)]
    fake.post("unrelated")
    live: list[dict[str, Any]] = []
    fake.requests.clear()
    conn2 = XConnector(settings(fake, search_page_size=10), rules=RULES)
    script((lambda: len(fake.search_requests) >= 3, lambda: live.append(fake.post("acme live"))))
    ctx = await run_until(conn2, bootstrap=broker.bootstrap, datadir=tmp_path,
                          until=events(2 + 23 + 1))

    raw = await raw_mentions(broker.bootstrap)
    ids = Counter(m["id"] for m in raw)
    assert ids == Counter(p["id"] for p in before + down + live)  # each exactly once
    searches = fake.search_requests
    assert [s.query.get("since_id") for s in searches] == [before[-1]["id"]] * 3
    assert "next_token" not in searches[0].query and "next_token" in searches[2].query
    assert searches[0].query["query"] == "(acme -is:retweet)"
    assert searches[0].query["max_results"] == "10"
    assert [r.method for r in fake.requests if r.path.endswith("/rules")] == ["GET"]
    assert ctx.cursor["last_id"] == live[0]["id"]
