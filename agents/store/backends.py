"""The two databases the store runs on: a SQLite file (the default) and PostgreSQL.

Each backend opens connections, says which errors mean "the database is unavailable" (try
again later) rather than "this row is bad" (dead-letter it), and speaks its SQL dialect to the
query compiler (agents/store/sql.py). Connections are blocking: the store is called from
threads (``asyncio.to_thread``), never on the event loop.
"""

from __future__ import annotations

import sqlite3
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final, Literal
from urllib.parse import urlsplit, urlunsplit

from agents.store.rows import Row
from agents.store.schema import Backend
from agents.store.sql import FtsMode, glob_match, token_regex

__all__ = ["DatabaseBackend", "PostgresBackend", "SqliteBackend", "redact"]

_CONNECT_TIMEOUT_S: Final = 5
#: SQLite: matches up to which the index's rows drive the search (each looked up, then
#: sorted); past it the sort's index is walked, testing each row against the matches held in
#: memory; past :data:`_PROBE_OVER` (a common word: most rows match) against the index itself.
_DRIVE_UNDER: Final = 30_000
_PROBE_OVER: Final = 200_000
#: Newest rows whose matches estimate how many rows a full-text condition matches.
_SAMPLE: Final = 20_000


#: Links a mention to a watch with its story there. A story already stored is kept (ids
#: never change); a missing one (a row stored before stories) is filled in by a rebuild.
_LINK_WATCHES: Final = (
    "INSERT INTO mention_watches (watch_id, story, mention_id, posted_at) "
    "SELECT {ph}, {ph}, id, posted_at FROM mentions WHERE key = {ph} "
    "ON CONFLICT (watch_id, mention_id) DO UPDATE SET story = COALESCE(mention_watches.story, "
    "excluded.story) WHERE mention_watches.story IS NULL AND excluded.story IS NOT NULL")


def redact(url: str) -> str:
    """``url`` without its password, for logs and messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def _glob(globs: str | None, words: str | None) -> bool:
    return globs is not None and words is not None and glob_match(globs, words)


class DatabaseBackend(ABC):
    """What the store needs from a database (:class:`SqliteBackend`, :class:`PostgresBackend`):
    the abstract methods each backend implements, the rest shared defaults."""

    name: Backend
    placeholder: str
    unary_not: bool
    location: str  # where the data is, without secrets
    secret: str | None = None  # a password the backend knows: kept out of every message

    @abstractmethod
    def connect(self) -> Any:
        ...

    @abstractmethod
    def unavailable(self, exc: BaseException) -> bool:
        """Whether ``exc`` says the database cannot be used now (rather than a bad row)."""
        ...

    @abstractmethod
    def bad_row(self, exc: BaseException) -> bool:
        """Whether ``exc`` is the database refusing the data it was given."""
        ...

    @abstractmethod
    @contextmanager
    def deadline(self, conn: Any, seconds: float) -> Iterator[None]:
        """Statements on ``conn`` inside are cut off after ``seconds``."""
        yield  # the backends implement it

    @abstractmethod
    def timed_out(self, exc: BaseException) -> bool:
        """Whether ``exc`` is a statement cut off by :meth:`deadline`."""
        ...

    @abstractmethod
    def size_bytes(self, conn: Any) -> int:
        ...

    @abstractmethod
    def insert_rows(self, cur: Any, rows: list[Row]) -> int:
        """Insert what is new among ``rows`` and link their watches; how many were new."""
        ...

    # --- the query compiler's dialect (agents/store/sql.py) -------------------------------
    @abstractmethod
    def fts_atom(self, tokens: tuple[str, ...], prefix: bool) -> str:
        ...

    @abstractmethod
    def fts_join(self, op: Literal["and", "or"], parts: list[str]) -> str:
        ...

    @abstractmethod
    def fts_not(self, positive: str | None, negative: str) -> str:
        ...

    @abstractmethod
    def fts_condition(self, mode: FtsMode) -> str:
        ...

    @abstractmethod
    def wildcard_condition(self, tokens: tuple[str, ...]) -> tuple[str, str]:
        ...

    def index_hint(self, sort: str) -> str:
        """``INDEXED BY …`` making the query walk the sort's index, or "" (no such hints)."""
        return ""

    def plan_fts(self, cur: Any, expression: str) -> FtsMode:
        """How the top-level full-text condition should run (see :data:`FtsMode`)."""
        return "driver"


