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
