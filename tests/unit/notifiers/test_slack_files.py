"""Slack's three-step file upload against the recording fake of the Web API."""

from __future__ import annotations

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from notifiers.errors import DeliveryError
from notifiers.slack_files import SlackFile, SlackFileUploader
from tests.fakes.slack import FakeSlack

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 100


async def test_upload_shares_files_in_one_message_of_a_named_channel() -> None:
    async with FakeSlack(known_channels={"#reports"}) as slack:
        up = SlackFileUploader(token=slack.token, base_url=slack.url)
        receipt = await up.upload("#reports", [
            SlackFile(filename="volume-acme.png", content=PNG, title="Acme volume",
                      alt_text="Mentions per day"),
            SlackFile(filename="volume-globex.png", content=PNG[:50], title="Globex volume")],
            comment="*Weekly* report")
        channel = FakeSlack.channel_id("#reports")
        assert [u.filename for u in slack.uploads] == ["volume-acme.png", "volume-globex.png"]
        assert [u.content for u in slack.uploads] == [PNG, PNG[:50]]
        assert {u.ts for u in slack.uploads} == {slack.uploads[0].ts}  # one message
        assert all(u.channel == channel and u.initial_comment == "*Weekly* report"
                   for u in slack.uploads)
        assert slack.uploads[0].title == "Acme volume"
        assert slack.uploads[0].alt_txt == "Mentions per day"
        assert receipt.external_id is not None and receipt.external_id.startswith(channel)
        methods = [c.method for c in slack.calls]
        assert methods == ["conversations.list", "files.getUploadURLExternal",
                           "files.getUploadURLExternal", "files.completeUploadExternal"]
        assert [m["text"] for m in slack.messages("#reports")] == ["*Weekly* report"]


async def test_failures_are_classified() -> None:
    async with FakeSlack(known_channels={"#reports"}) as slack:
        up = SlackFileUploader(token=slack.token, base_url=slack.url)
        files = [SlackFile(filename="a.png", content=PNG, title="a")]
        with pytest.raises(DeliveryError, match="no channel named '#elsewhere'") as err:
            await up.upload("#elsewhere", files, comment="x")
        assert not err.value.retryable
        slack.fail_next("files.getUploadURLExternal", status=429, retry_after=7)
        with pytest.raises(DeliveryError, match="ratelimited") as err:
            await up.upload("#reports", files, comment="x")
        assert err.value.retryable and err.value.retry_after == 7
        slack.fail_next("files.completeUploadExternal", error="missing_scope")
        with pytest.raises(DeliveryError, match="files:write") as err:
            await up.upload("#reports", files, comment="x")
        assert not err.value.retryable
        bad = SlackFileUploader(token="xoxb-wrong", base_url=slack.url)
        with pytest.raises(DeliveryError, match="invalid_auth") as err:
            await bad.upload(FakeSlack.channel_id("#reports"), files, comment="x")
        assert "xoxb-wrong" not in str(err.value)
        assert slack.uploads == []


async def test_the_fake_refuses_to_share_what_was_not_uploaded() -> None:
    async with FakeSlack() as slack:
        up = SlackFileUploader(token=slack.token, base_url=slack.url)
        with pytest.raises(DeliveryError, match="between 1 and 10 files"):
            await up.upload("C0123ABC", [], comment="x")
        client = AsyncWebClient(token=slack.token, base_url=slack.url)
        got = await client.files_getUploadURLExternal(filename="a.png", length=3)
        with pytest.raises(SlackApiError, match="file_not_found"):
            await client.files_completeUploadExternal(files=[{"id": got["file_id"]}],
                                                      channel_id="C0123ABC")
