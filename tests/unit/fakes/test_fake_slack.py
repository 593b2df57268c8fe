"""FakeSlack driven by the real slack_sdk AsyncWebClient over loopback HTTP."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from slack_sdk.errors import SlackApiError
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient

from tests.fakes.slack import FakeSlack, SlackCall, sign_slack_request

ALERT_BLOCKS: list[dict[str, Any]] = [
    {"type": "header", "text": {"type": "plain_text", "text": "Volume spike: Acme"}},
    {"type": "section", "text": {"type": "mrkdwn", "text": "*42* mentions in 5 min"}},
]
ALERT_METADATA = {"event_type": "escucha_incident", "event_payload": {"incident_id": "inc-1"}}
TS = re.compile(r"^\d{10}\.\d{6}$")


@pytest_asyncio.fixture
async def fake() -> AsyncIterator[FakeSlack]:
    async with FakeSlack() as server:
        yield server


@pytest.fixture
def client(fake: FakeSlack) -> AsyncWebClient:
    return AsyncWebClient(token=fake.token, base_url=fake.url)


async def slack_error(awaitable: Any) -> SlackApiError:
    with pytest.raises(SlackApiError) as info:
        await awaitable
    return info.value


@pytest.mark.asyncio
async def test_binds_loopback_port_zero_and_answers_auth_test(
    fake: FakeSlack, client: AsyncWebClient
) -> None:
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/api/", fake.url)
    assert not fake.url.endswith(":0/api/")
    response = await client.auth_test()
    assert response["team_id"] == "T0001"
    assert response["bot_id"] == "B0001"
    assert fake.calls[0].method == "auth.test"
    assert fake.calls[0].token == fake.token


@pytest.mark.asyncio
async def test_post_message_json_body_with_blocks_and_metadata(
    fake: FakeSlack, client: AsyncWebClient
) -> None:
    response = await client.chat_postMessage(
        channel="#alerts",
        text="Volume spike: Acme",
        blocks=ALERT_BLOCKS,
        metadata=ALERT_METADATA,
        unfurl_links=False,
    )
    channel = FakeSlack.channel_id("alerts")
    assert channel.startswith("C") and response["channel"] == channel
    assert TS.match(response["ts"])
    assert response["message"]["blocks"] == ALERT_BLOCKS
    assert response["message"]["metadata"] == ALERT_METADATA
    (call,) = fake.posted
    assert call.params["blocks"] == ALERT_BLOCKS  # JSON body: real lists, not strings
    assert call.params["unfurl_links"] is False
    assert fake.messages("#alerts") == [
        {
            "ts": response["ts"],
            "channel": channel,
            "text": "Volume spike: Acme",
            "blocks": ALERT_BLOCKS,
            "metadata": ALERT_METADATA,
            "thread_ts": None,
        }
    ]


@pytest.mark.asyncio
async def test_form_encoded_post_decodes_json_fields_and_accepts_form_token(
    fake: FakeSlack,
) -> None:
    anonymous = AsyncWebClient(base_url=fake.url)
    await anonymous.api_call(
        "chat.postMessage",
        data={
            "token": fake.token,
            "channel": "C0123456",
            "text": "hi",
            "blocks": json.dumps(ALERT_BLOCKS),
            "metadata": json.dumps(ALERT_METADATA),
        },
    )
    (message,) = fake.messages("C0123456")
    assert message["blocks"] == ALERT_BLOCKS
    assert message["metadata"] == ALERT_METADATA
    assert fake.calls[0].token == fake.token
    assert "token" not in fake.calls[0].params


@pytest.mark.asyncio
async def test_ts_values_are_unique_and_increasing_even_with_a_frozen_clock() -> None:
    async with FakeSlack(clock=lambda: 1_700_000_000.0001) as fake:
        client = AsyncWebClient(token=fake.token, base_url=fake.url)
        stamps = [
            (await client.chat_postMessage(channel="alerts", text=str(i)))["ts"] for i in range(3)
        ]
    assert stamps == ["1700000000.000100", "1700000000.000101", "1700000000.000102"]


@pytest.mark.asyncio
async def test_update_replaces_content_in_place(fake: FakeSlack, client: AsyncWebClient) -> None:
    posted = await client.chat_postMessage(
        channel="#alerts", text="open", blocks=ALERT_BLOCKS, metadata=ALERT_METADATA
    )
    acked = [{"type": "section", "text": {"type": "mrkdwn", "text": "Acknowledged by <@U9>"}}]
    response = await client.chat_update(
        channel=posted["channel"], ts=posted["ts"], text="acked", blocks=acked
    )
    assert response["ts"] == posted["ts"]
    (message,) = fake.messages()
    assert (message["text"], message["blocks"]) == ("acked", acked)
    assert message["metadata"] == ALERT_METADATA  # absent from the update: kept

    await client.chat_update(channel=posted["channel"], ts=posted["ts"], text="plain")
    assert fake.messages()[0]["blocks"] == []  # text without blocks drops old blocks, as Slack does


@pytest.mark.asyncio
async def test_update_errors(fake: FakeSlack, client: AsyncWebClient) -> None:
    posted = await client.chat_postMessage(channel="#alerts", text="open")
    missing = await slack_error(
        client.chat_update(channel=posted["channel"], ts="1.000001", text="x")
    )
    assert missing.response["error"] == "message_not_found"
    by_name = await slack_error(client.chat_update(channel="#alerts", ts=posted["ts"], text="x"))
    assert by_name.response["error"] == "channel_not_found"  # update wants the channel id
    assert fake.messages()[0]["text"] == "open"
    assert [c.error for c in fake.calls] == [None, "message_not_found", "channel_not_found"]


@pytest.mark.asyncio
async def test_history_newest_first_with_metadata_only_when_asked(
    fake: FakeSlack, client: AsyncWebClient
) -> None:
    first = await client.chat_postMessage(channel="#alerts", text="one", metadata=ALERT_METADATA)
    second = await client.chat_postMessage(channel="#alerts", text="two")
    await client.chat_postMessage(channel="#alerts", text="reply", thread_ts=first["ts"])
    channel = first["channel"]

    plain = await client.conversations_history(channel=channel)
    assert [m["text"] for m in plain["messages"]] == ["two", "one"]  # replies stay in the thread
    assert all("metadata" not in m for m in plain["messages"])
    assert plain["messages"][1]["reply_count"] == 1
    assert plain["has_more"] is False and plain["response_metadata"]["next_cursor"] == ""

    rich = await client.conversations_history(channel=channel, include_all_metadata=True)
    assert rich["messages"][1]["metadata"] == ALERT_METADATA

    newer = await client.conversations_history(channel=channel, oldest=first["ts"])
    assert [m["ts"] for m in newer["messages"]] == [second["ts"]]  # oldest is exclusive


@pytest.mark.asyncio
async def test_history_paginates_with_cursor(fake: FakeSlack, client: AsyncWebClient) -> None:
    channel = FakeSlack.channel_id("alerts")
    for i in range(5):
        await client.chat_postMessage(channel=channel, text=str(i))
    texts: list[str] = []
    async for page in await client.conversations_history(channel=channel, limit=2):
        texts += [m["text"] for m in page["messages"]]
    assert texts == ["4", "3", "2", "1", "0"]
    history_calls = [c for c in fake.calls if c.method == "conversations.history"]
    assert len(history_calls) == 3


@pytest.mark.asyncio
async def test_unknown_channel_is_channel_not_found() -> None:
    async with FakeSlack(known_channels={"#alerts"}) as fake:
        client = AsyncWebClient(token=fake.token, base_url=fake.url)
        await client.chat_postMessage(channel="alerts", text="ok")
        error = await slack_error(client.chat_postMessage(channel="#nope", text="x"))
        assert error.response.status_code == 200
        assert error.response["error"] == "channel_not_found"
        assert len(fake.posted) == 1 and len(fake.calls) == 2


@pytest.mark.filterwarnings("ignore:The top-level `text` argument is missing:UserWarning")
@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({}, "no_text"),
        ({"text": "x" * 40_001}, "msg_too_long"),
        ({"text": "x", "blocks": [{"type": "divider"}] * 51}, "invalid_blocks"),
        (
            {
                "text": "x",
                "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "y" * 3001}}],
            },
            "invalid_blocks",
        ),
        ({"text": "x", "metadata": {"event_type": "e"}}, "invalid_metadata_format"),
    ],
)
@pytest.mark.asyncio
async def test_slack_limits_are_enforced_and_recorded(
    fake: FakeSlack, client: AsyncWebClient, kwargs: dict[str, Any], expected: str
) -> None:
    error = await slack_error(client.chat_postMessage(channel="#alerts", **kwargs))
    assert error.response["error"] == expected
    assert fake.calls[0].error == expected
    assert fake.posted == [] and fake.messages() == []


@pytest.mark.asyncio
async def test_invalid_blocks_answer_explains_the_pointer(client: AsyncWebClient) -> None:
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "y" * 3001}}]
    error = await slack_error(client.chat_postMessage(channel="#alerts", text="x", blocks=blocks))
    assert error.response["errors"] == [
        "must be less than 3001 characters [json-pointer:/blocks/0/text/text]"
    ]


@pytest.mark.asyncio
async def test_rate_limit_exposes_retry_after_then_recovers(
    fake: FakeSlack, client: AsyncWebClient
) -> None:
    fake.fail_next("chat.postMessage", status=429, retry_after=2)
    error = await slack_error(client.chat_postMessage(channel="#alerts", text="x"))
    assert error.response.status_code == 429
    assert error.response.headers["Retry-After"] == "2"
    assert error.response["error"] == "ratelimited"
    await client.chat_postMessage(channel="#alerts", text="x")
    assert [(c.status, c.ok) for c in fake.calls] == [(429, False), (200, True)]


@pytest.mark.asyncio
async def test_scripted_api_error_applies_times_and_only_to_its_method(
    fake: FakeSlack, client: AsyncWebClient
) -> None:
    fake.fail_next("chat.postMessage", error="channel_not_found", times=2)
    await client.auth_test()  # other methods are unaffected
    for _ in range(2):
        error = await slack_error(client.chat_postMessage(channel="#alerts", text="x"))
        assert (error.response.status_code, error.response["error"]) == (200, "channel_not_found")
    await client.chat_postMessage(channel="#alerts", text="x")
    assert len(fake.posted) == 1


@pytest.mark.asyncio
async def test_scripted_5xx_answers_an_html_edge_page(
    fake: FakeSlack, client: AsyncWebClient
) -> None:
    fake.fail_next("chat.postMessage", status=500)
    error = await slack_error(client.chat_postMessage(channel="#alerts", text="x"))
    assert error.response.status_code == 500
    assert error.response.data == {}  # not JSON: slack_sdk gives up on the body
    assert error.response.headers["Content-Type"].startswith("text/html")


@pytest.mark.asyncio
async def test_outage_answers_503_until_it_comes_back(
    fake: FakeSlack, client: AsyncWebClient
) -> None:
    fake.go_down()
    for _ in range(2):
        error = await slack_error(client.chat_postMessage(channel="#alerts", text="x"))
        assert error.response.status_code == 503
    fake.come_up()
    await client.chat_postMessage(channel="#alerts", text="x")
    assert [c.status for c in fake.calls] == [503, 503, 200]
    assert fake.calls[0].error == "http_503"
    assert len(fake.messages()) == 1


@pytest.mark.asyncio
async def test_bad_or_missing_token(fake: FakeSlack) -> None:
    wrong = AsyncWebClient(token="xoxb-wrong", base_url=fake.url)
    error = await slack_error(wrong.chat_postMessage(channel="#alerts", text="x"))
    assert error.response["error"] == "invalid_auth"
    none = AsyncWebClient(base_url=fake.url)
    error = await slack_error(none.auth_test())
    assert error.response["error"] == "not_authed"
    assert fake.messages() == []
    assert [c.token for c in fake.calls] == ["xoxb-wrong", None]


@pytest.mark.asyncio
async def test_unknown_method(client: AsyncWebClient) -> None:
    error = await slack_error(client.api_call("chat.teleport"))
    assert error.response["error"] == "unknown_method"


@pytest.mark.asyncio
async def test_wait_for_sees_calls_made_concurrently(
    fake: FakeSlack, client: AsyncWebClient
) -> None:
    async def later() -> None:
        await asyncio.sleep(0.05)
        await client.chat_postMessage(channel="#alerts", text="late")

    task = asyncio.create_task(later())
    await fake.wait_for(lambda calls: any(c.ok for c in calls), timeout=5)
    await task


@pytest.mark.asyncio
async def test_wait_for_timeout_lists_recorded_calls(
    fake: FakeSlack, client: AsyncWebClient
) -> None:
    await client.chat_postMessage(channel="#alerts", text="only one")

    def two_posts(calls: list[SlackCall]) -> bool:
        return len(calls) >= 2

    with pytest.raises(TimeoutError) as info:
        await fake.wait_for(two_posts, timeout=0.05)
    assert "chat.postMessage" in str(info.value) and "only one" in str(info.value)
    assert fake.token not in str(info.value)


@pytest.mark.asyncio
async def test_stop_closes_the_port() -> None:
    fake = FakeSlack()
    with pytest.raises(RuntimeError):
        _ = fake.url
    await fake.start()
    url = fake.url
    await fake.stop()
    await fake.stop()  # idempotent
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.ClientConnectionError):
            await session.post(url + "auth.test")


def test_signature_matches_slack_sdk_verifier() -> None:
    body = b"payload=%7B%22type%22%3A%22block_actions%22%7D"
    headers = sign_slack_request(body, signing_secret="s3cret")
    verifier = SignatureVerifier("s3cret")
    assert verifier.is_valid(
        body, headers["X-Slack-Request-Timestamp"], headers["X-Slack-Signature"]
    )
    assert not SignatureVerifier("other").is_valid(
        body, headers["X-Slack-Request-Timestamp"], headers["X-Slack-Signature"]
    )
    fixed = sign_slack_request(body, signing_secret="s3cret", timestamp=1_700_000_000)
    assert fixed["X-Slack-Request-Timestamp"] == "1700000000"
    assert fixed["X-Slack-Signature"].startswith("v0=") and len(fixed["X-Slack-Signature"]) == 67
    assert int(headers["X-Slack-Request-Timestamp"]) == pytest.approx(time.time(), abs=5)


@pytest.mark.asyncio
async def test_conversations_list_names_known_and_posted_channels_with_pagination() -> None:
    async with FakeSlack(known_channels={"#alerts", "exec", "C0KNOWN1"}) as fake:
        client = AsyncWebClient(token=fake.token, base_url=fake.url)
        listed = await client.conversations_list(types="public_channel,private_channel")
        assert {(c["id"], c["name"]) for c in listed["channels"]} == {
            (FakeSlack.channel_id("alerts"), "alerts"), (FakeSlack.channel_id("exec"), "exec")}
        assert listed["response_metadata"] == {"next_cursor": ""}

    async with FakeSlack() as fake:
        client = AsyncWebClient(token=fake.token, base_url=fake.url)
        for name in ("#a1", "a2", "#a3"):
            await client.chat_postMessage(channel=name, text="x")
        await client.chat_postMessage(channel="C0123456", text="by id: no name to list")
        names: list[str] = []
        async for page in await client.conversations_list(limit=2):
            names += [c["name"] for c in page["channels"]]
            assert all(c["id"] == FakeSlack.channel_id(c["name"]) for c in page["channels"])
        assert sorted(names) == ["a1", "a2", "a3"]
        assert len([c for c in fake.calls if c.method == "conversations.list"]) == 2
        error = await slack_error(client.conversations_list(cursor="bm9wZQ=="))
        assert error.response["error"] == "invalid_cursor"
