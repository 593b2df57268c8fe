"""The model in its own process: same answers, a death mid-batch loses nothing and is said."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from agents.classify.classifier import Classifier, enrich_in_batches
from agents.classify.matching import WatchMatcher
from models.isolated import ModelProcessError, ProcessModel
from streams.config.settings import Watch
from streams.core.records import Author, Mention
from tests.fakes.model import KeywordModel, keyword_model, refuse_to_load

TEXTS = ["Acme is awful", "I love Acme", "Acme opens at nine", ""]


def test_answers_equal_the_same_model_in_process() -> None:
    model = ProcessModel(factory=keyword_model, kwargs={})
    try:
        got = model.predict(TEXTS)
        want = KeywordModel().predict(TEXTS)
        assert [p.label for p in got] == [p.label for p in want]
        assert [p.scores for p in got] == [p.scores for p in want]
        assert model.model_id == "test/keywords" and model.model_version == "1"
        assert all(p.model_version == f"1@{model.pid}" for p in got)  # answered by the child
        assert model.pid != os.getpid()
        assert model.predict([]) == []
    finally:
        model.close()


def test_killed_mid_batch_it_restarts_and_the_batch_is_answered_once(
        caplog: pytest.LogCaptureFixture) -> None:
    model = ProcessModel(factory=keyword_model, kwargs={"delay_s": 1.0})
    first = model.pid
    assert first is not None
    got: list[object] = []
    call = threading.Thread(target=lambda: got.append(model.predict(TEXTS)))
    try:
        with caplog.at_level(logging.ERROR, logger="models.isolated"):
            call.start()
            time.sleep(0.3)  # the child is inside the batch
            os.kill(first, signal.SIGKILL)
            call.join(30)
        assert len(got) == 1 and [p.label for p in got[0]] == [  # type: ignore[attr-defined]
            "negative", "positive", "neutral", "neutral"]
        assert model.restarts == 1 and model.pid not in (None, first)
        said = caplog.text
        assert f"pid {first}" in said and "exit code -9" in said and "again" in said
    finally:
        model.close()


def test_a_batch_that_kills_it_twice_raises_and_the_next_batch_still_works() -> None:
    model = ProcessModel(factory=keyword_model, kwargs={"die_on": "poison"})
    try:
        with pytest.raises(ModelProcessError, match=r"died twice.*unacknowledged"):
            model.predict(["fine", "poison pill"])
        assert model.restarts == 2
        assert [p.label for p in model.predict(["I love it"])] == ["positive"]
    finally:
        model.close()


def test_a_hung_model_process_is_killed_restarted_and_the_batch_sent_again_once(
        caplog: pytest.LogCaptureFixture) -> None:
    model = ProcessModel(factory=keyword_model, kwargs={"hang_on": "stuck"},
                             batch_timeout_s=1.5)
    try:
        first = model.pid
        with (caplog.at_level(logging.ERROR, logger="models.isolated"),
              pytest.raises(ModelProcessError, match=r"died twice.*no answer in 1.5s")):
            model.predict(["fine", "stuck forever"])
        assert model.restarts == 2 and model.pid is None
        said = caplog.text
        assert f"pid {first}" in said and "hung and was killed" in said
        # The next batch gets a new child and its answers.
        assert [p.label for p in model.predict(["I love it"])] == ["positive"]
    finally:
        model.close()


def test_a_slow_batch_within_the_timeout_is_not_taken_for_hung() -> None:
    model = ProcessModel(factory=keyword_model, kwargs={"delay_s": 1.0}, batch_timeout_s=3.0)
    try:
        assert [p.label for p in model.predict(["I love it"])] == ["positive"]
        assert model.restarts == 0
    finally:
        model.close()


def test_a_restart_that_fails_is_tried_again_on_the_next_batch(tmp_path: Path) -> None:
    flag = tmp_path / "broken"
    model = ProcessModel(factory=keyword_model, kwargs={"refuse_while": str(flag)})
    try:
        flag.touch()
        pid = model.pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        with pytest.raises(ModelProcessError, match="weights unreadable"):
            model.predict(["I love it"])
        flag.unlink()  # the weights are back
        assert [p.label for p in model.predict(["I love it"])] == ["positive"]
    finally:
        model.close()


def test_a_model_that_cannot_load_says_why() -> None:
    with pytest.raises(ModelProcessError, match="FileNotFoundError: no weights at /nowhere"):
        ProcessModel(factory=refuse_to_load, kwargs={})


def _mention(i: int) -> Mention:
    return Mention(source="t", id=str(i), author=Author(handle=f"u{i}"),
                   text=f"Acme is {'awful' if i % 3 else 'great'} #{i}",
                   created_at=datetime(2026, 1, 1, tzinfo=UTC))


def test_the_classify_stage_enriches_every_mention_exactly_once_across_a_kill() -> None:
    model = ProcessModel(factory=keyword_model, kwargs={"delay_s": 0.05})
    clf = Classifier(matcher=WatchMatcher([Watch(id="acme", name="Acme", terms=["acme"])]),
                     model=model)
    mentions = [_mention(i) for i in range(200)]
    out: list[str] = []
    pids: set[str] = set()
    try:
        for n, batch in enumerate(enrich_in_batches(clf, mentions, batch_size=16)):
            out += [e.mention.id for e in batch]
            pids |= {e.model.version for e in batch}
            if n == 3:  # between calls and during one: the next batch must survive both
                pid = model.pid
                assert pid is not None
                threading.Timer(0.02, os.kill, (pid, signal.SIGKILL)).start()
    finally:
        model.close()
    assert Counter(out) == Counter(m.id for m in mentions)  # each once, none missing
    assert model.restarts == 1 and len(pids) == 2
