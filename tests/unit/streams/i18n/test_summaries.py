"""render_summary: numbers as the English f-strings wrote them, the locale's marks, the
reader's zone, data untouched, and a clear error for parts it cannot say."""

from __future__ import annotations

import pytest

from streams.core.records import Incident, Phrase, Signal, parse
from streams.i18n.summaries import SummaryError, render_summary


def _spike(**changes: object) -> Phrase:
    params: dict[str, object] = {"observed": 12, "minutes": 5, "ratio": 1.05, "expected": 0.15,
                                 "p": 1.2e-5, "authors": 9}
    params.update(changes)
    return Phrase.model_validate({"key": "negative_spike", "params": params})


def test_numbers_round_as_python_did_then_take_the_locales_marks() -> None:
    # Babel alone rounds 1.05 to 1.0 and 0.15 to 0.2 (it reads the decimal string); the
    # stored English came from f"{x:.1f}": 1.1 and 0.1.
    part = _spike()
    assert f"{1.05:.1f} {0.15:.1f} {1.2e-5:.1e}" == "1.1 0.1 1.2e-05"
    assert render_summary([part]) == ("12 negative mentions in 5 min, 1.1x the expected 0.1 "
                                      "(p=1.2e-05); 9 authors")
    assert render_summary([part], locale="es") == (
        "12 menciones negativas en 5 min, 1,1x lo esperado (0,1) (p=1,2e-05); 9 autores")


def test_percent_and_grouping() -> None:
    shift = Phrase(key="sentiment_shift", params={
        "share": 0.125, "negative": 1234, "total": 9870, "minutes": 30, "usual": 0.2,
        "p": 3e-9, "volume": 1.0})
    assert render_summary([shift]) == (f"negative share {0.125:.0%} (1234 of 9870) in 30 min "
                                       "vs the usual 20% (p=3.0e-09), at 1.0x usual volume")
    assert "del 12\u00a0% (1234 de 9870)" in render_summary([shift], locale="es")
    big = Phrase(key="influencer", params={"handle": "a", "reach": 1234567, "velocity": 2.5,
                                           "text": "t"})
    assert "(1,234,567 followers)" in render_summary([big])
    assert "(1.234.567 seguidores)" in render_summary([big], locale="es_MX") \
        or "(1,234,567 seguidores)" in render_summary([big], locale="es_MX")
    assert "(1.234.567 seguidores)" in render_summary([big], locale="es")


def test_times_are_in_the_readers_zone_and_name_it() -> None:
    window = Phrase(key="window", params={"start": "2025-03-05T23:55:00+00:00",
                                          "end": "2025-03-06T00:00:00+00:00"})
    assert render_summary([window]) == "23:55\u201300:00 UTC"
    assert render_summary([window], locale="es", timezone="Europe/Madrid") == \
        "00:55\u201301:00 CET"
    hourly = Phrase(key="hourly", params={"starts": ["2025-07-01T08:00:00+00:00"],
                                          "observed": [12.0], "expected": [3.25]})
    assert render_summary([hourly]) == "hourly negatives/expected (UTC): 08h 12/3.2"
    assert render_summary([hourly], locale="es", timezone="Europe/Madrid") == \
        "negativas/esperadas por hora (CEST): 10h 12/3,2"


def test_mention_text_is_data_not_a_format() -> None:
    story = Phrase(key="stories", params={"stories": 3, "text": "{0} {text!r} <!channel>",
                                          "count": 5, "authors": 5, "minutes": 2})
    out = render_summary([story, Phrase(key="campaign")], locale="es")
    assert "«{0} {text!r} <!channel>»" in out
    assert out.endswith("; campaña: una sola historia domina")


@pytest.mark.parametrize("part, why", [
    (Phrase(key="no_such_clause"), "no template"),
    (_spike(ratio="2.0"), "not a number"),
    (_spike(observed=[1, 2]), "not a number"),
    (Phrase(key="emerging_term", params={"term": "x", "count": 3}), "minutes is missing"),
    (Phrase(key="window", params={"start": "yesterday", "end": 0}), "not an ISO time"),
    (Phrase(key="top_authors", params={"handles": ["a", "b"], "counts": [1]}), "differ"),
    (Phrase(key="top_terms", params={"terms": "a, b"}), "a list is needed"),
    (Phrase(key="hourly", params={"starts": [], "observed": [], "expected": []}), "no hours"),
])
def test_parts_it_cannot_say_raise_a_clear_error(part: Phrase, why: str) -> None:
    with pytest.raises(SummaryError, match=why):
        render_summary([part])


