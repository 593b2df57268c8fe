"""A search of the store: the query, the filters, the sort and the page, as SQL.

:func:`search_from_params` reads the API's parameters (each refused with a message that says
what to send instead); :func:`select` turns a :class:`Search` into one parameterised SELECT.

Paging is by key set, never by offset: the next page starts after the last row's sort values
(``(priority, posted_at, id) < (…)``), which the indexes find directly, so page 1,000 costs
what page 1 does. The cursor is those values, opaque to clients; a tampered one is at worst a
different starting point, since its values are bound as parameters and checked as integers.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, Literal

from agents.store.rows import ms
from agents.store.sql import Compiled, Dialect, FtsMode, compile_query
from streams.config.base import ID
from streams.core.query import Node, QueryError, fold, parse_query

__all__ = ["MAX_LIMIT", "SORTS", "STORY_ID", "Search", "SearchError", "decode_cursor",
           "decode_story_cursor", "encode_cursor", "encode_story_cursor", "search_from_params",
           "select", "where_of"]

Sort = Literal["time", "priority", "reach"]
Order = Literal["desc", "asc"]
Group = Literal["mention", "story"]
#: A story id as agents/detect/stories.py makes them (streams.core.records.stable_id).
STORY_ID: Final = re.compile(r"[0-9a-f]{16}")
#: ``story:<id>`` in ``q``: a filter on the whole query, as ``story=<id>`` is (it is not part
#: of the watches' query language, where a story means nothing).
_STORY_TERM = re.compile(r"(?<!\S)story:(\S*)")
#: The columns each sort orders by; the last ones break ties, ``id`` makes the order total.
SORTS: Final[dict[str, tuple[str, ...]]] = {
    "time": ("posted_at", "id"),
    "priority": ("priority", "posted_at", "id"),
    "reach": ("reach", "posted_at", "id"),
}
SENTIMENTS: Final = ("negative", "neutral", "positive")
MAX_LIMIT: Final = 500
_DEFAULT_LIMIT: Final = 50
_CODE = re.compile(r"[a-z0-9_.-]{1,64}")
_PARAMS: Final = frozenset({"q", "watch", "since", "until", "sentiment", "lang", "source",
                            "min_priority", "verified", "sort", "order", "limit", "cursor",
                            "format", "story", "group"})


class SearchError(ValueError):
    """A search that cannot run; the message says which parameter and what to send."""


@dataclass(frozen=True)
class Search:
    query: Node | None = None
    watches: tuple[str, ...] = ()
    since: datetime | None = None
    until: datetime | None = None
    sentiments: tuple[str, ...] = ()
    languages: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    min_priority: int | None = None
    verified: bool | None = None
    sort: Sort = "time"
    order: Order = "desc"
    limit: int = _DEFAULT_LIMIT
    after: tuple[int, ...] | None = field(default=None)
    story: str | None = None
    #: "story": one row per story (agents/store/groups.py), paged by ``story_after`` (the
    #: last row's last-seen time and story id) instead of ``after``.
    group: Group = "mention"
    story_after: tuple[int, str] | None = None


def encode_cursor(search: Search, values: Sequence[int]) -> str:
    raw = json.dumps([search.sort, search.order, *values], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, *, sort: Sort, order: Order) -> tuple[int, ...]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        data = json.loads(raw)
    except (ValueError, binascii.Error, RecursionError):
        raise SearchError("cursor: not a cursor this API gave out; start without one") \
            from None
    want = len(SORTS[sort])
    if (not isinstance(data, list) or len(data) != want + 2 or data[:2] != [sort, order]
            or not all(type(v) is int and abs(v) < 2**63 for v in data[2:])):
        raise SearchError("cursor: it belongs to another sort or order, or is damaged; keep "
                          "sort and order as they were, or start without a cursor")
    return tuple(data[2:])


def _one(params: Mapping[str, Sequence[str]], name: str) -> str | None:
    values = params.get(name) or []
    if len(values) > 1:
        raise SearchError(f"{name}: give it once (got {len(values)} values)")
    return values[0] if values else None


def _many(params: Mapping[str, Sequence[str]], name: str) -> tuple[str, ...]:
    """Repeated (``lang=es&lang=fr``) or comma-separated (``lang=es,fr``) values."""
    out: list[str] = []
    for value in params.get(name) or []:
        out += [v.strip() for v in value.split(",") if v.strip()]
    if len(out) > 50:
        raise SearchError(f"{name}: at most 50 values")
    return tuple(dict.fromkeys(out))


def _time(value: str | None, name: str) -> datetime | None:
    if value is None or not value.strip():
        return None
    try:
        when = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise SearchError(f"{name}: {value[:40]!r} is not a time; use ISO 8601, e.g. "
                          "2026-03-01T09:00:00Z") from None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def _int(value: str | None, name: str, low: int, high: int) -> int | None:
    if value is None or not value.strip():
        return None
    try:
        number = int(value.strip())
    except ValueError:
        raise SearchError(f"{name}: {value[:20]!r} is not a whole number") from None
    if not low <= number <= high:
        raise SearchError(f"{name}: use {low} to {high}, not {number}")
    return number


def search_from_params(params: Mapping[str, Sequence[str]], *,
                       watch_ids: Sequence[str] | None = None) -> Search:
    """The search the API's query string asks for (each name mapped to its values).

    ``watch_ids``: when given, a watch not among them is refused (the API leaves it out: a
    watch removed from the config keeps its stored mentions until they expire)."""
    unknown = sorted(set(params) - _PARAMS)
    if unknown:
        raise SearchError(f"unknown parameter(s) {', '.join(unknown)[:200]}; use "
                          f"{', '.join(sorted(_PARAMS))}")
    text = _one(params, "q")
    story = (_one(params, "story") or "").strip().lower() or None
    if text:
        terms = _STORY_TERM.findall(text)
        if len(terms) > 1 or (terms and story is not None and terms[0].lower() != story):
            raise SearchError("q: one story:<id> at most (or the story parameter)")
        if terms:
            story = terms[0].lower()
            text = _STORY_TERM.sub(" ", text)
    if story is not None and not STORY_ID.fullmatch(story):
        raise SearchError(f"story: {story[:20]!r} is not a story id (16 hex digits, as the "
                          "grouped view gives them)")
    group = (_one(params, "group") or "mention").strip().lower()
    if group not in ("mention", "story"):
        raise SearchError("group: use mention (one row per mention) or story (one per story)")
    try:
        query = parse_query(text) if text and text.strip() else None
    except QueryError as exc:
        raise SearchError(f"q: {exc}") from None
    watches = _many(params, "watch")
    if any(not ID.fullmatch(w) for w in watches):
        raise SearchError("watch: a watch id (lowercase letters, digits, '-', '_')")
    if watch_ids is not None:
        missing = [w for w in watches if w not in watch_ids]
        if missing:
            raise SearchError(f"watch: no watch {missing[0]!r}; configured: "
                              f"{', '.join(watch_ids) or 'none'}")
    sentiments = tuple(s.lower() for s in _many(params, "sentiment"))
    bad = [s for s in sentiments if s not in SENTIMENTS]
    if bad:
        raise SearchError(f"sentiment: {bad[0][:20]!r} is not one of {', '.join(SENTIMENTS)}")
    languages = tuple(fold(v) for v in _many(params, "lang"))
    sources = tuple(fold(v) for v in _many(params, "source"))
    for name, codes in (("lang", languages), ("source", sources)):
        if any(not _CODE.fullmatch(c) for c in codes):
            raise SearchError(f"{name}: letters, digits, '.', '_' or '-' only, e.g. es or rss")
    verified_raw = (_one(params, "verified") or "").strip().lower()
    if verified_raw not in ("", "true", "false", "1", "0"):
        raise SearchError("verified: use true or false")
    sort = (_one(params, "sort") or "time").strip().lower()
    if sort not in SORTS:
        raise SearchError(f"sort: use one of {', '.join(SORTS)}")
    order = (_one(params, "order") or "desc").strip().lower()
    if order not in ("desc", "asc"):
        raise SearchError("order: use desc (newest, highest first) or asc")
    since, until = _time(_one(params, "since"), "since"), _time(_one(params, "until"), "until")
    if since and until and until <= since:
        raise SearchError("until: must be after since")
    cursor = _one(params, "cursor")
    if group == "story" and sort != "time":
        raise SearchError("sort: the grouped view is sorted by when a story was last seen; "
                          "leave sort out or use time")
    return Search(
        query=query, watches=watches, since=since, until=until, sentiments=sentiments,
        languages=languages, sources=sources,
        min_priority=_int(_one(params, "min_priority"), "min_priority", 0, 100),
        verified=None if not verified_raw else verified_raw in ("true", "1"),
        sort=sort, order=order,  # type: ignore[arg-type]
        limit=_int(_one(params, "limit"), "limit", 1, MAX_LIMIT) or _DEFAULT_LIMIT,
        after=decode_cursor(cursor, sort=sort, order=order)  # type: ignore[arg-type]
        if cursor and group == "mention" else None,
        story=story, group=group,  # type: ignore[arg-type]
        story_after=decode_story_cursor(cursor, order=order)  # type: ignore[arg-type]
        if cursor and group == "story" else None)


def encode_story_cursor(search: Search, last_seen: int, story: str) -> str:
    """Where the grouped view's next page starts: after this story, last seen then."""
    raw = json.dumps(["story", search.order, last_seen, story], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_story_cursor(cursor: str, *, order: Order) -> tuple[int, str]:
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, binascii.Error, RecursionError):
        raise SearchError("cursor: not a cursor this API gave out; start without one") \
            from None
    if (not isinstance(data, list) or len(data) != 4 or data[:2] != ["story", order]
            or type(data[2]) is not int or abs(data[2]) >= 2**63
            or not isinstance(data[3], str) or not STORY_ID.fullmatch(data[3])):
        raise SearchError("cursor: it belongs to another view or order, or is damaged; keep "
                          "group and order as they were, or start without a cursor")
    return data[2], data[3]

