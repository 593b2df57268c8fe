"""A worker's web app (port 0, no broker needed) with a SQLite store holding mention
``x:1`` (and any ``more`` mentions) and two console responders, ana and ben: what the claim
console tests and the console's story tests stand on."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

from streams.config.settings import Settings
from streams.core.records import EnrichedMention
from streams.web.console.auth import hash_password
from tests.support.secured import secured_sections
from tests.support.store import enriched, web_over_store

__all__ = ["BEN", "claims_console"]

BEN = ("ben", "ben's long password")


@asynccontextmanager
async def claims_console(tmp_path: Path,
                         more: Sequence[EnrichedMention] = ()) -> AsyncIterator[str]:
    """The base URL (``http://127.0.0.1:<port>``) of the worker's web app."""
    sections = secured_sections(tmp_path, port=6066, bootstrap="127.0.0.1:9")
    sections["console"]["users"].append({"username": BEN[0], "role": "responder",
                                         "password_hash": hash_password(BEN[1])})
    async with web_over_store(Settings(**sections),
                              [enriched(1, "Acme <b>battery</b> exploded"), *more]) as base:
        yield base
