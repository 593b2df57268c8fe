"""The store's tables, as numbered migrations per backend, and the code that applies them.

Version 1 (both backends):

- ``mentions``: one narrow row per mention key (``source:id``), whatever the number of
  watches it matched: what searches filter and sort on, kept folded (lower case, no accents),
  times in milliseconds since the epoch (UTC). ``id`` is the row's own integer, the handle
  later tables refer to (a story id column and a claims table are migrations to come).
- ``mention_texts``: the same ``id`` with the bulky part, read only for a page's rows:
  ``words``, the indexed text (agents/store/text.py), and ``record``, the enriched mention as
  it arrived (JSON), which exports and the API answer from.
- ``mention_watches``: which watches each mention belongs to, with its post time, so retention
  can be per watch: a mention goes when the last of its watches lets it go.
- the full-text index: an FTS5 table over ``mention_texts.words`` (SQLite, kept in step by
  triggers), a ``tsvector`` column of ``mention_texts`` with a GIN index (PostgreSQL).
- ``store_schema``: the versions applied.

Version 2 (both backends):

- ``claims``: who answers a mention (``kind`` 'mention'; 'story' is kept for stories), one row
  per subject: ``state`` claimed, answered, not_answering or released, ``reply_url`` (http(s)
  only), ``reason``, times in milliseconds. Its primary key is what makes claiming atomic
  across workers: one conditional upsert wins (agents/store/claims.py). No foreign key to
  ``mentions``: a story's claim has no mention row, and the record outlives retention. Made
  "if not exists": a rebuild (``clear``) drops the mentions, never what people decided.
- ``claim_events``: every change of a claim, in order (who, what, when): its history.

Version 3 (both backends):

- ``mention_watches.story``: the mention's story in that watch (near-duplicates folded
  together, agents/detect/storybook.py), per watch as detection has it: the same mention may
  open a story in one watch and join another's in a second. NULL for rows stored before
  version 3 until a rebuild fills it in. Indexed by (watch, story, time): a story's
  mentions, and the grouped view of a watch, are read from the index.

A migration is applied once, in one transaction, under a lock (SQLite ``BEGIN IMMEDIATE``,
PostgreSQL an advisory lock: several workers may start together). A database already at a
newer version than this code knows is refused, not touched.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

__all__ = ["MIGRATIONS", "Backend", "Migration", "SchemaError", "latest_version", "migrate"]

Backend = Literal["sqlite", "postgresql"]
#: PostgreSQL advisory lock key of the migrations (any constant: "escucha" in ASCII).
_LOCK_KEY: Final = 0x65736375636861


class SchemaError(Exception):
    """The database cannot be used by this version of escucha; the message says why."""


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    statements: dict[Backend, tuple[str, ...]]


_V1_SQLITE = (
    # Narrow rows: searches filter and sort here, a page's worth of texts is read after.
    """CREATE TABLE mentions (
        id INTEGER PRIMARY KEY,
        key TEXT NOT NULL UNIQUE,
        source TEXT NOT NULL,
        author TEXT NOT NULL,
        verified INTEGER NOT NULL,
        language TEXT NOT NULL,
        sentiment TEXT NOT NULL,
        priority INTEGER NOT NULL,
        reach INTEGER NOT NULL,
        posted_at INTEGER NOT NULL,
        stored_at INTEGER NOT NULL)""",
    "CREATE INDEX mentions_by_time ON mentions (posted_at, id)",
    "CREATE INDEX mentions_by_priority ON mentions (priority, posted_at, id)",
    "CREATE INDEX mentions_by_reach ON mentions (reach, posted_at, id)",
    """CREATE TABLE mention_texts (
        id INTEGER PRIMARY KEY REFERENCES mentions (id) ON DELETE CASCADE,
        url TEXT,
        words TEXT NOT NULL,
        record TEXT NOT NULL)""",
    """CREATE TABLE mention_watches (
        watch_id TEXT NOT NULL,
        mention_id INTEGER NOT NULL REFERENCES mentions (id) ON DELETE CASCADE,
        posted_at INTEGER NOT NULL,
        PRIMARY KEY (watch_id, mention_id)) WITHOUT ROWID""",
    "CREATE INDEX mention_watches_by_time ON mention_watches (watch_id, posted_at)",
    "CREATE INDEX mention_watches_by_mention ON mention_watches (mention_id)",
    # External content: the words live once, in mention_texts; the index holds postings.
    """CREATE VIRTUAL TABLE mention_fts USING fts5 (
        words, content='mention_texts', content_rowid='id',
        tokenize="unicode61 remove_diacritics 2 tokenchars '_@#$'")""",
    """CREATE TRIGGER mention_texts_fts_insert AFTER INSERT ON mention_texts BEGIN
        INSERT INTO mention_fts (rowid, words) VALUES (new.id, new.words); END""",
    """CREATE TRIGGER mention_texts_fts_delete AFTER DELETE ON mention_texts BEGIN
        INSERT INTO mention_fts (mention_fts, rowid, words)
        VALUES ('delete', old.id, old.words); END""",
    """CREATE TRIGGER mention_texts_fts_update AFTER UPDATE OF words ON mention_texts BEGIN
        INSERT INTO mention_fts (mention_fts, rowid, words)
        VALUES ('delete', old.id, old.words);
        INSERT INTO mention_fts (rowid, words) VALUES (new.id, new.words); END""",
)

_V1_POSTGRESQL = (
    """CREATE TABLE mentions (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        key TEXT NOT NULL UNIQUE,
        source TEXT NOT NULL,
        author TEXT NOT NULL,
        verified BOOLEAN NOT NULL,
        language TEXT NOT NULL,
        sentiment TEXT NOT NULL,
        priority INTEGER NOT NULL,
        reach BIGINT NOT NULL,
        posted_at BIGINT NOT NULL,
        stored_at BIGINT NOT NULL)""",
    "CREATE INDEX mentions_by_time ON mentions (posted_at, id)",
    "CREATE INDEX mentions_by_priority ON mentions (priority, posted_at, id)",
    "CREATE INDEX mentions_by_reach ON mentions (reach, posted_at, id)",
    """CREATE TABLE mention_texts (
        id BIGINT PRIMARY KEY REFERENCES mentions (id) ON DELETE CASCADE,
        url TEXT,
        words TEXT NOT NULL,
        tsv TSVECTOR NOT NULL,
        record TEXT NOT NULL)""",
    "CREATE INDEX mention_texts_words ON mention_texts USING GIN (tsv)",
    """CREATE TABLE mention_watches (
        watch_id TEXT NOT NULL,
        mention_id BIGINT NOT NULL REFERENCES mentions (id) ON DELETE CASCADE,
        posted_at BIGINT NOT NULL,
        PRIMARY KEY (watch_id, mention_id))""",
    "CREATE INDEX mention_watches_by_time ON mention_watches (watch_id, posted_at)",
    "CREATE INDEX mention_watches_by_mention ON mention_watches (mention_id)",
)

_V2_CLAIMS = (
    """CREATE TABLE IF NOT EXISTS claims (
        kind TEXT NOT NULL,
        subject TEXT NOT NULL,
        state TEXT NOT NULL,
        by_whom TEXT NOT NULL,
        reply_url TEXT,
        reason TEXT,
        claimed_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL,
        PRIMARY KEY (kind, subject))""",
)
# ``id`` orders two changes made in the same millisecond (a claim, then its answer).
_V2_EVENTS = """CREATE TABLE IF NOT EXISTS claim_events (
        id {id},
        kind TEXT NOT NULL,
        subject TEXT NOT NULL,
        state TEXT NOT NULL,
        by_whom TEXT NOT NULL,
        reply_url TEXT,
        reason TEXT,
        at BIGINT NOT NULL)"""
_V2_INDEX = "CREATE INDEX IF NOT EXISTS claim_events_by_subject ON claim_events (kind, subject, id)"
_V2_SQLITE = (*_V2_CLAIMS, _V2_EVENTS.format(id="INTEGER PRIMARY KEY"), _V2_INDEX)
_V2_POSTGRESQL = (*_V2_CLAIMS,
                  _V2_EVENTS.format(id="BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY"),
                  _V2_INDEX)

_V3 = (
    "ALTER TABLE mention_watches ADD COLUMN story TEXT",
    "CREATE INDEX mention_watches_by_story ON mention_watches (watch_id, story, posted_at)",
    # A story across watches (no watch filter) and a story's claim check find it here.
    "CREATE INDEX mention_watches_story ON mention_watches (story)",
)

#: Every migration, oldest first; append, never edit one that has shipped.
MIGRATIONS: Final[tuple[Migration, ...]] = (
    Migration(1, "mentions, their watches and the full-text index",
              {"sqlite": _V1_SQLITE, "postgresql": _V1_POSTGRESQL}),
    Migration(2, "claims: who answers a mention, and their history",
              {"sqlite": _V2_SQLITE, "postgresql": _V2_POSTGRESQL}),
    Migration(3, "stories: the story of each mention in each of its watches",
              {"sqlite": _V3, "postgresql": _V3}),
)


def latest_version(migrations: Sequence[Migration] = MIGRATIONS) -> int:
    return max((m.version for m in migrations), default=0)


_Execute = Callable[..., Any]


def migrate(conn: Any, backend: Backend, *, now_ms: int,
            migrations: Sequence[Migration] = MIGRATIONS) -> list[int]:
    """Bring the database at ``conn`` (a sqlite3 or psycopg connection, autocommit off for
    psycopg) to the latest version; the versions applied now, in order."""
    ph = "?" if backend == "sqlite" else "%s"
    cur = conn.cursor()
    if backend == "sqlite":
        conn.commit()
        cur.execute("BEGIN IMMEDIATE")  # one migrator at a time, readers go on
    else:
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
    try:
        cur.execute("CREATE TABLE IF NOT EXISTS store_schema (version INTEGER PRIMARY KEY, "
                    "description TEXT NOT NULL, applied_at BIGINT NOT NULL)")
        cur.execute("SELECT COALESCE(MAX(version), 0) FROM store_schema")
        current = int(cur.fetchone()[0])
        latest = latest_version(migrations)
        if current > latest:
            raise SchemaError(
                f"the mention store is at schema version {current}, newer than this escucha "
                f"knows ({latest}): run the newer escucha, or point store.url elsewhere")
        applied = []
        for migration in sorted(migrations, key=lambda m: m.version):
            if migration.version <= current:
                continue
            for statement in migration.statements[backend]:
                cur.execute(statement)
            cur.execute(f"INSERT INTO store_schema (version, description, applied_at) "
                        f"VALUES ({ph}, {ph}, {ph})",
                        (migration.version, migration.description, now_ms))
            applied.append(migration.version)
        conn.commit()
        return applied
    except BaseException:
        conn.rollback()
        raise
