"""The simulator: deterministic, ordered, Poisson-ish volumes, crises that show in the counts."""

from __future__ import annotations

import re
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from streams.connectors import _sim_texts
from streams.connectors.simulate import (
    LANGUAGES,
    TOPICS,
    Crisis,
    SimBrand,
    SimTruth,
    demo_scenario,
    simulate,
    simulate_labelled,
)
from streams.core.records import Mention

START = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
ACME = SimBrand(name="Acme", terms=("Acme", "AcmePhone"))
GLOBEX = SimBrand(name="Globex", terms=("Globex", "GlobexPay"))


def _labelled(
    *, minutes: float = 60, rate: float = 30, crises: tuple[Crisis, ...] = (), seed: int = 7,
    languages: tuple[str, ...] = LANGUAGES,
) -> list[tuple[Mention, SimTruth]]:
    return list(simulate_labelled(brands=[ACME, GLOBEX], start=START,
                                  duration=timedelta(minutes=minutes), rate_per_min=rate,
                                  crises=crises, seed=seed, languages=languages))


def _in(m: Mention, start_min: float, end_min: float) -> bool:
    return START + timedelta(minutes=start_min) <= m.created_at < START + timedelta(minutes=end_min)


def test_same_seed_same_mentions_other_seed_other_mentions() -> None:
    def run(seed: int) -> list[dict[str, object]]:
        return [m.model_dump() for m in simulate(brands=[ACME, GLOBEX], start=START, seed=seed,
                                                 duration=timedelta(minutes=10), rate_per_min=20)]

    first = run(3)
    assert first == run(3)
    assert first != run(4)
    assert len(first) > 100


def test_mentions_are_in_event_time_order_within_the_run() -> None:
    mentions = [m for m, _ in _labelled(minutes=30)]
    times = [m.created_at for m in mentions]
    assert times == sorted(times)
    assert times[0] >= START and times[-1] < START + timedelta(minutes=30)
    assert all(t.tzinfo is not None for t in times)


def test_records_are_well_formed_and_ids_unique() -> None:
    mentions = [m for m, _ in _labelled(minutes=20, seed=11)]
    assert len({m.id for m in mentions}) == len(mentions)
    assert mentions[0].id == "sim-11-0"
    for m in mentions:
        assert m.source == "simulate"
        assert re.fullmatch(r"sim-11-\d+", m.id)
        assert m.url == f"https://social.example/@{m.author.handle}/{m.id}"
        assert m.language in LANGUAGES
        assert m.text.strip()


def test_every_mention_names_its_brand() -> None:
    for m, truth in _labelled(minutes=20, crises=(
            Crisis(brand="Acme", start=timedelta(minutes=5), duration=timedelta(minutes=5)),)):
        brand = ACME if truth.brand == "Acme" else GLOBEX
        assert any(term in m.text for term in brand.terms), m.text


def test_volume_per_brand_roughly_matches_the_rate() -> None:
    per_brand = Counter(truth.brand for _, truth in _labelled(minutes=60, rate=60))
    # 3600 expected per brand; a Poisson count's sd is 60, so 10% is six sd.
    for brand in ("Acme", "Globex"):
        assert 3240 <= per_brand[brand] <= 3960, per_brand


def test_crisis_raises_volume_and_negative_share_in_its_window_only() -> None:
    crisis = Crisis(brand="Acme", start=timedelta(minutes=20), duration=timedelta(minutes=10),
                    multiplier=6.0, negative_share=0.85, topic="outage")
    out = _labelled(minutes=40, rate=30, crises=(crisis,))

    def window(brand: str, lo: float, hi: float) -> list[tuple[Mention, SimTruth]]:
        return [(m, t) for m, t in out if t.brand == brand and _in(m, lo, hi)]

    before, during = window("Acme", 0, 10), window("Acme", 20, 30)
    assert 4.5 <= len(during) / len(before) <= 7.5
    neg_before = sum(t.sentiment == "negative" for _, t in before) / len(before)
    neg_during = sum(t.sentiment == "negative" for _, t in during) / len(during)
    assert 0.08 <= neg_before <= 0.28
    assert 0.78 <= neg_during <= 0.92
    assert all(t.crisis == "outage" for _, t in during)
    assert not any(t.crisis for m, t in out if not _in(m, 20, 30))
    # The crisis hashtag shows up in the angry texts, where a risk-term detector looks.
    tagged = sum(bool(re.search(r"#Acme(Down|Outage)", m.text)) for m, _ in during)
    assert tagged > len(during) / 3
    # The other brand carries on as before.
    globex_ratio = len(window("Globex", 20, 30)) / len(window("Globex", 0, 10))
    assert 0.6 <= globex_ratio <= 1.5


def test_baseline_mixes_all_three_sentiments_with_about_one_in_six_negative() -> None:
    counts = Counter(t.sentiment for _, t in _labelled(minutes=60, rate=30))
    total = sum(counts.values())
    assert counts["positive"] > total * 0.25 and counts["neutral"] > total * 0.35
    assert 0.13 <= counts["negative"] / total <= 0.21


def test_languages_vary_and_can_be_restricted() -> None:
    langs = Counter(m.language for m, _ in _labelled(minutes=30))
    assert set(langs) == set(LANGUAGES) == {"en", "es", "fr", "de", "pt", "it"}
    assert langs["en"] == max(langs.values())
    only_german = _labelled(minutes=5, languages=("de",))
    assert {m.language for m, _ in only_german} == {"de"}


def test_texts_are_varied() -> None:
    texts = [m.text for m, _ in _labelled(minutes=30)]
    assert len(set(texts)) > len(texts) * 0.6