def where_of(search: Search, dialect: Dialect, params: list[Any], *,
             fts_mode: FtsMode = "driver", joined: bool = False) -> tuple[list[str], str]:
    """The conditions of ``search`` on ``mentions m`` (their values appended to ``params``),
    and the index hint the full-text plan wants. ``joined``: the query joins
    ``mention_watches w`` (the grouped view), whose row the watch and story filters test."""
    ph = dialect.placeholder
    where: list[str] = []

    def bind(values: Sequence[Any]) -> str:
        params.extend(values)
        return ", ".join([ph] * len(values))

    hint = ""
    if search.query is not None:
        compiled = compile_query(search.query, dialect, driver=fts_mode)
        where.append(f"({compiled.sql})")
        params.extend(compiled.params)
        if compiled.driver_fts is not None and fts_mode != "driver":
            hint = dialect.index_hint(search.sort)
    if joined:
        if search.watches:
            where.append(f"w.watch_id IN ({bind(search.watches)})")
        if search.story is not None:
            where.append(f"w.story = {bind([search.story])}")
    else:
        if search.watches:
            # Tested row by row (a primary-key lookup): a big watch is never read whole first.
            where.append("EXISTS (SELECT 1 FROM mention_watches w WHERE w.mention_id = m.id "
                         f"AND w.watch_id IN ({bind(search.watches)}))")
        if search.story is not None:
            # Driven by the story's index: a story is small next to the store.
            where.append("m.id IN (SELECT s.mention_id FROM mention_watches s WHERE "
                         f"s.story = {bind([search.story])})")
    if search.since is not None:
        where.append(f"m.posted_at >= {bind([ms(search.since)])}")
    if search.until is not None:
        where.append(f"m.posted_at < {bind([ms(search.until)])}")
    for column, values in (("sentiment", search.sentiments), ("language", search.languages),
                           ("source", search.sources)):
        if values:
            where.append(f"m.{column} IN ({bind(values)})")
    if search.min_priority is not None:
        where.append(f"m.priority >= {bind([search.min_priority])}")
    if search.verified is not None:  # a bool: sqlite3 binds it as the 0/1 SQLite keeps
        where.append(f"m.verified = {bind([search.verified])}")
    return where, hint


def select(search: Search, dialect: Dialect, *, fts_mode: FtsMode = "driver") -> Compiled:
    """The SELECT of one page's rows (``limit`` + 1 of them: one more says whether a next
    page exists): id, posted_at, priority, reach. ``fts_mode`` says how the query's
    full-text condition runs; unless it drives, the sort's own index is walked."""
    params: list[Any] = []
    where, hint = where_of(search, dialect, params, fts_mode=fts_mode)
    ph = dialect.placeholder
    columns = [f"m.{c}" for c in SORTS[search.sort]]
    direction = "DESC" if search.order == "desc" else "ASC"
    if search.after is not None:
        cmp = "<" if search.order == "desc" else ">"
        where.append(f"({', '.join(columns)}) {cmp} ({', '.join([ph] * len(search.after))})")
        params.extend(search.after)
    sql = (f"SELECT m.id, m.posted_at, m.priority, m.reach FROM mentions m{hint}"
           + (" WHERE " + " AND ".join(where) if where else "")
           + " ORDER BY " + ", ".join(f"{c} {direction}" for c in columns)
           + f" LIMIT {ph}")
    params.append(search.limit + 1)
    return Compiled(sql, tuple(params))