def test_a_bad_zone_is_a_summary_error() -> None:
    with pytest.raises(SummaryError, match="time zone"):
        render_summary([Phrase(key="campaign")], timezone="Mars/Olympus")


def test_records_from_before_summary_parts_still_parse() -> None:
    old_signal = (b'{"v":1,"id":"s1","watch_id":"acme","detector":"volume_spike",'
                  b'"severity":"warning","window_start":"2025-03-05T10:00:00Z",'
                  b'"window_end":"2025-03-05T10:05:00Z","observed":30,"expected":5,"score":6,'
                  b'"summary":"30 mentions in 5 min"}')
    signal = parse(Signal, old_signal)
    assert signal.summary_parts == [] and signal.summary == "30 mentions in 5 min"
    old_incident = (b'{"v":1,"id":"acme.1","fingerprint":"f","watch_id":"acme",'
                    b'"detector":"volume_spike","severity":"warning",'
                    b'"opened_at":"2025-03-05T10:05:00Z","updated_at":"2025-03-05T10:05:00Z",'
                    b'"summary":"30 mentions in 5 min"}')
    assert parse(Incident, old_incident).summary_parts == []
    # And the new field survives a round trip, numbers keeping their type.
    again = parse(Signal, signal.model_copy(update={"summary_parts": [_spike()]})
                  .model_dump_json().encode())
    assert again.summary_parts == [_spike()]
    assert isinstance(again.summary_parts[0].params["observed"], int)
    assert isinstance(again.summary_parts[0].params["ratio"], float)


def test_the_stored_english_summaries_read_as_they_always_have() -> None:
    # Detectors store the English rendering of their parts as `summary` (webhook JSON,
    # search, timelines): these are the sentences the f-strings wrote before the parts.
    window = Phrase(key="window", params={"start": "2024-04-29T10:05:00+00:00",
                                          "end": "2024-04-29T10:10:00+00:00"})
    spike = [_spike(), Phrase(key="stories", params={
                 "stories": 41, "text": "Acme charger exploded", "count": 120, "authors": 118,
                 "minutes": 9}),
             Phrase(key="campaign"), window,
             Phrase(key="top_terms", params={"terms": ["charger", "fire"]}),
             Phrase(key="top_authors", params={"handles": ["ana", "bo"], "counts": [2, 1]})]
    assert render_summary(spike) == (
        "12 negative mentions in 5 min, 1.1x the expected 0.1 (p=1.2e-05); 9 authors; "
        "41 stories; the largest, \u2018Acme charger exploded\u2019 \u00d7120 by 118 accounts "
        "in 9 min; campaign: one story dominates; 10:05\u201310:10 UTC; "
        "top terms: charger, fire; top authors: @ana (2), @bo (1)")
    surge = [Phrase(key="surge_start", params={
                 "ratio": 2.5, "lasting_min": 180, "observed": 75.0, "hours": 3,
                 "expected": 30.0, "p": 3e-6, "volume": 1.2}),
             Phrase(key="hourly", params={"starts": ["2024-04-29T09:00:00+00:00",
                                                     "2024-04-29T10:00:00+00:00"],
                                          "observed": [20, 30], "expected": [10.0, 10.5]})]
    assert render_summary(surge) == (
        "negatives running 2.5x normal for 3 h: 75 negative mentions in the last 3 h against "
        "30.0 expected (p=3.0e-06), volume 1.2x; hourly negatives/expected (UTC): "
        "09h 20/10.0, 10h 30/10.5")
    early = Phrase(key="surge_ongoing", params={
        "ratio": 1.9, "lasting_min": 90, "observed": 40.0, "hours": 1, "expected": 21.0,
        "p": 1e-3, "volume": 1.0})
    assert render_summary([early]).startswith("still running 1.9x normal for 90 min: ")
