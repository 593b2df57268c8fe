"""The Reddit connector against a fake Reddit OAuth API and the real embedded broker."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from streams.connectors.base import ConnectorContext
from streams.connectors.reddit import RedditConnector, RedditSettings
from streams.runtime.broker import EmbeddedBroker
from tests.fakes.reddit import FakeReddit, RedditRequest
from tests.support.connectors import dead_letters, raw_mentions, run_until

UA = "test:com.example.escucha:v1.0 (by /u/escucha_tests)"


@pytest_asyncio.fixture
async def fake() -> AsyncIterator[FakeReddit]:
    async with FakeReddit() as server:
        yield server


def settings(fake: FakeReddit, **overrides: Any) -> RedditSettings:
    values: dict[str, Any] = {
        "name": "reddit-test", "client_id": fake.client_id,
        "client_secret": fake.client_secret, "user_agent": UA, "subreddits": ["acme"],
        "include_comments": False, "poll_interval_s": 0.2, "overlap_s": 0.0,
        "api_url": fake.url, "auth_url": fake.url, "request_timeout_s": 5.0,
        "initial_backoff_s": 0.05, "max_backoff_s": 0.5,
    }
    values.update(overrides)
    return RedditSettings(**values)


async def run(connector: RedditConnector, broker: EmbeddedBroker, datadir: Path,
              until: Any, **kwargs: Any) -> ConnectorContext:
    return await run_until(connector, bootstrap=broker.bootstrap, datadir=datadir,
                           until=until, timeout=15.0, **kwargs)


def gets(fake: FakeReddit) -> list[RedditRequest]:
    return fake.listing_requests()


def tokens(fake: FakeReddit) -> list[RedditRequest]:
    return [r for r in fake.requests if r.path == "/api/v1/access_token"]


@pytest.mark.parametrize("grant", ["client_credentials", "password"])
async def test_posts_and_comments_arrive_mapped_with_app_token(
        broker: EmbeddedBroker, tmp_path: Path, grant: str) -> None:
    login: dict[str, Any] = {}
    if grant == "password":
        login = {"username": "escucha_bot", "password": "hunter2-pw"}
    async with FakeReddit(**login) as fake:
        post = fake.add_post("acme", "Acme & <Co> outage", "everything is down", author="alice",
                             score=42, num_comments=7)
        bare = fake.add_post("AcmeSupport", "just a title", author="carol", score=-3)
        comment = fake.add_comment(post, "same here & worse", author="bob", score=5)
        fake.add_post("unrelated", "not watched")
        connector = RedditConnector(settings(fake, subreddits=["acme", "r/AcmeSupport"],
                                             include_comments=True, **login))
        ctx = await run(connector, broker, tmp_path,
                        lambda c: c.health.events >= 3 and c.health.state == "ok")

    got = {m["id"]: m for m in await raw_mentions(broker.bootstrap, idle_s=1.0)}
    assert set(got) == {post["name"], bare["name"], comment["name"]}
    p = got[post["name"]]
    assert p["source"] == "reddit"
    assert p["text"] == "Acme & <Co> outage\n\neverything is down"  # raw_json=1: unescaped
    assert p["url"] == "https://www.reddit.com" + post["permalink"]
    assert p["author"]["handle"] == "u/alice" and p["author"]["followers"] == 0
    assert p["engagement"] == {"likes": 42, "shares": 0, "replies": 7}
    assert datetime.fromisoformat(p["created_at"]) == datetime.fromtimestamp(
        post["created_utc"], UTC)
    assert got[bare["name"]]["text"] == "just a title"
    assert got[bare["name"]]["engagement"]["likes"] == 0  # negative score
    c = got[comment["name"]]
    assert c["id"].startswith("t1_") and c["text"] == "same here & worse"
    assert c["url"] == "https://www.reddit.com" + comment["permalink"]
    assert c["author"]["handle"] == "u/bob" and c["engagement"]["likes"] == 5

    token_call = tokens(fake)[0]
    assert fake.requests[0] is token_call
    assert token_call.basic == (fake.client_id, fake.client_secret)
    assert token_call.user_agent == UA
    if grant == "password":
        assert token_call.form == {"grant_type": "password", "username": "escucha_bot",
                                   "password": "hunter2-pw"}
    else:
        assert token_call.form == {"grant_type": "client_credentials"}
    paths = {r.path for r in gets(fake)}
    assert paths == {"/r/acme+AcmeSupport/new", "/r/acme+AcmeSupport/comments"}
    for call in gets(fake):
        assert call.bearer in fake.tokens and call.status == 200
        assert call.user_agent == UA
        assert call.query["limit"] == "100" and call.query["raw_json"] == "1"
    assert ctx.health.errors == 0
    assert "hunter2" not in repr(connector.settings) and "app-secret" not in repr(
        connector.settings)


async def test_search_uses_watch_terms_when_no_subreddits(
        broker: EmbeddedBroker, tmp_path: Path, fake: FakeReddit) -> None:
    hit = fake.add_post("anything", "Acme Cloud is down again")
    fake.add_post("anything", "nothing to see")
    connector = RedditConnector(settings(fake, subreddits=[]))
    await run(connector, broker, tmp_path, lambda c: c.health.events >= 1 and len(gets(fake)) >= 3,
              terms=["acme cloud", "acmecorp"])

    assert [m["id"] for m in await raw_mentions(broker.bootstrap, idle_s=1.0)] == [hit["name"]]
    call = gets(fake)[0]
    assert call.path == "/search"
    assert call.query["q"] == '"acme cloud" OR acmecorp' and call.query["sort"] == "new"


async def test_token_renewed_before_expiry_and_after_a_401(
        broker: EmbeddedBroker, tmp_path: Path) -> None:
    async with FakeReddit(token_ttl_s=1.0) as fake:
        fake.add_post("acme", "first")
        state: dict[str, Any] = {"revoked_at": None}

        def until(ctx: ConnectorContext) -> bool:
            if state["revoked_at"] is None and len(tokens(fake)) >= 3:
                # Tokens renewed on time so far; now revoke the current one early.
                state["revoked_at"] = len(fake.requests)
                state["late"] = fake.add_post("acme", "after the revocation")
                fake.revoke_tokens()
            return state["revoked_at"] is not None and ctx.health.events >= 2

        ctx = await run(RedditConnector(settings(fake)), broker, tmp_path, until)

    before, after = fake.requests[:state["revoked_at"]], fake.requests[state["revoked_at"]:]
    assert all(r.status == 200 for r in before)  # renewed ahead of expiry: never a 401
    assert len([r for r in before if r.path == "/api/v1/access_token"]) >= 3
    refused = next(i for i, r in enumerate(after) if r.status == 401)
    assert after[refused + 1].path == "/api/v1/access_token"  # fresh token at once
    assert after[refused + 2].method == "GET" and after[refused + 2].status == 200
    assert ctx.health.errors == 0  # a 401 answered by a new token is no error
    ids = [m["id"] for m in await raw_mentions(broker.bootstrap, idle_s=1.0)]
    assert state["late"]["name"] in ids


async def test_restart_walks_after_pages_back_to_the_cursor_no_dup_no_gap(
        broker: EmbeddedBroker, tmp_path: Path, fake: FakeReddit) -> None:
    early = [fake.add_post("acme", f"early {i}") for i in range(10)]
    s = settings(fake, overlap_s=5.0)
    await run(RedditConnector(s), broker, tmp_path, lambda c: c.health.events >= 10)
    stored = json.loads((tmp_path / "connectors" / "reddit-test.json").read_text())
    entry = stored["cursor"]["listings"]["new:acme"]
    assert entry["newest"] == early[-1]["name"]
    assert entry["newest_utc"] == early[-1]["created_utc"]

    # Downtime: 230 posts arrive, more than two pages of 100.
    late = [fake.add_post("acme", f"late {i}") for i in range(230)]
    first_run = len(fake.requests)
    ctx = await run(RedditConnector(s), broker, tmp_path,
                    lambda c: c.health.events >= 240 and len(gets(fake)) >= 10)

    ids = [m["id"] for m in await raw_mentions(broker.bootstrap, idle_s=1.0)]
    assert len(ids) == len(set(ids)) == 240  # every post exactly once
    assert set(ids) == {p["name"] for p in early + late}
    assert ctx.health.duplicates == 0  # the overlap was skipped by the cursor, not by luck
    walk = [r for r in fake.requests[first_run:] if r.method == "GET"]
    newest_first = [p["name"] for p in reversed(late)]
    assert "after" not in walk[0].query
    assert walk[1].query["after"] == newest_first[99]
    assert walk[2].query["after"] == newest_first[199]
    # Page three reached the stored position: the next request is a new poll from the top.
    assert "after" not in walk[3].query


async def test_waits_out_a_spent_rate_window_before_asking_again(
        broker: EmbeddedBroker, tmp_path: Path) -> None:
    async with FakeReddit(rate_limit=2, window_s=1.5) as fake:
        fake.add_post("acme", "p")
        fake.add_comment(fake.add_post("acme", "q"), "c")
        connector = RedditConnector(settings(fake, include_comments=True))
        ctx = await run(connector, broker, tmp_path, lambda c: len(gets(fake)) >= 4)

    calls = gets(fake)
    assert all(r.status == 200 for r in calls)  # never ran into the 429
    spent = next(i for i, r in enumerate(calls) if r.headers["X-Ratelimit-Remaining"] == "0.0")
    reset = float(calls[spent].headers["X-Ratelimit-Reset"])
    assert reset >= 1
    assert calls[spent + 1].at - calls[spent].at >= reset - 0.05
    assert ctx.health.errors == 0


async def test_429_retry_after_is_honoured(
        broker: EmbeddedBroker, tmp_path: Path, fake: FakeReddit) -> None:
    fake.add_post("acme", "p")
    fake.fail_next(429, retry_after=1)
    ctx = await run(RedditConnector(settings(fake)), broker, tmp_path,
                    lambda c: c.health.events >= 1)

    calls = gets(fake)
    assert [r.status for r in calls[:2]] == [429, 200]
    assert calls[1].at - calls[0].at >= 1.0
    assert ctx.health.errors == 1 and "429" in (ctx.health.last_error or "")


async def test_5xx_is_retried_and_health_recovers(
        broker: EmbeddedBroker, tmp_path: Path, fake: FakeReddit) -> None:
    fake.add_post("acme", "p")
    fake.fail_next(503, times=2)
    ctx = await run(RedditConnector(settings(fake)), broker, tmp_path,
                    lambda c: c.health.events >= 1 and c.health.state == "ok")

    assert [r.status for r in gets(fake)[:3]] == [503, 503, 200]
    assert ctx.health.errors == 2 and ctx.health.consecutive_failures == 0
    assert len(await raw_mentions(broker.bootstrap, idle_s=1.0)) == 1


async def test_malformed_child_goes_to_dead_letters_once_and_the_rest_arrive(
        broker: EmbeddedBroker, tmp_path: Path, fake: FakeReddit) -> None:
    good = [fake.add_post("acme", "good one")]
    fake.add_raw("t3", {"title": "no fullname", "created_utc": 1.7e9, "id": "zz1"})
    good.append(fake.add_post("acme", "good two"))
    fake.add_raw("t3", {"name": "t3_zz2", "title": "no time", "id": "zz2"})
    state: dict[str, Any] = {}

    def until(ctx: ConnectorContext) -> bool:
        if ctx.health.events >= 2 and "third" not in state:
            state["third"] = fake.add_post("acme", "good three")  # still running?
            state["polls"] = len(gets(fake))
        return ("third" in state and ctx.health.events >= 3 and ctx.health.state == "ok"
                and len(gets(fake)) >= state["polls"] + 3)

    ctx = await run(RedditConnector(settings(fake)), broker, tmp_path, until)

    ids = [m["id"] for m in await raw_mentions(broker.bootstrap, idle_s=1.0)]
    assert sorted(ids) == sorted(p["name"] for p in [*good, state["third"]])
    dlq = await dead_letters(broker.bootstrap, idle_s=1.0)
    assert len(dlq) == 2 == ctx.health.dead_letters  # once each, not once per poll
    reasons = " | ".join(d["reason"] for d in dlq)
    assert "'name'" in reasons and "'created_utc'" in reasons
    assert any("no fullname" in d["payload"] for d in dlq)


async def test_refused_app_credentials_are_retried_without_leaking_the_secret(
        broker: EmbeddedBroker, tmp_path: Path, fake: FakeReddit) -> None:
    s = settings(fake, client_secret="wrong-secret-value")
    ctx = await run(RedditConnector(s), broker, tmp_path, lambda c: c.health.errors >= 2)

    assert not gets(fake)  # no listing request without a token
    assert "client_secret" in (ctx.health.last_error or "")
    assert "wrong-secret-value" not in (ctx.health.last_error or "")
    health = (tmp_path / "connectors" / "reddit-test.json").read_text()
    assert "wrong-secret-value" not in health


def test_settings_validation() -> None:
    base: dict[str, Any] = {"name": "r", "client_id": "x", "client_secret": "y",
                            "user_agent": UA}
    assert RedditSettings(**base, subreddits=["/r/Python", "r/acme"]).subreddits == [
        "Python", "acme"]
    with pytest.raises(ValueError, match="subreddit"):
        RedditSettings(**base, subreddits=["https://reddit.com/r/x"])
    with pytest.raises(ValueError, match="username and password"):
        RedditSettings(**base, username="only-me")
