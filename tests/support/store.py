"""Enriched mentions made to measure, and the mention store on both of its backends.

``store`` is parametrised: every test that takes it runs once on a real SQLite file and once
on a real PostgreSQL database (tests/support/postgres.py), with the same assertions. A test
module that uses it imports ``postgres_server`` and ``postgres_url`` too, so pytest finds them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from agents.store import store_for
from agents.store.backends import DatabaseBackend, PostgresBackend, SqliteBackend
from agents.store.store import MentionStore
from streams.core.records import (
    Author,
    Engagement,
    EnrichedMention,
    Mention,
    ModelInfo,
    Sentiment,
)

__all__ = ["BACKENDS", "T0", "backend_for", "enriched", "store", "web_over_store"]

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
BACKENDS = ("sqlite", "postgresql")


def enriched(n: int | str, text: str, *, watch: str = "acme", watches: list[str] | None = None,
             lang: str | None = "en", author: str = "someone", source: str = "x",
             sentiment: str = "neutral", priority: int = 10, followers: int = 100,
             verified: bool = False, minutes: float = 0, url: str | None = "",
             **mention: Any) -> EnrichedMention:
    """Mention ``<source>:<n>`` posted ``minutes`` after :data:`T0`, enriched for ``watch``."""
    m = Mention(source=source, id=str(n),
                url=f"https://example.com/{source}/{n}" if url == "" else url,
                author=Author(handle=author, followers=followers, verified=verified),
                text=text, language=lang, created_at=T0 + timedelta(minutes=minutes),
                engagement=Engagement(likes=3), **mention)
    return EnrichedMention(
        mention=m, watch_id=watch, watch_ids=watches or [watch],
        sentiment=Sentiment(label=sentiment, scores={sentiment: 0.9}),  # type: ignore[arg-type]
        priority=priority, reasons=["test"], model=ModelInfo(id="test", version="1"),
        classified_at=T0 + timedelta(minutes=minutes, seconds=1))


def backend_for(kind: str, request: pytest.FixtureRequest, tmp_path: Path,
                **sqlite: Any) -> DatabaseBackend:
    if kind == "sqlite":
        return SqliteBackend(tmp_path / "store" / "mentions.sqlite3", **sqlite)
    return PostgresBackend(request.getfixturevalue("postgres_url"))


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MentionStore]:
    """An empty, opened store on each backend in turn."""
    s = MentionStore(backend_for(request.param, request, tmp_path))
    s.open()
    try:
        yield s
    finally:
        s.close()


@asynccontextmanager
async def web_over_store(settings: Any, mentions: Iterable[EnrichedMention]) -> AsyncIterator[str]:
    """The worker's web app (``http://127.0.0.1:<port>``) over its configured store, holding
    ``mentions``: what the API, console and claim tests run against."""
    from streams.wiring import build_worker  # the whole worker: only for the tests that serve it

    writer = store_for(settings)
    writer.write(list(mentions))
    writer.close()
    pipeline = build_worker(settings, bootstrap="127.0.0.1:9")
    web = pipeline.app.web
    web.init_server()
    server = TestServer(web.web_app, host="127.0.0.1", port=0)
    await server.start_server()
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        await server.close()
