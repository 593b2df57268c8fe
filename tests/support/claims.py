"""A worker's web app (port 0, no broker needed) with a SQLite store holding mention
``x:1`` (and any ``more`` mentions) and two console responders, ana and ben: what the claim
console tests and the console's story tests stand on."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

from aiohttp.test_utils import TestServer

from agents.store import store_for
from streams.config.settings import Settings
from streams.core.records import EnrichedMention
from streams.web.console.auth import hash_password
from streams.wiring import build_worker
from tests.support.secured import secured_sections
from tests.support.store import enriched

__all__ = ["BEN", "claims_console"]

BEN = ("ben", "ben's long password")


@asynccontextmanager
async def claims_console(tmp_path: Path,
                         more: Sequence[EnrichedMention] = ()) -> AsyncIterator[str]:
    """The base URL (``http://127.0.0.1:<port>``) of the worker's web app."""
    sections = secured_sections(tmp_path, port=6066, bootstrap="127.0.0.1:9")
    sections["console"]["users"].append({"username": BEN[0], "role": "responder",
                                         "password_hash": hash_password(BEN[1])})
    settings = Settings(**sections)
    writer = store_for(settings)
    writer.write([enriched(1, "Acme <b>battery</b> exploded"), *more])
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
