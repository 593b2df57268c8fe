"""Exports: a CSV cell is never a formula; JSON lines are the enriched topic's records."""

from __future__ import annotations

import csv
import io

import pytest

from agents.store.export import CSV_COLUMNS, csv_header, csv_rows, jsonl_lines, safe_cell
from agents.store.rows import StoredMention
from agents.store.search import Search
from tests.support.store import enriched


@pytest.mark.parametrize(("value", "shown"), [
    ("=1+1", "'=1+1"), ("+33 6 12", "'+33 6 12"), ("-2", "'-2"), ("@SUM(A1)", "'@SUM(A1)"),
    ("\t=cmd", "'\t=cmd"), ("\r=cmd", "'\r=cmd"), ("acme = great", "acme = great"), ("", ""),
])
def test_a_cell_a_spreadsheet_would_run_is_made_text(value: str, shown: str) -> None:
    assert safe_cell(value) == shown


def _stored(em: object, watches: tuple[str, ...]) -> StoredMention:
    return StoredMention.of(id=1, posted_at=0, priority=1, reach=1, watch_ids=watches,
                            record=em.model_dump_json())  # type: ignore[attr-defined]


def test_csv_rows_and_json_lines() -> None:
    em = enriched(7, '=HYPERLINK("http://x") "quoted", and a\nnewline', author="-x",
                  watch="acme", watches=["acme", "globex"])
    stored = _stored(em, ("acme", "globex"))
    rows = list(csv.DictReader(io.StringIO(csv_header() + csv_rows([stored]))))
    assert list(rows[0]) == list(CSV_COLUMNS)
    assert rows[0]["text"] == "'" + em.mention.text
    assert (rows[0]["author"], rows[0]["watch_ids"]) == ("'-x", "acme globex")
    lines = jsonl_lines([stored], Search()).splitlines()
    assert [em.model_validate_json(line).watch_id for line in lines] == ["acme", "globex"]
    only = jsonl_lines([stored], Search(watches=("globex",))).splitlines()
    assert [em.model_validate_json(line) for line in only] == [
        em.model_copy(update={"watch_id": "globex"})]