class SqliteBackend(DatabaseBackend):
    """A SQLite file with an FTS5 index: nothing to install; one worker's store."""

    name: Backend = "sqlite"
    placeholder = "?"
    unary_not = False

    def __init__(self, path: Path, *, busy_timeout_s: float = 5.0,
                 drive_under: int = _DRIVE_UNDER, probe_over: int = _PROBE_OVER,
                 sample: int = _SAMPLE) -> None:
        self.path = path
        self.location = str(path)
        #: How long a statement waits for another connection's write lock before failing.
        self.busy_timeout_s = busy_timeout_s
        self.drive_under, self.probe_over, self.sample = drive_under, probe_over, sample

    def connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Autocommit mode: the store says BEGIN and COMMIT itself. Readers and the writer
        # each have their own connection; WAL lets them work at the same time.
        conn = sqlite3.connect(self.path, timeout=self.busy_timeout_s, isolation_level=None,
                               check_same_thread=False)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")  # WAL: durable at checkpoints, never corrupt
        conn.execute("PRAGMA foreign_keys = ON")
        # The narrow mentions table and its indexes stay in memory; texts are read through
        # the OS's page cache.
        conn.execute("PRAGMA cache_size = -65536")
        conn.execute("PRAGMA mmap_size = 1073741824")
        conn.create_function("escucha_glob", 2, _glob, deterministic=True)
        return conn

    def unavailable(self, exc: BaseException) -> bool:
        # Locked, full disk, read-only or corrupt file: the row is not the problem.
        return isinstance(exc, sqlite3.Error) and not self.bad_row(exc)

    def bad_row(self, exc: BaseException) -> bool:
        return isinstance(exc, sqlite3.IntegrityError | sqlite3.DataError
                          | sqlite3.ProgrammingError | sqlite3.InterfaceError)

    @contextmanager
    def deadline(self, conn: Any, seconds: float) -> Iterator[None]:
        ends = time.monotonic() + seconds
        # Called every N virtual-machine steps; a true answer interrupts the statement.
        conn.set_progress_handler(lambda: time.monotonic() > ends, 2000)
        try:
            yield
        finally:
            conn.set_progress_handler(None, 0)

    def timed_out(self, exc: BaseException) -> bool:
        return isinstance(exc, sqlite3.OperationalError) and "interrupted" in str(exc)

    def size_bytes(self, conn: Any) -> int:
        return sum(p.stat().st_size for p in self.path.parent.glob(self.path.name + "*")
                   if p.is_file())

    def insert_rows(self, cur: Any, rows: list[Row]) -> int:
        cur.executemany(
            "INSERT INTO mentions (key, source, author, verified, language, sentiment, "
            "priority, reach, posted_at, stored_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO NOTHING",
            [(r.key, r.source, r.author, int(r.verified), r.language, r.sentiment, r.priority,
              r.reach, r.posted_at, r.stored_at) for r in rows])
        stored = int(cur.rowcount)
        cur.executemany(
            "INSERT INTO mention_texts (id, url, words, record) "
            "SELECT id, ?, ?, ? FROM mentions WHERE key = ? ON CONFLICT (id) DO NOTHING",
            [(r.url, r.words, r.record, r.key) for r in rows])
        cur.executemany(_LINK_WATCHES.format(ph="?"),
                        [(w, s, r.key) for r in rows for w, s in r.watch_stories()])
        return stored

    def fts_atom(self, tokens: tuple[str, ...], prefix: bool) -> str:
        phrase = " ".join(tokens).replace('"', '""')
        return f'"{phrase}"' + (" *" if prefix else "")

    def fts_join(self, op: Literal["and", "or"], parts: list[str]) -> str:
        # Every part is a phrase or parenthesised already.
        return parts[0] if len(parts) == 1 else "(" + f" {op.upper()} ".join(parts) + ")"

    def fts_not(self, positive: str | None, negative: str) -> str:
        if positive is None:
            raise ValueError("FTS5 has no unary NOT")
        return f"({positive} NOT {negative})"

    def fts_condition(self, mode: FtsMode) -> str:
        if mode == "probe":
            return ("EXISTS (SELECT 1 FROM mention_fts f WHERE f.rowid = m.id "
                    "AND f.mention_fts MATCH {})")
        # "+" keeps SQLite from driving the search by the matches: it tests rows against
        # them (held in memory) while walking another index.
        return ("+" if mode == "set" else "") + \
            "m.id IN (SELECT rowid FROM mention_fts WHERE mention_fts MATCH {})"

    def wildcard_condition(self, tokens: tuple[str, ...]) -> tuple[str, str]:
        return ("EXISTS (SELECT 1 FROM mention_texts t WHERE t.id = m.id AND "
                "escucha_glob({}, t.words))", " ".join(tokens))

    def index_hint(self, sort: str) -> str:
        return f" INDEXED BY mentions_by_{sort}"

    def plan_fts(self, cur: Any, expression: str) -> FtsMode:
        cur.execute("SELECT COALESCE(MAX(id), 0) FROM mentions")
        newest = int(cur.fetchone()[0])
        cur.execute("SELECT COUNT(*) FROM mention_fts WHERE mention_fts MATCH ? AND rowid > ?",
                    (expression, newest - self.sample))
        hits = int(cur.fetchone()[0])
        estimate = hits if newest <= self.sample else hits * newest / self.sample
        if estimate <= self.drive_under:
            return "driver"
        return "set" if estimate <= self.probe_over else "probe"


