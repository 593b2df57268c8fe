"""``store:``: where the mention store lives, its retention, each problem named with its path."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from streams.config.settings import ConfigError, load_settings

WATCHES = [{"id": "acme", "name": "Acme", "terms": ["acme"]}]


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("ESCUCHA_"):
            monkeypatch.delenv(name)


def _load(**store: object) -> object:
    return load_settings(None, store=store, watches=WATCHES, datadir="/srv/escucha")


def test_by_default_a_sqlite_file_in_the_datadir() -> None:
    cfg = load_settings(None, datadir="/srv/escucha").store
    assert cfg.enabled and cfg.retention_days == 90
    assert (cfg.story_seed_hours, cfg.story_seed_max) == (6.0, 20_000)
    assert cfg.sqlite_path(Path("/srv/escucha")) == Path("/srv/escucha/store/mentions.sqlite3")
    assert cfg.postgres_url() is None


def test_postgresql_and_sqlite_urls() -> None:
    url = "postgresql://escucha:pw@db.internal:5432/escucha"
    cfg = _load(url=url).store  # type: ignore[attr-defined]
    assert cfg.postgres_url() == url and cfg.sqlite_path(Path("/x")) is None
    assert _load(url="sqlite:////var/lib/m.db").store.sqlite_path(  # type: ignore[attr-defined]
        Path("/x")) == Path("/var/lib/m.db")
    assert _load(url="sqlite:///rel/m.db").store.sqlite_path(  # type: ignore[attr-defined]
        Path("/x")) == Path("rel/m.db")


def test_every_problem_at_once_and_never_the_url_itself() -> None:
    with pytest.raises(ConfigError) as caught:
        _load(url="mysql://root:hunter2-secret@db/escucha", retention_days=0,
              watch_retention_days={"Acme!": 10, "acme": 0}, batch_size=0,
              story_seed_hours=25, story_seed_max=-1)
    text = str(caught.value)
    for path in ("store.url: Value error, unsupported scheme 'mysql'",
                 "store.retention_days", "store.batch_size", "store.story_seed_hours",
                 "store.story_seed_max",
                 "store.watch_retention_days: Value error, 'Acme!': not a watch id; "
                 "'acme': 0 days"):
        assert path.replace("Value error, ", "") in text, text
    assert "hunter2-secret" not in text


@pytest.mark.parametrize(("url", "says"), [
    ("postgresql:///escucha", "needs a host"),
    ("sqlite://", "needs a file path"),
    ("not a url at all", "unsupported scheme ''"),
])
def test_incomplete_urls_are_refused(url: str, says: str) -> None:
    with pytest.raises(ConfigError, match=says):
        _load(url=url)


def test_a_retention_for_a_watch_that_does_not_exist_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"store.watch_retention_days.globex: no watch with "
                                          r"id 'globex' \(configured: acme\)"):
        _load(watch_retention_days={"acme": 365, "globex": 30})
