"""The API's search parameters: read, checked, each refusal saying what to send instead."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from agents.store.search import (
    Search,
    SearchError,
    decode_cursor,
    encode_cursor,
    search_from_params,
)


def test_every_parameter_is_read() -> None:
    s = search_from_params({
        "q": ['"battery" AND lang:es -author:acmesupport'], "watch": ["acme,globex"],
        "since": ["2026-03-01T09:00:00Z"], "until": ["2026-03-02T09:00:00+01:00"],
        "sentiment": ["Negative"], "lang": ["ES", "fr"], "source": ["x"],
        "min_priority": ["50"], "verified": ["true"], "sort": ["reach"], "order": ["asc"],
        "limit": ["20"]})
    assert s.query is not None
    assert s.watches == ("acme", "globex")
    assert s.since == datetime(2026, 3, 1, 9, tzinfo=UTC)
    assert s.until == datetime(2026, 3, 2, 8, tzinfo=UTC)
    assert (s.sentiments, s.languages, s.sources) == (("negative",), ("es", "fr"), ("x",))
    assert (s.min_priority, s.verified, s.sort, s.order, s.limit) == (50, True, "reach",
                                                                      "asc", 20)
    assert search_from_params({}) == Search()


@pytest.mark.parametrize(("params", "says"), [
    ({"q": ["acme AND"]}, "q: the query ends too early"),
    ({"q": ["colour:red"]}, "unknown field 'colour'"),
    ({"watch": ["Acme Corp"]}, "watch: a watch id"),
    ({"sentiment": ["angry"]}, "sentiment: 'angry' is not one of"),
    ({"lang": ["es' OR 1=1"]}, "lang: letters, digits"),
    ({"since": ["yesterday"]}, "since: 'yesterday' is not a time"),
    ({"since": ["2026-03-02"], "until": ["2026-03-01"]}, "until: must be after since"),
    ({"min_priority": ["101"]}, "min_priority: use 0 to 100"),
    ({"verified": ["maybe"]}, "verified: use true or false"),
    ({"sort": ["random"]}, "sort: use one of time, priority, reach"),
    ({"order": ["up"]}, "order: use desc"),
    ({"limit": ["0"]}, "limit: use 1 to 500"),
    ({"limit": ["5", "6"]}, "limit: give it once"),
    ({"cursor": ["%%%"]}, "cursor: not a cursor"),
    ({"page": ["2"]}, "unknown parameter(s) page"),
    ({"lang": ["x"] * 51}, "lang: at most 50 values"),
])
def test_bad_parameters_are_refused_with_what_to_send(params: dict[str, list[str]],
                                                      says: str) -> None:
    with pytest.raises(SearchError, match=None) as caught:
        search_from_params(params)
    assert says in str(caught.value)


def test_a_cursor_is_bound_to_its_sort_and_holds_integers_only() -> None:
    s = Search(sort="priority")
    cursor = encode_cursor(s, [50, 1_767_225_600_000, 42])
    assert decode_cursor(cursor, sort="priority", order="desc") == (50, 1_767_225_600_000, 42)
    for sort, order in (("time", "desc"), ("priority", "asc")):
        with pytest.raises(SearchError, match="another sort or order"):
            decode_cursor(cursor, sort=sort, order=order)  # type: ignore[arg-type]
    forged = encode_cursor(s, [1, 2, "3); DROP TABLE mentions"])  # type: ignore[list-item]
    with pytest.raises(SearchError):
        decode_cursor(forged, sort="priority", order="desc")


def test_a_watch_not_configured_is_refused_only_when_asked() -> None:
    assert search_from_params({"watch": ["old"]}).watches == ("old",)
    with pytest.raises(SearchError, match="no watch 'old'; configured: acme"):
        search_from_params({"watch": ["old"]}, watch_ids=["acme"])