def test_every_topic_has_templates_in_every_language_and_they_name_the_brand() -> None:
    for table in (_sim_texts.CRISIS_NEGATIVE, _sim_texts.CRISIS_NEUTRAL):
        assert set(table) == set(TOPICS)
        for per_lang in table.values():
            assert set(per_lang) == set(LANGUAGES)
            assert all("{b}" in tpl for tpls in per_lang.values() for tpl in tpls)
    for per_sentiment in _sim_texts.BASELINE.values():
        assert all(len(tpls) >= 6 and all("{b}" in tpl for tpl in tpls)
                   for tpls in per_sentiment.values())


def _template_regex(template: str) -> re.Pattern[str]:
    body = re.escape(template)
    for placeholder in ("b", "at", "tag", "friend", "n"):
        body = body.replace(re.escape("{" + placeholder + "}"), ".*?")
    # The simulator may make it a reply (leading @handle) and append an emoji.
    return re.compile(rf"(?:@\S+ )?{body}(?: \S+)?")


@pytest.mark.parametrize("topic", TOPICS)
def test_each_crisis_topic_produces_negative_topical_texts(topic: str) -> None:
    crisis = Crisis(brand="Acme", start=timedelta(0), duration=timedelta(minutes=5),
                    topic=topic, negative_share=1.0)
    out = _labelled(minutes=5, rate=40, crises=(crisis,))
    angry = [m for m, t in out if t.brand == "Acme"]
    assert all(t.sentiment == "negative" and t.crisis == topic for _, t in out
               if t.brand == "Acme")
    patterns = [_template_regex(tpl) for tpls in _sim_texts.CRISIS_NEGATIVE[topic].values()
                for tpl in tpls]
    assert len(angry) > 100
    for m in angry:
        assert any(p.fullmatch(m.text) for p in patterns), m.text


def test_authors_have_heavy_tailed_followers_and_some_are_verified() -> None:
    authors = {m.author.handle: m.author for m, _ in _labelled(minutes=120, rate=60)}
    followers = [a.followers for a in authors.values()]
    assert sum(f < 1000 for f in followers) > 0.75 * len(followers)
    assert any(f > 100_000 for f in followers)
    assert any(a.verified for a in authors.values())
    assert all(a.name for a in authors.values())


def test_engagement_is_plausible() -> None:
    mentions = [m for m, _ in _labelled(minutes=30)]
    assert all(m.engagement.shares <= max(m.engagement.likes, 1) for m in mentions)
    assert any(m.engagement.likes > 0 for m in mentions)
    assert max(m.engagement.likes for m in mentions) < 1_000_000


def test_demo_scenario_has_two_brands_and_a_crisis_on_the_first_when_asked() -> None:
    brands, crises = demo_scenario(crisis_at=timedelta(minutes=2))
    assert [b.name for b in brands] == ["Acme", "Globex"]
    assert len(crises) == 1 and crises[0].brand == brands[0].name
    assert crises[0].start == timedelta(minutes=2)
    out = list(simulate_labelled(brands=brands, start=START, duration=timedelta(minutes=5),
                                 rate_per_min=30, crises=crises))
    assert any(t.crisis for _, t in out)


def test_zero_rate_and_zero_duration_give_nothing() -> None:
    assert list(simulate(brands=[ACME], start=START, duration=timedelta(0), rate_per_min=10)) == []
    assert list(simulate(brands=[ACME], start=START, duration=timedelta(hours=1),
                         rate_per_min=0)) == []


def test_naive_start_is_taken_as_utc() -> None:
    first = next(simulate(brands=[ACME], start=datetime(2024, 5, 1, 12), rate_per_min=60,
                          duration=timedelta(minutes=5)))
    assert first.created_at.tzinfo is not None and first.created_at >= START


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"crises": [Crisis(brand="Nope", start=timedelta(0), duration=timedelta(1))]}, "Nope"),
        ({"languages": ("en", "xx")}, "xx"),
        ({"languages": ()}, "languages"),
        ({"rate_per_min": -1.0}, "rate_per_min"),
        ({"brands": []}, "brand"),
        ({"brands": [ACME, ACME]}, "unique"),
    ],
)
def test_bad_arguments_fail_at_call_time(kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {"brands": [ACME], "start": START,
                               "duration": timedelta(minutes=1), "rate_per_min": 1.0}
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        simulate(**args)  # type: ignore[arg-type]


def test_bad_records_fail_at_construction() -> None:
    with pytest.raises(ValueError, match="topic"):
        Crisis(brand="Acme", start=timedelta(0), duration=timedelta(minutes=1), topic="aliens")
    with pytest.raises(ValueError, match="negative_share"):
        Crisis(brand="Acme", start=timedelta(0), duration=timedelta(minutes=1),
               negative_share=1.5)
    with pytest.raises(ValueError, match="term"):
        SimBrand(name="Acme", terms=())
    # Topic spellings people type on a command line are accepted.
    assert Crisis(brand="Acme", start=timedelta(0), duration=timedelta(1), topic="data_breach")


def test_brand_names_become_handles_and_hashtags_whatever_their_script() -> None:
    crisis = Crisis(brand="Café Olé!", start=timedelta(0), duration=timedelta(minutes=5),
                    negative_share=1.0)
    brands = [SimBrand(name="Café Olé!", terms=("Café Olé",)),
              SimBrand(name="ソニー", terms=("ソニー",)), SimBrand(name="!!!", terms=("x{y}",))]
    out = list(simulate(brands=brands, start=START, duration=timedelta(minutes=5),
                        rate_per_min=60, crises=[crisis], languages=("en",)))
    texts = " ".join(m.text for m in out)
    assert "#CafeOle" in texts and "@CafeOleSupport" in texts
    assert "@ソニーSupport" in texts and "x{y}" in texts  # braces in terms are left alone
