"""A watch's detection state stays one broker record (< 1 MB) at any volume: each growing part
has a bound, and a last guard trims explanations, never counts, before a save."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from agents.detect import bounds, detectors
from agents.detect.bounds import BUDGET, fit_state, state_size
from agents.detect.stage import DetectStage
from agents.detect.surge import SurgeDetector
from streams.config.settings import DetectSettings
from tests.unit.agents.detect.test_detectors import T0, WATCH, Traffic, engine, feed


def _busy(n_minutes: float = 5, rate: float = 100) -> tuple[dict[str, Any], list[Any]]:
    mentions = Traffic(7).stream(T0, n_minutes, rate)
    state: dict[str, Any] = {}
    feed(engine(), state, mentions)
    return state, mentions


def test_mention_identities_are_bounded_newest_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(detectors, "MAX_IDS", 200)
    state, mentions = _busy()
    assert len(mentions) > 400 and len(state["ids"]) == 200
    eng = engine()
    feed(eng, state, [mentions[-1]])  # a re-read of a recent mention: still recognised
    assert eng.duplicates == 1
    feed(eng, state, [mentions[0]])  # of the oldest: the documented trade, counted again
    assert eng.duplicates == 1


def test_the_identity_bound_leaves_most_of_a_record_for_the_rest() -> None:
    state, _ = _busy()
    per_id = len(json.dumps(state["ids"])) / len(state["ids"])
    assert detectors.MAX_IDS * per_id < BUDGET / 2
    assert state_size(state) < BUDGET  # an ordinary busy state needs no trimming
    assert fit_state(state)[2] == []


def test_hour_authors_are_bounded_and_every_negative_still_counts() -> None:
    surge = SurgeDetector(DetectSettings())
    st: dict[str, Any] = {}
    at = T0.timestamp()
    for i in range(4000):
        surge.add(st, at + i / 10, negative=True, author=f"voice{i}")
    for _ in range(5):  # an author already tracked: capped at three an hour
        surge.add(st, at + 500, negative=True, author="voice1")
    hour = str(int(at // 3600))
    assert len(st["hr"]["au"][hour]) == 3000
    assert st["hr"]["c"][hour] == [4005, 4000 + 2]


def _storm_minutes(st: dict[str, Any]) -> None:
    """Thirty minutes of thirty stories with 500 accounts each: more than any bound foresaw."""
    for minute in range(30):
        st.setdefault("sy", {})[str(minute)] = {
            f"s{minute}-{k}": [500, 400, [f"account{minute}-{k}-{a}" for a in range(500)],
                               0.0, 60.0] for k in range(30)}


def test_fit_state_trims_explanations_in_order_and_never_counts() -> None:
    state, _ = _busy()
    _storm_minutes(state)
    counts = json.dumps(state["m"])
    before, after, taken = fit_state(state)
    assert before > BUDGET >= after == state_size(state)
    assert taken[0] == "story authors"
    assert json.dumps(state["m"]) == counts
    assert all(len(row[2]) <= 20 for rows in state["sy"].values() for row in rows.values())


def test_fit_state_goes_as_far_as_it_must() -> None:
    state, _ = _busy(20, 100)  # twenty minutes: explanations older than five to drop
    _storm_minutes(state)
    small = state_size(state) // 60
    _, after, taken = fit_state(state, budget=small)
    assert after <= small
    assert taken[-1] == "older explanations" and set(taken) <= {n for n, _ in bounds._STEPS}
    assert all(len(state[k]) <= 5 for k in ("sy", "s", "a") if k in state)


def test_the_stage_trims_before_it_saves_and_says_so(caplog: pytest.LogCaptureFixture) -> None:
    _, mentions = _busy(2, 150)
    probe: dict[str, Any] = {}
    feed(engine(), probe, mentions)
    budget = state_size(probe) - 2000  # fits once the older identities are halved
    trimmed: list[str] = []
    table: dict[str, Any] = {WATCH: {}}
    stage = DetectStage(detectors={WATCH: engine()}, table=table, save_every_s=3600,
                        on_trim=trimmed.append, budget=budget)
    for i, em in enumerate(mentions):
        stage.observe(em, topic="enriched", partition=0, offset=i)
    with caplog.at_level(logging.WARNING, logger="agents.detect.stage"):
        stage.save(WATCH)
    assert trimmed == [WATCH]
    assert state_size(table[WATCH]) <= budget
    assert "trimmed" in caplog.text and WATCH in caplog.text


def test_the_budget_leaves_room_under_the_producers_record_limit() -> None:
    from streams.config.settings import Settings, Watch
    from streams.wiring import build_worker

    settings = Settings(watches=[Watch(id=WATCH, name="Acme", terms=["acme"])],
                        kafka={"bootstrap": "127.0.0.1:9"})  # type: ignore[arg-type]
    app = build_worker(settings, bootstrap="127.0.0.1:9", install_agents=False).app
    # The key, headers and the batch's framing ride along; JSON measured with spaces is
    # already larger than what the changelog writes.
    assert 0.85 * app.conf.producer_max_request_size >= BUDGET
