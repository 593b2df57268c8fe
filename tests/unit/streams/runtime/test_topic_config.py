"""Topic retention as escucha creates it, and what the start-up check says about others."""

from __future__ import annotations

from typing import Any

import pytest

from streams.core import topics
from streams.runtime import broker
from streams.runtime.broker import config_differences, topic_config

DAY = 86_400_000


def test_each_kind_of_topic_gets_its_retention() -> None:
    assert topic_config(topics.RAW, stream_days=7, history_days=400) == {
        "cleanup.policy": "delete", "retention.ms": str(7 * DAY)}
    assert topic_config(topics.AGGREGATES, stream_days=7, history_days=400) == {
        "cleanup.policy": "delete", "retention.ms": str(400 * DAY)}
    assert topic_config(topics.REPORTS, stream_days=3, history_days=30)["retention.ms"] == str(
        30 * DAY)
    assert topic_config(topics.INCIDENTS, stream_days=7, history_days=400) == {
        "cleanup.policy": "compact"}


def test_no_topic_a_stage_consumes_is_created_compacted() -> None:
    for spec in topics.ALL:
        if spec.consumed:
            assert topic_config(spec, stream_days=7, history_days=400)[
                "cleanup.policy"] == "delete", spec.name
    # The aggregates are keyed by watch: compaction would keep one bucket per watch.
    assert topics.AGGREGATES.kind == "history"


@pytest.mark.parametrize("policy", ["compact", "compact,delete", "delete,compact"])
def test_a_compacted_input_topic_is_refused_with_how_to_fix_it(policy: str) -> None:
    want = topic_config(topics.RAW, stream_days=7, history_days=400)
    _, refuse = config_differences(topics.RAW, {"cleanup.policy": policy}, want)
    assert refuse is not None and topics.RAW.name in refuse
    assert "cleanup.policy=delete" in refuse and "kafka-configs" in refuse


def test_a_compacted_view_topic_is_reported_not_refused() -> None:
    # Only whole-topic views read it: the latest value per key is all they keep anyway.
    want = topic_config(topics.SILENCES, stream_days=7, history_days=400)
    assert config_differences(topics.SILENCES, {"cleanup.policy": "compact"}, want) == ([], None)
    said, refuse = config_differences(topics.INGESTED, {"cleanup.policy": "compact"},
                                      topic_config(topics.INGESTED, stream_days=7,
                                                   history_days=400))
    assert refuse is None and said and "compact" in said[0]


def test_a_shorter_retention_is_reported_a_longer_one_is_fine() -> None:
    want = topic_config(topics.AGGREGATES, stream_days=7, history_days=400)
    # Kafka's default (7 days) where the broker reports nothing: too short for history.
    said, refuse = config_differences(topics.AGGREGATES, {}, want)
    assert refuse is None and len(said) == 1 and "7.0 days" in said[0] and "400 days" in said[0]
    said, _ = config_differences(topics.AGGREGATES, {"retention.ms": str(399 * DAY)}, want)
    assert said
    assert config_differences(topics.AGGREGATES, {"retention.ms": str(400 * DAY)}, want) == (
        [], None)
    assert config_differences(topics.AGGREGATES, {"retention.ms": "-1"}, want) == ([], None)
    assert config_differences(topics.RAW, {"retention.ms": str(30 * DAY)},
                              topic_config(topics.RAW, stream_days=7, history_days=400)) == (
        [], None)


class _Admin:
    """kafka-python's admin client answering DescribeConfigs as a Kafka broker does."""

    def __init__(self, answer: Any) -> None:
        self.answer = answer

    def describe_configs(self, resources: list[Any], config_filter: str) -> Any:
        assert config_filter == "all"
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def test_described_configs_are_read_in_kafka_pythons_shape() -> None:
    answer = {"topic": {"escucha.mentions.raw": {
        "cleanup.policy": {"value": "compact", "read_only": False},
        "retention.ms": {"value": "604800000"}, "unset.thing": {"value": None}}}}
    got = broker._described(_Admin(answer), ["escucha.mentions.raw"])  # type: ignore[arg-type]
    assert got == {"escucha.mentions.raw": {"cleanup.policy": "compact",
                                            "retention.ms": "604800000"}}
    # Tansu reports no entries: nothing to check.
    assert broker._described(_Admin({"topic": {"t": {}}}), ["t"]) == {  # type: ignore[arg-type]
        "t": {}}
    from kafka.errors import UnsupportedVersionError
    assert broker._described(_Admin(UnsupportedVersionError("no")), ["t"]) == {}  # type: ignore[arg-type]
