"""Exports of a search's whole result: CSV for spreadsheets, JSON lines for ``escucha backtest``.

Both walk the result page by page (key-set paging, :data:`CHUNK` rows a page), so an export
of a million mentions holds one page in memory at a time.

- JSON lines: one enriched mention per line and per watch it belongs to (restricted to the
  watches searched for, when some were): exactly what the enriched topic carried, which is
  the format ``escucha backtest`` reads (agents/detect/backtest.py ``read_jsonl``).
- CSV: one row per mention. Its text is attacker-controlled, and a spreadsheet runs a cell
  that starts with ``=``, ``+``, ``-``, ``@`` (or a tab or carriage return before one) as a
  formula: such a cell gets a leading ``'`` (OWASP's advice for CSV injection).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import replace
from typing import Final

from agents.store.rows import StoredMention
from agents.store.search import Search, decode_cursor
from agents.store.store import MentionStore

__all__ = ["CHUNK", "CSV_COLUMNS", "csv_header", "csv_rows", "jsonl_lines", "pages",
           "safe_cell"]

CHUNK: Final = 1000
CSV_COLUMNS: Final = ("posted_at", "url", "watch_ids", "source", "author", "author_name",
                      "verified", "reach", "language", "sentiment", "priority", "text", "key")
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: str) -> str:
    """A CSV cell a spreadsheet shows as text, never runs as a formula."""
    return "'" + value if value.startswith(_FORMULA) else value


def pages(store: MentionStore, search: Search) -> Iterator[list[StoredMention]]:
    """The whole result of ``search``, a page of :data:`CHUNK` at a time (blocking)."""
    search = replace(search, limit=CHUNK)
    while True:
        page = store.search(search)
        if page.mentions:
            yield page.mentions
        if page.cursor is None:
            return
        search = replace(search, after=decode_cursor(page.cursor, sort=search.sort,
                                                     order=search.order))


def jsonl_lines(mentions: list[StoredMention], search: Search) -> str:
    watches = frozenset(search.watches) if search.watches else None
    lines = [line for m in mentions for line in m.enriched_lines(watches)]
    return "".join(line + "\n" for line in lines)


def csv_header() -> str:
    out = io.StringIO()
    csv.writer(out).writerow(CSV_COLUMNS)
    return out.getvalue()


def csv_rows(mentions: list[StoredMention]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    for m in mentions:
        s = m.summary()
        writer.writerow([safe_cell(str(s[c]) if c != "watch_ids" else " ".join(s[c]))
                         if s[c] is not None else "" for c in CSV_COLUMNS])
    return out.getvalue()
