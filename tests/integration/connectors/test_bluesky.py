"""The Bluesky connector (Jetstream firehose and searchPosts) against a fake and the real broker."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pydantic
import pytest

from streams.connectors.base import ConnectorContext
from streams.connectors.bluesky import BlueskyConnector, BlueskySettings
from streams.runtime.broker import EmbeddedBroker
from tests.fakes.bluesky import FakeBluesky
from tests.support.connectors import dead_letters, raw_mentions, run_until

pytestmark = pytest.mark.timeout(60)

_REWIND_US = 5_000_000


def _settings(fake: FakeBluesky, **extra: Any) -> BlueskySettings:
    values: dict[str, Any] = {
        "name": "bsky", "jetstream_url": fake.ws_url, "appview_url": fake.url,
        "pds_url": fake.url, "keywords": ("acme",), "initial_backoff_s": 0.05,
        "max_backoff_s": 0.5, "idle_timeout_s": 10.0, "cursor_save_interval_s": 0.2,
        "rewind_s": _REWIND_US / 1e6, "poll_interval_s": 30.0}
    values.update(extra)
    return BlueskySettings(**values)


def _start(connector: BlueskyConnector, broker: EmbeddedBroker, datadir: Path,
           until: Callable[[ConnectorContext], bool],
           terms: list[str] | None = None) -> asyncio.Task[ConnectorContext]:
    return asyncio.create_task(run_until(connector, bootstrap=broker.bootstrap,
                                         datadir=datadir, until=until, timeout=20.0,
                                         terms=terms))


async def _eventually(condition: Callable[[], bool]) -> None:
    """Poll a condition on the fake (it has no events to await), 10 s at most."""
    for _ in range(500):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not met in 10 s")


def _uri(event: dict[str, Any]) -> str:
    return f"at://{event['did']}/app.bsky.feed.post/{event['commit']['rkey']}"


def _stored(datadir: Path) -> Any:
    return json.loads((datadir / "connectors" / "bsky.json").read_text())["cursor"]


# -- Jetstream ----------------------------------------------------------------------------------

async def test_firehose_keeps_only_posts_with_watch_terms(broker: EmbeddedBroker,
                                                         tmp_path: Path) -> None:
    async with FakeBluesky() as fake:
        connector = BlueskyConnector(_settings(fake, keywords=()))
        task = _start(connector, broker, tmp_path,
                      lambda c: c.health.events >= 3 and c.health.state == "ok",
                      terms=["Acme", "data breach"])
        await _eventually(lambda: fake.connections == 1)
        p1 = fake.post("Loving my new ACME phone!", did="did:plc:alice", langs=["en"],
                       created_at="2024-09-09T19:46:02.102Z")
        fake.post("nothing to see here", did="did:plc:bob", langs=["en"])
        fake.like(_uri(p1))
        fake.identity("did:plc:alice", "alice.bsky.social")
        fake.account("did:plc:alice", active=True)
        fake.post("ACME edited", operation="update")
        fake.post(None, operation="delete")
        p2 = fake.post("Le café Acmé est génial", did="did:web:example.com",
                       langs=["fr-FR", "en"], created_at="2024-09-09T20:00:00Z")
        p3 = fake.post("Big DATA\n breach at the bank", did="did:plc:carol")
        ctx = await task
        mentions = await raw_mentions(broker.bootstrap)

    assert ctx.health.dead_letters == 0
    assert sorted(m["id"] for m in mentions) == sorted(_uri(p) for p in (p1, p2, p3))
    got = {m["id"]: m for m in mentions}
    m1 = got[_uri(p1)]
    assert m1["source"] == "bluesky"
    assert m1["url"] == f"https://bsky.app/profile/did:plc:alice/post/{p1['commit']['rkey']}"
    assert m1["author"]["handle"] == "did:plc:alice"  # Jetstream carries no handle
    assert m1["text"] == "Loving my new ACME phone!"
    assert m1["language"] == "en"
    assert datetime.fromisoformat(m1["created_at"]) == datetime(2024, 9, 9, 19, 46, 2, 102000,
                                                                tzinfo=UTC)
    assert got[_uri(p2)]["language"] == "fr"
    assert got[_uri(p3)]["language"] is None
    # Only posts were asked for, live (no cursor on a first run).
    assert fake.handshakes[0].query["wantedCollections"] == ["app.bsky.feed.post"]
    assert fake.handshakes[0].cursor is None


@pytest.mark.parametrize("abrupt", [True, False], ids=["cut", "close-frame"])
async def test_dropped_stream_reconnects_with_rewound_cursor(broker: EmbeddedBroker,
                                                             tmp_path: Path,
                                                             abrupt: bool) -> None:
    async with FakeBluesky() as fake:
        fake.drop_after(2, abrupt=abrupt)
        connector = BlueskyConnector(_settings(fake))
        task = _start(connector, broker, tmp_path, lambda c: c.health.events >= 4
                      and c.health.state == "ok")
        await _eventually(lambda: fake.connections == 1)
        posts = [fake.post(f"acme news {n}") for n in range(4)]
        ctx = await task
        mentions = await raw_mentions(broker.bootstrap)

    assert [h.frames_sent for h in fake.handshakes][:1] == [2]
    assert len(fake.handshakes) == 2
    # Resumed from the last event it processed, rewound: the two replayed posts are dropped.
    assert fake.handshakes[1].cursor == posts[1]["time_us"] - _REWIND_US
    assert sorted(m["id"] for m in mentions) == sorted(_uri(p) for p in posts)
    assert ctx.health.duplicates == 2
    assert ctx.health.errors == 1


async def test_malformed_frames_are_dead_lettered_and_stream_goes_on(broker: EmbeddedBroker,
                                                                      tmp_path: Path) -> None:
    async with FakeBluesky() as fake:
        connector = BlueskyConnector(_settings(fake))
        task = _start(connector, broker, tmp_path,
                      lambda c: c.health.events >= 2 and c.health.dead_letters >= 3)
        await _eventually(lambda: fake.connections == 1)
        good1 = fake.post("acme one")
        fake.raw("this is {not json")
        fake.post(None)  # a post record without text
        fake.raw(json.dumps({"did": "did:plc:x", "kind": "commit"}))  # no time_us
        good2 = fake.post("acme two")
        ctx = await task
        mentions = await raw_mentions(broker.bootstrap)
        dead = await dead_letters(broker.bootstrap)

    assert sorted(m["id"] for m in mentions) == sorted([_uri(good1), _uri(good2)])
    reasons = sorted(d["reason"] for d in dead)
    assert len(reasons) == 3
    assert any("not JSON" in r for r in reasons)
    assert any("post record has no text" in r for r in reasons)
    assert any("time_us" in r for r in reasons)
    assert all(r.startswith("bsky: ") for r in reasons)
    assert any(d["payload"] == "this is {not json" for d in dead)
    assert len(fake.handshakes) == 1  # the stream was never dropped for it
    assert ctx.health.errors == 0


async def test_handshake_429_and_503_are_retried_with_backoff(broker: EmbeddedBroker,
                                                              tmp_path: Path) -> None:
    async with FakeBluesky() as fake:
        fake.fail_next_handshake(429, retry_after=1)
        fake.fail_next_handshake(503)
        connector = BlueskyConnector(_settings(fake))
        task = _start(connector, broker, tmp_path,
                      lambda c: c.health.events >= 1 and c.health.state == "ok")
        await _eventually(lambda: fake.connections == 1)
        post = fake.post("acme is back")
        ctx = await task
        mentions = await raw_mentions(broker.bootstrap)

    assert [h.status for h in fake.handshakes] == [429, 503, 101]
    assert fake.handshakes[1].at - fake.handshakes[0].at >= 1.0  # Retry-After: 1 honoured
    assert [m["id"] for m in mentions] == [_uri(post)]
    assert ctx.health.errors == 2
    assert ctx.health.consecutive_failures == 0


async def test_firehose_restart_resumes_without_dup_or_gap(broker: EmbeddedBroker,
                                                           tmp_path: Path) -> None:
    async with FakeBluesky() as fake:
        connector = BlueskyConnector(_settings(fake))
        first: list[dict[str, Any]] = []
        quiet: dict[str, Any] = {}

        def saved_quiet(c: ConnectorContext) -> bool:
            return bool(quiet) and isinstance(c.cursor, dict) \
                and c.cursor.get("time_us") == quiet["time_us"]

        task = _start(connector, broker, tmp_path,
                      lambda c: c.health.events >= 2 and saved_quiet(c))
        await _eventually(lambda: fake.connections == 1)
        first += [fake.post("acme 1"), fake.post("acme 2")]
        await asyncio.sleep(0.3)  # longer than cursor_save_interval_s
        quiet.update(fake.post("unrelated chatter"))  # no match: stored by the periodic save
        await task
        await _eventually(lambda: fake.connections == 0)
        assert _stored(tmp_path) == {"time_us": quiet["time_us"]}

        # Said while escucha was down: Jetstream replays them from the cursor.
        later = [fake.post("acme 3"), fake.post("acme 4")]
        again = BlueskyConnector(_settings(fake))
        ctx = await run_until(again, bootstrap=broker.bootstrap, datadir=tmp_path,
                              until=lambda c: c.health.events >= 4, timeout=20.0)
        mentions = await raw_mentions(broker.bootstrap)

    assert fake.handshakes[-1].cursor == quiet["time_us"] - _REWIND_US
    ids = [m["id"] for m in mentions]
    assert sorted(ids) == sorted(_uri(p) for p in first + later)  # each exactly once
    assert ctx.health.duplicates == 2  # acme 1 and 2 replayed by the rewind, dropped


# -- searchPosts --------------------------------------------------------------------------------

async def test_search_pages_through_results_and_maps_fields(broker: EmbeddedBroker,
                                                            tmp_path: Path) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    async with FakeBluesky() as fake:
        views = [fake.add_post_view(f"Acme update {n}", did=f"did:plc:user{n}",
                                    handle=f"user{n}.bsky.social",
                                    created_at=now - timedelta(minutes=10 - n))
                 for n in range(4)]
        star = fake.add_post_view("ACME stock is down", did="did:plc:star",
                                  handle="star.example.com", display_name="Star",
                                  created_at=now - timedelta(minutes=1), langs=["en-US"],
                                  likes=10, reposts=3, quotes=2, replies=4, verified=True)
        fake.add_post_view("globex only", created_at=now)
        fake.add_post_view("Acme long ago", created_at=now - timedelta(days=2))
        connector = BlueskyConnector(_settings(fake, mode="search", page_limit=2))
        ctx = await run_until(connector, bootstrap=broker.bootstrap, datadir=tmp_path,
                              until=lambda c: c.health.events >= 5
                              and isinstance(c.cursor, dict) and "search" in c.cursor)
        mentions = await raw_mentions(broker.bootstrap)

    assert sorted(m["id"] for m in mentions) == sorted(v["uri"] for v in [*views, star])
    params = [s.params for s in fake.searches]
    assert [p.get("cursor") for p in params] == [None, "2", "4"]
    assert {(p["q"], p["sort"], p["limit"]) for p in params} == {("acme", "latest", "2")}
    since = datetime.fromisoformat(params[0]["since"].replace("Z", "+00:00"))
    assert abs((datetime.now(UTC) - since).total_seconds() - 3600) < 30  # lookback_s
    m = {m["id"]: m for m in mentions}[star["uri"]]
    assert m["author"] == {"handle": "star.example.com", "name": "Star", "followers": 0,
                           "verified": True}
    assert m["engagement"] == {"likes": 10, "shares": 5, "replies": 4}
    assert m["language"] == "en"
    assert m["url"] == "https://bsky.app/profile/did:plc:star/post/" + star["uri"].rsplit("/")[-1]
    assert ctx.cursor["search"]["acme"] == star["record"]["createdAt"]


@pytest.mark.parametrize("limit", ["retry-after", "ratelimit-reset"])
async def test_search_429_is_waited_out_and_5xx_retried(broker: EmbeddedBroker,
                                                        tmp_path: Path, limit: str) -> None:
    async with FakeBluesky() as fake:
        view = fake.add_post_view("acme rocks")
        if limit == "retry-after":
            fake.fail_next_search(429, retry_after=1)
        else:
            fake.fail_next_search(429, reset_in=1.0)
        fake.fail_next_search(500)
        connector = BlueskyConnector(_settings(fake, mode="search"))
        ctx = await run_until(connector, bootstrap=broker.bootstrap, datadir=tmp_path,
                              until=lambda c: c.health.events >= 1 and c.health.state == "ok")
        mentions = await raw_mentions(broker.bootstrap)

    assert [s.status for s in fake.searches] == [429, 500, 200]
    assert fake.searches[1].at - fake.searches[0].at >= 0.99
    assert [m["id"] for m in mentions] == [view["uri"]]
    assert ctx.health.errors == 2


async def test_search_malformed_post_is_dead_lettered(broker: EmbeddedBroker,
                                                      tmp_path: Path) -> None:
    async with FakeBluesky() as fake:
        good = fake.add_post_view("acme fine")
        fake.add_raw_post_view({"uri": "at://did:plc:bad/app.bsky.feed.post/3kbad",
                                "author": {"did": "did:plc:bad", "handle": "bad.bsky.social"},
                                "record": {"createdAt": "2024-09-09T19:46:02.102Z"},
                                "indexedAt": "2024-09-09T19:46:03.000Z"}, match="acme")
        fake.add_raw_post_view({"uri": "https://not-an-at-uri", "author": {"did": "did:plc:x"},
                                "record": {"text": "acme"}}, match="acme")
        connector = BlueskyConnector(_settings(fake, mode="search"))
        ctx = await run_until(connector, bootstrap=broker.bootstrap, datadir=tmp_path,
                              until=lambda c: c.health.events >= 1
                              and c.health.dead_letters >= 2 and c.health.state == "ok")
        mentions = await raw_mentions(broker.bootstrap)
        dead = await dead_letters(broker.bootstrap)

    assert [m["id"] for m in mentions] == [good["uri"]]
    reasons = sorted(d["reason"] for d in dead)
    assert any("post record has no text" in r for r in reasons)
    assert any("at:// URI" in r for r in reasons)
    assert ctx.health.errors == 0


async def test_search_restart_resumes_from_newest_seen(broker: EmbeddedBroker,
                                                       tmp_path: Path) -> None:
    now = datetime.now(UTC)
    async with FakeBluesky() as fake:
        first = [fake.add_post_view(f"acme {n}", created_at=now - timedelta(seconds=30 - n))
                 for n in range(3)]
        settings = _settings(fake, mode="search", overlap_s=1.0)
        await run_until(BlueskyConnector(settings), bootstrap=broker.bootstrap,
                        datadir=tmp_path, until=lambda c: c.health.events >= 3
                        and isinstance(c.cursor, dict) and "search" in c.cursor)
        newest = _stored(tmp_path)["search"]["acme"]
        assert newest == first[-1]["record"]["createdAt"]
        asked = len(fake.searches)

        later = [fake.add_post_view(f"acme later {n}", created_at=now + timedelta(seconds=n))
                 for n in range(2)]
        ctx = await run_until(BlueskyConnector(settings), bootstrap=broker.bootstrap,
                              datadir=tmp_path, until=lambda c: c.health.events >= 5)
        mentions = await raw_mentions(broker.bootstrap)

    since = fake.searches[asked].params["since"]
    expected = datetime.fromisoformat(newest.replace("Z", "+00:00")) - timedelta(seconds=1)
    assert datetime.fromisoformat(since.replace("Z", "+00:00")) == expected
    assert sorted(m["id"] for m in mentions) == sorted(v["uri"] for v in first + later)
    assert ctx.health.duplicates >= 1  # the overlap re-asked the newest post; dropped


async def test_search_logs_in_and_refreshes_an_expired_session(broker: EmbeddedBroker,
                                                               tmp_path: Path) -> None:
    async with FakeBluesky(accounts={"escucha.bsky.social": "abcd-efgh-ijkl-mnop"}) as fake:
        fake.add_post_view("acme one")
        settings = _settings(fake, mode="search", poll_interval_s=0.2,
                             identifier="escucha.bsky.social",
                             app_password=pydantic.SecretStr("abcd-efgh-ijkl-mnop"))
        connector = BlueskyConnector(settings)
        task = _start(connector, broker, tmp_path, lambda c: c.health.events >= 2)
        await _eventually(lambda: any(s.status == 200 for s in fake.searches))
        fake.expire_tokens()
        await _eventually(lambda: any(s.status == 400 for s in fake.searches))
        fake.add_post_view("acme two")
        ctx = await task

    assert "abcd-efgh" not in repr(settings) and "abcd-efgh" not in str(ctx.health)
    assert fake.sessions_created == 1 and fake.sessions_refreshed == 1
    assert all(s.token for s in fake.searches)
    assert ctx.health.errors == 0


def test_settings_are_checked() -> None:
    with pytest.raises(pydantic.ValidationError, match="identifier and app_password"):
        BlueskySettings(name="b", identifier="me.bsky.social")
    with pytest.raises(pydantic.ValidationError, match="absolute URL"):
        BlueskySettings(name="b", jetstream_url="jetstream.example")
    with pytest.raises(pydantic.ValidationError):
        BlueskySettings(name="b", mode="firehose")  # type: ignore[arg-type]
    assert BlueskySettings(name="b").jetstream_url == "wss://jetstream2.us-east.bsky.network"
