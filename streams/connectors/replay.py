"""Read a history file (JSON lines or CSV) as mentions, one :class:`BadLine` per bad record.

A history export is untrusted input: one malformed line, a stray Latin-1 byte or a row with an
impossible date must cost that line only. So the file is read as bytes, decoded line by line,
and every record goes through :func:`streams.core.records.parse`; what fails comes out as a
:class:`BadLine` with its line number and the validator's reason, ready for the dead-letter
topic, and reading carries on. Problems with the *file* (missing, unknown format, a column
map that does not fit its header) raise :class:`ReplayError` before the first record.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Final, Literal

from streams.core.records import Mention, RecordError, parse

__all__ = ["FIELD_PATHS", "BadLine", "ReplayError", "parse_column_map", "read_file"]

Format = Literal["jsonl", "csv"]

#: Mention fields a CSV column can feed, as dotted paths into the record.
FIELD_PATHS: Final[tuple[str, ...]] = (
    "id", "text", "created_at", "url", "language", "source",
    "author.handle", "author.name", "author.followers", "author.verified",
    "engagement.likes", "engagement.shares", "engagement.replies",
)
_REQUIRED: Final = ("id", "text", "created_at", "author.handle")
_SUFFIXES: Final[dict[str, Format]] = {
    ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl", ".csv": "csv",
}
_RAW_CHARS: Final = 4096
# Longest line read into memory (a full-size text, JSON-escaped, fits with room to spare);
# anything longer is skipped in chunks and reported, so one giant line cannot exhaust memory.
_MAX_LINE_BYTES: Final = 2 * 1024 * 1024


class ReplayError(Exception):
    """The file as a whole cannot be replayed; the message says what to do about it."""


@dataclass(frozen=True)
class BadLine:
    """A line that could not be turned into a Mention."""

    line: int
    """1-based line number in the file (for CSV: the first physical line of the record)."""
    reason: str
    """What is wrong, e.g. ``"created_at: Input should be a valid datetime"``."""
    raw: str
    """The raw line, decoded leniently and cut to 4096 characters."""


def parse_column_map(spec: str) -> dict[str, str]:
    """``"text=body,id=tweet_id,author.handle=user"`` -> ``{"text": "body", ...}``.

    Keys are Mention field paths (:data:`FIELD_PATHS`), values CSV column names. Spaces around
    names are ignored; a trailing comma is allowed.
    """
    pairs: list[tuple[str, str]] = []
    for item in spec.split(","):
        if not item.strip():
            continue
        field, eq, column = (part.strip() for part in item.partition("="))
        if not eq or not field or not column:
            raise ReplayError(f"bad column map entry {item.strip()!r}: expected FIELD=COLUMN, "
                              f"e.g. 'text=body,id=tweet_id,author.handle=user'")
        pairs.append((field, column))
    if not pairs:
        raise ReplayError("empty column map: give FIELD=COLUMN pairs, e.g. 'text=body'")
    return _checked_map(pairs)


def _checked_map(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    mapping: dict[str, str] = {}
    for field, column in pairs:
        if field not in FIELD_PATHS:
            raise ReplayError(f"unknown field {field!r} in column map; "
                              f"fields are: {', '.join(FIELD_PATHS)}")
        if field in mapping:
            raise ReplayError(f"field {field!r} is mapped twice in the column map; keep one")
        if not column:
            raise ReplayError(f"field {field!r} is mapped to an empty column name")
        mapping[field] = column
    return mapping


def read_file(
    path: Path,
    *,
    fmt: Format | None = None,
    columns: Mapping[str, str] | None = None,
    source: str = "replay",
) -> Iterator[Mention | BadLine]:
    """Every record of ``path`` as a :class:`Mention`, or a :class:`BadLine` saying why not.

    The format comes from the suffix (``.jsonl``, ``.ndjson``, ``.json`` hold JSON lines;
    ``.csv``) unless ``fmt`` is given. ``source`` fills records that do not name one.
    ``columns`` (CSV only) maps field paths to column names; unmapped fields are read from a
    column of the same name when there is one. File-level problems raise :class:`ReplayError`
    here, before iteration; records are read lazily, so the file may be larger than memory.
    """
    path = Path(path)
    if not path.is_file():
        what = "is a directory, not a file" if path.is_dir() else "does not exist"
        raise ReplayError(f"cannot replay {path}: it {what}; check the path")
    if fmt is None:
        fmt = _SUFFIXES.get(path.suffix.lower())
        if fmt is None:
            raise ReplayError(f"cannot tell the format of {path.name} from its suffix; "
                              f"name it .jsonl or .csv, or pass the format (jsonl or csv)")
    elif fmt not in ("jsonl", "csv"):
        raise ReplayError(f"unknown format {fmt!r}: use 'jsonl' or 'csv'")
    if fmt == "jsonl":
        if columns:
            raise ReplayError("a column map applies to CSV files only; drop it for JSON lines")
        return _read_jsonl(path, source)
    mapping = _checked_map(columns.items()) if columns else {}
    header = _read_header(path)
    if header is None:  # an empty file is an empty history, not an error
        return iter(())
    return _read_csv(path, _column_index(header, mapping), len(header), source)


def _lines(stream: BinaryIO) -> Iterator[tuple[int, bytes, bool]]:
    """(line number, bytes without the line break, too long?) for each physical line."""
    number = 0
    while True:
        chunk = stream.readline(_MAX_LINE_BYTES + 1)
        if not chunk:
            return
        number += 1
        too_long = len(chunk) > _MAX_LINE_BYTES
        if too_long:
            head = chunk
            while chunk and not chunk.endswith(b"\n"):
                chunk = stream.readline(_MAX_LINE_BYTES)
            chunk = head
        if number == 1 and chunk.startswith(b"\xef\xbb\xbf"):  # BOM from Excel and friends
            chunk = chunk[3:]
        yield number, chunk.rstrip(b"\r\n"), too_long


def _raw(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")[:_RAW_CHARS]


def _read_jsonl(path: Path, source: str) -> Iterator[Mention | BadLine]:
    with path.open("rb") as stream:
        for number, data, too_long in _lines(stream):
            if too_long:
                yield BadLine(number, f"line longer than {_MAX_LINE_BYTES} bytes", _raw(data))
                continue
            if not data.strip():
                continue
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError as exc:
                yield BadLine(number, f"not valid UTF-8: {exc}", _raw(data))
                continue
            try:
                obj = json.loads(text)
            except (ValueError, RecursionError) as exc:
                yield BadLine(number, f"not valid JSON: {exc}", text[:_RAW_CHARS])
                continue
            if not isinstance(obj, dict):
                yield BadLine(number, f"not a JSON object but {type(obj).__name__}",
                              text[:_RAW_CHARS])
                continue
            if obj.get("source") in (None, ""):
                obj["source"] = source
            yield _validate(obj, number, text)


def _validate(obj: dict[str, Any], number: int, raw: str) -> Mention | BadLine:
    try:
        return parse(Mention, obj)
    except RecordError as exc:
        return BadLine(number, str(exc), raw[:_RAW_CHARS])


def _read_header(path: Path) -> list[str] | None:
    with path.open("rb") as stream:
        feed = _LineFeed(_lines(stream))
        try:
            for row in csv.reader(feed):
                if feed.problem is not None:
                    raise ReplayError(f"{path.name}: the header (line {feed.first}) is "
                                      f"unusable: {feed.problem}; re-export it as UTF-8 CSV")
                if any(cell.strip() for cell in row):
                    return [cell.strip() for cell in row]
                feed.start_record()
        except csv.Error as exc:
            raise ReplayError(f"{path.name}: cannot read the CSV header: {exc}") from exc
    return None


def _column_index(header: list[str], mapping: dict[str, str]) -> dict[str, int]:
    """Field path -> column position, checking the map against the header."""
    positions: dict[str, int] = {}
    for i, name in enumerate(header):
        positions.setdefault(name, i)  # duplicated header names: the first one wins
    index: dict[str, int] = {}
    for field in FIELD_PATHS:
        column = mapping.get(field)
        if column is not None:
            if column not in positions:
                raise ReplayError(f"column {column!r} (mapped to {field}) is not in the CSV "
                                  f"header; the header has: {', '.join(header)}")
            index[field] = positions[column]
        elif field in positions:
            index[field] = positions[field]
    missing = [f for f in _REQUIRED if f not in index]
    if missing:
        hint = ",".join(f"{f}=COLUMN" for f in missing)
        raise ReplayError(f"the CSV has no column for {', '.join(missing)}; header has: "
                          f"{', '.join(header)}; map them with a column map, e.g. {hint!r}")
    return index


class _LineFeed:
    """Feeds decoded lines to :mod:`csv` and remembers which ones made the current record.

    csv decides how many physical lines a record takes (quoted newlines), so line numbers,
    raw text and decoding errors are tracked here, per line, and read back per record.
    """

    def __init__(self, lines: Iterable[tuple[int, bytes, bool]]) -> None:
        self._lines = iter(lines)
        self.first = 0
        self.raw: list[bytes] = []
        self.problem: str | None = None

    def start_record(self) -> None:
        self.raw, self.problem, self.first = [], None, 0

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        number, data, too_long = next(self._lines)
        self.first = self.first or number
        self.raw.append(data)
        if too_long and self.problem is None:
            self.problem = f"line {number} longer than {_MAX_LINE_BYTES} bytes"
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            self.problem = self.problem or f"not valid UTF-8: {exc}"
            text = data.decode("utf-8", errors="replace")
        return text + "\n"


def _read_csv(path: Path, index: dict[str, int], width: int,
              source: str) -> Iterator[Mention | BadLine]:
    with path.open("rb") as stream:
        feed = _LineFeed(_lines(stream))
        reader = csv.reader(feed)
        seen_header = False
        while True:
            feed.start_record()
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                yield BadLine(feed.first, f"not valid CSV: {exc}", _raw(b"\n".join(feed.raw)))
                continue
            if not any(cell.strip() for cell in row):
                continue  # blank line
            if not seen_header:  # already checked by _read_header
                seen_header = True
                continue
            raw = _raw(b"\n".join(feed.raw))
            if feed.problem is not None:
                yield BadLine(feed.first, feed.problem, raw)
            elif len(row) > width:
                yield BadLine(feed.first, f"record has {len(row)} fields but the header has "
                                          f"{width}; check the quoting", raw)
            else:
                yield _validate(_nest(row, index, source), feed.first, raw)


def _nest(row: list[str], index: dict[str, int], source: str) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for field, position in index.items():
        if position >= len(row) or not row[position].strip():
            continue  # an empty cell is a missing value, so defaults and "required" apply
        head, _, tail = field.partition(".")
        if tail:
            obj.setdefault(head, {})[tail] = row[position]
        else:
            obj[field] = row[position]
    obj.setdefault("source", source)
    return obj
