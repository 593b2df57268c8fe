"""The mention store: write enriched mentions, search them, let them go when they expire.

Every method blocks (it talks to a database) and is safe to call from several threads: the
Faust agent and the web routes call it through ``asyncio.to_thread``. Writing is idempotent by
mention key: a mention read twice (at-least-once delivery, a rebuild over a live store, one
copy per watch it matched) is stored once, and each watch it belongs to is linked once. The
first copy's record is kept; later copies only add watches.

Errors: :class:`StoreUnavailable` when the database cannot be used now (down, locked, disk
full; worth trying again), a rejected row when one record cannot be stored (its reason goes to
the dead-letter topic), :class:`SearchTimeout` for a search that ran past its time.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal

from agents.detect.storybook import StoryBook
from agents.store.backends import DatabaseBackend, PostgresBackend, SqliteBackend
from agents.store.rows import Row, RowError, StoredMention, ms, row_of
from agents.store.schema import SchemaError, migrate
from agents.store.search import SORTS, Search, SearchError, encode_cursor, select
from agents.store.sql import FtsMode, compile_query
from streams.config.settings import Settings
from streams.core.records import EnrichedMention

__all__ = ["MentionStore", "SearchPage", "SearchTimeout", "StoreError", "StoreUnavailable",
           "WriteResult", "store_for"]

_Role = Literal["write", "read"]
_CHUNK: Final = 5000  # rows deleted per transaction when mentions expire


class StoreError(Exception):
    """The store cannot do what was asked; the message says what to do."""


class StoreUnavailable(StoreError):
    """The database cannot be used now (unreachable, locked, full): try again later."""


class SearchTimeout(SearchError):
    """A search ran past ``store.search_timeout_s``: narrow it."""


class _BadRows(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class WriteResult:
    stored: int  # mentions new to the store
    #: (index in the batch, reason) of each record the store refused.
    rejected: list[tuple[int, str]] = field(default_factory=list)


@dataclass(frozen=True)
class SearchPage:
    mentions: list[StoredMention]
    cursor: str | None  # where the next page starts; None on the last page


class MentionStore:
    """One store on one database backend (agents/store/backends.py)."""

    def __init__(self, backend: DatabaseBackend, *, search_timeout_s: float = 10.0,
                 stories: StoryBook | None = None) -> None:
        self.backend = backend
        #: Gives each written mention its story per watch (agents/detect/storybook.py).
        self.stories = stories or StoryBook()
        self.search_timeout_s = search_timeout_s
        self._conns: dict[_Role, Any] = {}
        self._locks: dict[_Role, threading.Lock] = {"write": threading.Lock(),
                                                    "read": threading.Lock()}
        self._schema_lock = threading.Lock()
        self._migrated = False

    def _say(self, exc: BaseException) -> str:
        """``exc`` in one line, for logs and dead letters, never with the password."""
        text = _short(exc)
        secret = self.backend.secret
        return text.replace(secret, "***") if secret else text

    @property
    def location(self) -> str:
        """Where the mentions are, without any password."""
        return self.backend.location

    # --- connections ---------------------------------------------------------------------
    def open(self) -> None:
        """Create or upgrade the schema (once per process); :class:`StoreUnavailable` if the
        database cannot be reached, :class:`StoreError` if it is of a newer escucha."""
        with self._schema_lock:
            if self._migrated:
                return
            try:
                conn = self.backend.connect()
                try:
                    migrate(conn, self.backend.name, now_ms=ms(datetime.now(UTC)))
                finally:
                    conn.close()
            except SchemaError as exc:
                raise StoreError(str(exc)) from exc
            except Exception as exc:
                if self.backend.unavailable(exc):
                    raise StoreUnavailable(f"the mention store at {self.location} cannot be "
                                           f"used: {self._say(exc)}") from exc
                raise
            self._migrated = True

    @contextmanager
    def _conn(self, role: _Role) -> Iterator[Any]:
        self.open()
        with self._locks[role]:
            conn = self._conns.get(role)
            try:
                if conn is None:
                    conn = self._conns[role] = self.backend.connect()
                yield conn
            except BaseException as exc:
                if conn is not None:
                    _quietly(conn.rollback)
                if self.backend.unavailable(exc) and not isinstance(exc, SearchError):
                    self._drop(role)  # a broken connection is opened afresh next time
                    raise StoreUnavailable(f"the mention store at {self.location} cannot be "
                                           f"used: {self._say(exc)}") from exc
                raise

    def ping(self) -> None:
        """Take the write lock and let it go: :class:`StoreUnavailable` unless writing could
        go ahead now."""
        with self._conn("write") as conn:
            cur = conn.cursor()
            if self.backend.name == "sqlite":
                cur.execute("BEGIN IMMEDIATE")
            cur.execute("SELECT 1 FROM store_schema LIMIT 1")
            conn.rollback()

    def _drop(self, role: _Role) -> None:
        conn = self._conns.pop(role, None)
        if conn is not None:
            _quietly(conn.close)

    def close(self) -> None:
        for role in ("write", "read"):
            with self._locks[role]:  # type: ignore[index]
                self._drop(role)  # type: ignore[arg-type]

    # --- writing -----------------------------------------------------------------------------
    def write(self, mentions: Sequence[EnrichedMention], *,
              now: datetime | None = None) -> WriteResult:
        """Store ``mentions`` (one transaction); records that cannot be stored are refused
        one by one, with their reason, and the rest stored."""
        now = now or datetime.now(UTC)
        rows: list[tuple[int, Row]] = []
        rejected: list[tuple[int, str]] = []
        for i, em in enumerate(mentions):
            try:
                row = row_of(em, now=now)
            except RowError as exc:
                rejected.append((i, str(exc)))
                continue
            rows.append((i, replace(row, stories=self.stories.assign(em, row.watch_ids))))
        if not rows:
            return WriteResult(0, rejected)
        try:
            stored = self._insert([r for _, r in rows])
        except _BadRows:  # find which: alone, each good row is stored and each bad one named
            stored = 0
            for i, row in rows:
                try:
                    stored += self._insert([row])
                except _BadRows as exc:
                    rejected.append((i, f"the store refused it: {exc.reason}"))
        return WriteResult(stored, sorted(rejected))

    def _insert(self, rows: list[Row]) -> int:
        with self._conn("write") as conn:
            cur = conn.cursor()
            try:
                if self.backend.name == "sqlite":
                    cur.execute("BEGIN IMMEDIATE")
                stored = self.backend.insert_rows(cur, rows)
                conn.commit()
                return stored
            except Exception as exc:
                if self.backend.unavailable(exc):
                    raise
                if self.backend.bad_row(exc):
                    _quietly(conn.rollback)
                    raise _BadRows(self._say(exc)) from exc
                raise

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        """A cursor on the writer's connection inside one transaction, committed when the
        block ends (rolled back on an error): for other tables of the store (claims)."""
        with self._conn("write") as conn:
            cur = conn.cursor()
            if self.backend.name == "sqlite":
                cur.execute("BEGIN IMMEDIATE")  # the write lock first: no upgrade deadlock
            yield cur
            conn.commit()

    @contextmanager
    def reading(self) -> Iterator[Any]:
        """A cursor on the reader's connection (no write lock taken); PostgreSQL's
        transaction is ended afterwards, so no snapshot is held between calls."""
        with self._conn("read") as conn:
            yield conn.cursor()
            if self.backend.name == "postgresql":
                conn.rollback()

    # --- searching ---------------------------------------------------------------------------
    @contextmanager
    def _cut_off(self, conn: Any, narrow: str) -> Iterator[None]:
        """Statements inside are cut off after ``search_timeout_s``, and that ends as a
        :class:`SearchTimeout` saying how to narrow the search."""
        with self.backend.deadline(conn, self.search_timeout_s):
            try:
                yield
            except Exception as exc:
                if self.backend.timed_out(exc):
                    raise SearchTimeout(f"the search ran past {self.search_timeout_s:g}s; "
                                        f"narrow it ({narrow})") from exc
                raise

    def search(self, search: Search) -> SearchPage:
        with self._conn("read") as conn:
            cur = conn.cursor()
            with self._cut_off(conn, "a time range, a watch, fewer leading wildcards"):
                mode: FtsMode = "driver"
                if search.query is not None:
                    top = compile_query(search.query, self.backend).driver_fts
                    if top is not None:
                        mode = self.backend.plan_fts(cur, top)
                compiled = select(search, self.backend, fts_mode=mode)
                cur.execute(compiled.sql, compiled.params)
                found = cur.fetchall()
            page = found[:search.limit]
            ids = [row[0] for row in page]
            watches = self._watches_of(cur, ids)
            records = self._records_of(cur, ids)
            if self.backend.name == "postgresql":
                conn.rollback()  # end the read's transaction: no snapshot held between calls
        mentions = [StoredMention.of(id=row[0], posted_at=row[1], priority=row[2],
                                     reach=row[3], record=records[row[0]],
                                     watch_ids=watches.get(row[0], ()))
                    for row in page if row[0] in records]
        cursor = None
        if len(found) > search.limit and page:
            last = page[-1]
            values = {"id": last[0], "posted_at": last[1], "priority": last[2],
                      "reach": last[3]}
            cursor = encode_cursor(search, [int(values[c]) for c in SORTS[search.sort]])
        return SearchPage(mentions, cursor)

    def count_matching(self, search: Search, *, cap: int = 10_000) -> int:
        """How many mentions ``search`` finds, counted up to ``cap + 1`` (more means "over
        ``cap``"): the LIMIT keeps a count over a huge result as cheap as reading ``cap`` keys.
        :class:`SearchTimeout` past ``store.search_timeout_s`` as for :meth:`search`."""
        inner = select(replace(search, limit=cap, after=None), self.backend)
        with self._conn("read") as conn:
            cur = conn.cursor()
            with self.backend.deadline(conn, self.search_timeout_s):
                try:
                    cur.execute(f"SELECT COUNT(*) FROM ({inner.sql}) AS counted", inner.params)
                    n = int(cur.fetchone()[0])
                except Exception as exc:
                    if self.backend.timed_out(exc):
                        raise SearchTimeout(f"the count ran past {self.search_timeout_s:g}s"
                                            ) from exc
                    raise
            if self.backend.name == "postgresql":
                conn.rollback()
        return n

    def read_rows(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        """Rows of one read-only statement, cut off as :meth:`search` is (SearchTimeout)."""
        with self._conn("read") as conn:
            cur = conn.cursor()
            with self._cut_off(conn, "a time range, a watch"):
                cur.execute(sql, params)
                found = [tuple(row) for row in cur.fetchall()]
            if self.backend.name == "postgresql":
                conn.rollback()
        return found

    def _records_of(self, cur: Any, ids: list[int]) -> dict[int, str]:
        if not ids:
            return {}
        ph = ", ".join([self.backend.placeholder] * len(ids))
        cur.execute(f"SELECT id, record FROM mention_texts WHERE id IN ({ph})", ids)
        return {int(i): str(record) for i, record in cur.fetchall()}

    def _watches_of(self, cur: Any, ids: list[int]) -> dict[int, tuple[str, ...]]:
        if not ids:
            return {}
        ph = ", ".join([self.backend.placeholder] * len(ids))
        cur.execute(f"SELECT mention_id, watch_id FROM mention_watches WHERE mention_id IN "
                    f"({ph}) ORDER BY watch_id", ids)
        out: dict[int, list[str]] = {}
        for mention_id, watch_id in cur.fetchall():
            out.setdefault(mention_id, []).append(watch_id)
        return {k: tuple(v) for k, v in out.items()}

    # --- keeping it in bounds ---------------------------------------------------------------
    def expire(self, *, default_days: int, days: Mapping[str, int],
               now: datetime | None = None) -> int:
        """Forget each watch's mentions older than its retention (``days``, else
        ``default_days``); a mention goes with the last of its watches. How many went."""
        now = now or datetime.now(UTC)

        def cutoff(d: int) -> int:
            return ms(now - timedelta(days=d))

        ph = self.backend.placeholder
        for watch, d in days.items():
            self._delete_chunks(
                "DELETE FROM mention_watches WHERE (watch_id, mention_id) IN (SELECT watch_id, "
                f"mention_id FROM mention_watches WHERE watch_id = {ph} AND posted_at < {ph} "
                f"LIMIT {_CHUNK})", (watch, cutoff(d)))
        listed = list(days)
        not_listed = f"watch_id NOT IN ({', '.join([ph] * len(listed))}) AND " if listed else ""
        self._delete_chunks(
            "DELETE FROM mention_watches WHERE (watch_id, mention_id) IN (SELECT watch_id, "
            f"mention_id FROM mention_watches WHERE {not_listed}posted_at < {ph} "
            f"LIMIT {_CHUNK})", (*listed, cutoff(default_days)))
        shortest = min([default_days, *days.values()])
        return self._delete_chunks(
            "DELETE FROM mentions WHERE id IN (SELECT m.id FROM mentions m WHERE m.posted_at < "
            f"{ph} AND NOT EXISTS (SELECT 1 FROM mention_watches w WHERE w.mention_id = m.id) "
            f"LIMIT {_CHUNK})", (cutoff(shortest),))

    def _delete_chunks(self, sql: str, params: tuple[object, ...]) -> int:
        """Run a ``LIMIT``-ed DELETE until it deletes nothing: short transactions, so the
        writer is never held up for long."""
        total = 0
        while True:
            with self._conn("write") as conn:
                cur = conn.cursor()
                if self.backend.name == "sqlite":
                    cur.execute("BEGIN IMMEDIATE")
                cur.execute(sql, params)
                n = int(cur.rowcount)
                conn.commit()
            total += max(n, 0)
            if n < _CHUNK:
                return total
            time.sleep(0)  # let a waiting writer in between chunks

    def clear(self) -> None:
        """Drop every mention and the schema with them, then create it afresh."""
        with self._conn("write") as conn:
            cur = conn.cursor()
            if self.backend.name == "sqlite":
                cur.execute("BEGIN IMMEDIATE")
            for table in ("mention_watches", "mention_fts", "mention_texts", "mentions",
                          "store_schema"):
                if table == "mention_fts" and self.backend.name != "sqlite":
                    continue
                cur.execute(f"DROP TABLE IF EXISTS {table}")
            conn.commit()
        self._drop("read")
        self._drop("write")
        with self._schema_lock:
            self._migrated = False
        self.open()

    def analyze(self) -> None:
        """PostgreSQL: refresh the planner's statistics (autovacuum does it in time; after a
        rebuild it is worth doing at once). SQLite: nothing; its plans are chosen by the
        store itself (``SqliteBackend.plan_fts``)."""
        if self.backend.name != "postgresql":
            return
        with self._conn("write") as conn:
            conn.commit()
            conn.autocommit = True  # ANALYZE of several tables outside a transaction block
            try:
                conn.cursor().execute("ANALYZE mentions, mention_texts, mention_watches")
            finally:
                conn.autocommit = False

    def count(self) -> int:
        with self._conn("read") as conn:
            cur = conn.cursor()
            cur.execute("SELECT COUNT(*) FROM mentions")
            n = int(cur.fetchone()[0])
            if self.backend.name == "postgresql":
                conn.rollback()
            return n

    def size_bytes(self) -> int:
        """What the store takes on disk (the SQLite file and its journal; PostgreSQL's tables
        with their indexes and TOAST)."""
        with self._conn("read") as conn:
            size: int = self.backend.size_bytes(conn)
            if self.backend.name == "postgresql":
                conn.rollback()
            return size


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:300]


def _quietly(fn: Any) -> None:
    with contextlib.suppress(Exception):  # already failing: the first error is reported
        fn()


def store_for(settings: Settings, *, stories: StoryBook | None = None) -> MentionStore:
    """The store ``settings.store`` describes (nothing is opened yet); ``stories``: the
    worker's story indexes, shared with detection (agents/detect/storybook.py)."""
    cfg = settings.store
    path = cfg.sqlite_path(settings.datadir)
    backend: DatabaseBackend
    if path is not None:
        backend = SqliteBackend(path if path.is_absolute() else path.resolve())
    else:
        url = cfg.postgres_url()
        assert url is not None
        backend = PostgresBackend(url)
    return MentionStore(backend, search_timeout_s=cfg.search_timeout_s, stories=stories)