class PostgresBackend(DatabaseBackend):
    """PostgreSQL (psycopg 3): one store shared by every worker."""

    name: Backend = "postgresql"
    placeholder = "%s"
    unary_not = True

    def __init__(self, url: str) -> None:
        self.url = url
        self.location = redact(url)
        self.secret = urlsplit(url).password or None

    def connect(self) -> Any:
        import psycopg  # only deployments that use PostgreSQL need the driver loaded

        return psycopg.connect(self.url, autocommit=False, connect_timeout=_CONNECT_TIMEOUT_S,
                               application_name="escucha-store")

    def unavailable(self, exc: BaseException) -> bool:
        import psycopg

        return isinstance(exc, psycopg.Error) and not self.bad_row(exc)

    def bad_row(self, exc: BaseException) -> bool:
        import psycopg

        return isinstance(exc, psycopg.DataError | psycopg.IntegrityError)

    @contextmanager
    def deadline(self, conn: Any, seconds: float) -> Iterator[None]:
        with conn.cursor() as cur:  # for this transaction only (the read ends it)
            cur.execute("SELECT set_config('statement_timeout', %s, true)",
                        (f"{max(1, int(seconds * 1000))}ms",))
        yield

    def timed_out(self, exc: BaseException) -> bool:
        import psycopg

        return isinstance(exc, psycopg.errors.QueryCanceled)

    def size_bytes(self, conn: Any) -> int:
        with conn.cursor() as cur:
            cur.execute("SELECT COALESCE(SUM(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
                        "WHERE c.relname IN ('mentions', 'mention_texts', 'mention_watches') "
                        "AND c.relkind = 'r' AND pg_table_is_visible(c.oid)")
            return int(cur.fetchone()[0])

    def insert_rows(self, cur: Any, rows: list[Row]) -> int:
        cur.executemany(
            "INSERT INTO mentions (key, source, author, verified, language, sentiment, "
            "priority, reach, posted_at, stored_at) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (key) DO NOTHING",
            [(r.key, r.source, r.author, r.verified, r.language, r.sentiment, r.priority,
              r.reach, r.posted_at, r.stored_at) for r in rows])
        stored = int(cur.rowcount)
        cur.executemany(
            "INSERT INTO mention_texts (id, url, words, tsv, record) "
            "SELECT id, %s, %s, %s::tsvector, %s FROM mentions WHERE key = %s "
            "ON CONFLICT (id) DO NOTHING",
            [(r.url, r.words, r.tsvector, r.record, r.key) for r in rows])
        cur.executemany(_LINK_WATCHES.format(ph="%s"),
                        [(w, s, r.key) for r in rows for w, s in r.watch_stories()])
        return stored

    def fts_atom(self, tokens: tuple[str, ...], prefix: bool) -> str:
        # Tokens are word characters and a sigil (agents/store/text.py): quoting suffices.
        quoted = [f"'{t}'" for t in (t.replace("\\", "").replace("'", "''") for t in tokens)]
        if prefix:
            quoted[-1] += ":*"
        return "(" + " <-> ".join(quoted) + ")"

    def fts_join(self, op: Literal["and", "or"], parts: list[str]) -> str:
        if len(parts) == 1:
            return parts[0]
        return "(" + (" & " if op == "and" else " | ").join(parts) + ")"

    def fts_not(self, positive: str | None, negative: str) -> str:
        return f"!{negative}" if positive is None else f"({positive} & !{negative})"

    def fts_condition(self, mode: FtsMode) -> str:
        # PostgreSQL's planner weighs the GIN index against the others itself.
        return "m.id IN (SELECT t.id FROM mention_texts t WHERE t.tsv @@ {}::tsquery)"

    def wildcard_condition(self, tokens: tuple[str, ...]) -> tuple[str, str]:
        return ("EXISTS (SELECT 1 FROM mention_texts t WHERE t.id = m.id AND t.words ~ {})",
                token_regex(list(tokens)))
