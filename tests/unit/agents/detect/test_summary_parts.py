"""Every kind of signal the detectors produce says, through its ``summary_parts``, exactly its
English ``summary`` in English and UTC, and the same facts in Spanish: the two cannot drift."""

from __future__ import annotations

import functools
import re

import pytest

from streams.core.records import Signal
from streams.i18n.summaries import KEYS, render_summary
from tests.unit.agents.detect import test_detectors as td
from tests.unit.agents.detect import test_stories as tst
from tests.unit.agents.detect import test_surge as ts


@functools.cache
def _signals() -> tuple[Signal, ...]:
    """The scenarios of the detector, story and surge tests, one run each (~2 s)."""
    out: list[Signal] = []
    burst, _ = td.negative_burst()
    out += td.feed(td.engine(), td.warm(), burst)  # negative and volume spikes
    out += td.feed(td.engine(), td.warm(negative=0.15),
                   td.Traffic(6).stream(td.START, 60, 6, negative=0.65))  # sentiment shift
    out += td.feed(td.engine(), td.warm(), tst.spike(tst.TEST_SEED, 300))  # a campaign, risk
    gen, eng, state = td.Traffic(7), td.engine(), {}
    at = td.T0 + td.mins(5)
    # Influencers, plain and verified; the text holds braces and a quote: data, not format.
    out += eng.observe(state, gen.one(at, "negative", handle="bigvoice", followers=500_000,
                                      text="acme {ratio} \u201cignored\u201d me"))
    out += eng.observe(state, gen.one(at, "negative", handle="blue_tick", followers=150_000,
                                      verified=True))
    background = gen.stream(td.START, 40, 6)
    tagged = [gen.one(td.START + td.mins(1.5 * i), handle=f"fan{i}",
                      text=f"{td.WATCH} #acmegate {td.WORDS[i % len(td.WORDS)]}")
              for i in range(20)]
    out += td.feed(td.engine(emerging_warmup_min=td.WARM_MIN), td.warm(),
                   td.merged(background, tagged))  # emerging term
    traffic = ts.Stream(3).days(ts.T0, 6, surge=ts.surge_hours(4, 8, 10, 2.5))
    out += ts.run(ts.engine(), traffic)  # a surge that opens and grows
    return tuple(out)


def _kinds() -> dict[str, Signal]:
    """One signal per kind of summary: detector, plus the clauses it carries."""
    kinds: dict[str, Signal] = {}
    for s in _signals():
        kinds.setdefault(" ".join(p.key for p in s.summary_parts), s)
    return kinds


def test_every_detector_and_every_clause_is_covered() -> None:
    from agents.detect.detectors import DETECTORS

    signals = _signals()
    assert {s.detector for s in signals} == set(DETECTORS)
    used = {p.key for s in signals for p in s.summary_parts}
    # A template no detector uses, or a key without a template, fails here.
    assert used == set(KEYS)


@pytest.mark.parametrize("shape", sorted(_kinds()))
def test_english_in_utc_is_the_stored_summary_exactly(shape: str) -> None:
    signal = _kinds()[shape]
    assert signal.summary_parts, signal.detector
    assert render_summary(signal.summary_parts, locale="en", timezone="UTC") == signal.summary


def test_every_signal_renders_its_summary_exactly() -> None:
    for signal in _signals():
        assert render_summary(signal.summary_parts) == signal.summary, signal.detector


def test_spanish_says_the_same_data_in_spanish() -> None:
    for signal in _signals():
        es = render_summary(signal.summary_parts, locale="es", timezone="UTC")
        en = signal.summary
        assert es != en
        # The data from mentions is untouched: handles, terms, story text, the influencer's
        # text with its braces.
        for term in signal.top_terms:
            assert term in es
        for handle in re.findall(r"@[\w.-]+", en):
            assert handle in es
        if signal.largest_story is not None:
            assert " ".join(signal.largest_story.text.split())[:79] in es
        # No English clause left.
        for english in ("top terms:", "top authors:", "mentions in", "stories; the largest",
                        "expected (p=", "posted a negative", "hourly negatives",
                        "campaign: one"):
            assert english not in es, (english, es)
    by: dict[str, str] = {}
    for s in _signals():  # the first of each detector
        by.setdefault(s.detector, render_summary(s.summary_parts, locale="es", timezone="UTC"))
    assert "menciones negativas en 5 min" in by["negative_spike"]
    assert "publicó una mención negativa" in by["influencer"]
    assert "\u201cignored\u201d me" in by["influencer"] and "{ratio}" in by["influencer"]
    assert "500.000 seguidores" in by["influencer"]  # the locale's grouping
    assert "proporción negativa del" in by["sentiment_shift"]
    assert "término nuevo #acmegate" in by["emerging_term"]
    assert "lo normal durante" in by["negative_surge"]


def test_spanish_numbers_and_times_follow_the_locale_and_the_zone() -> None:
    [spike] = [s for s in _signals() if s.detector == "negative_spike"][:1]
    es = render_summary(spike.summary_parts, locale="es", timezone="America/Mexico_City")
    en = spike.summary
    ratio = re.search(r"(\d+)\.(\d)x the expected", en)
    assert ratio is not None and f"{ratio[1]},{ratio[2]}x lo esperado" in es
    window = re.search(r"(\d\d):(\d\d)\u2013(\d\d):(\d\d) UTC", en)
    assert window is not None
    # Mexico City is UTC-6 (no daylight saving since 2022); the zone is named.
    start = (int(window[1]) - 6) % 24
    assert f"{start:02d}:{window[2]}\u2013" in es and " CST" in es and " UTC" not in es
