"""``model:``: the bundled model's cache follows the datadir; runtimes are checked at load."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.config.base import ConfigError
from streams.config.settings import Settings, load_settings


def test_cache_dir_defaults_to_the_datadir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ESCUCHA_MODEL__CACHE_DIR", raising=False)
    assert Settings(datadir=Path("/srv/escucha")).model.cache_dir == Path("/srv/escucha/models")
    assert Settings().model.cache_dir == Path("var/models")
    chosen = load_settings(None, model={"cache_dir": "/cache/e5"}, datadir="/srv/x")
    assert chosen.model.cache_dir == Path("/cache/e5")


def test_runtime_is_one_of_the_known_ones() -> None:
    assert Settings().model.runtime == "auto" and Settings().model.name == "bundled"
    with pytest.raises(ConfigError, match=r"model\.runtime"):
        load_settings(None, model={"runtime": "cuda"})
    assert load_settings(None, model={"runtime": "onnx"}).model.runtime == "onnx"


def test_isolation_is_one_of_three_and_reported_with_its_path() -> None:
    assert Settings().model.isolation == "process"
    assert load_settings(None, model={"isolation": "thread"}).model.isolation == "thread"
    with pytest.raises(ConfigError, match=r"model\.isolation"):
        load_settings(None, model={"isolation": "gpu"})


def test_the_worker_loads_the_model_where_isolation_says(monkeypatch: pytest.MonkeyPatch
                                                         ) -> None:
    from agents.classify import classifier
    from models.cache import CachedModel
    from models.isolated import ProcessModel
    from tests.fakes.model import KeywordModel, keyword_model

    monkeypatch.setattr(classifier, "load_model", lambda **_: KeywordModel())
    cfg = load_settings(None, model={"isolation": "thread"}).model
    assert isinstance(classifier.model_for(cfg), KeywordModel)
    # In a process: the child builds the model (with no cache of its own), the cache stays
    # in the worker so a repost never crosses the pipe.
    calls: list[dict[str, object]] = []

    def spawn(*, factory: object, kwargs: dict[str, object],
              batch_timeout_s: float) -> ProcessModel:
        calls.append(kwargs | {"batch_timeout_s": batch_timeout_s})
        return ProcessModel(factory=keyword_model, kwargs={})

    monkeypatch.setattr("models.isolated.ProcessModel", spawn)
    cfg = load_settings(None, model={"isolation": "process", "cache_size": 10,
                                     "batch_timeout_s": 7}).model
    model = classifier.model_for(cfg)
    try:
        assert isinstance(model, CachedModel) and model.max_entries == 10
        assert calls[0]["cache_size"] == 0 and calls[0]["runtime"] == "auto"
        assert calls[0]["batch_timeout_s"] == 7
        assert [p.label for p in model.predict(["I love it"])] == ["positive"]
    finally:
        model.model.close()  # type: ignore[attr-defined]
