"""The grouped view: one row per story instead of one per mention ("show stories, not 300
copies"), with the same filters as a search.

A story's row: how many stored mentions it has among those the search finds, from how many
distinct authors, when it was first and last seen, and its first stored copy as the sample
(its text is the mention's, attacker-controlled: pages escape it). Rows are sorted by when
the story was last seen and paged by key set on (last seen, story id), as mentions are.

Mentions stored before schema version 3 have no story until a rebuild gives them one; they
are left out of this view (a search without ``group`` still finds them).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from agents.store.rows import StoredMention
from agents.store.search import Search, encode_story_cursor, where_of
from agents.store.store import MentionStore

__all__ = ["StoryPage", "StoryRow", "story_page"]

_LAST: Final = "MAX(m.posted_at)"


@dataclass(frozen=True)
class StoryRow:
    story: str
    count: int  # mentions found in it (each counted once, whatever its watches)
    authors: int  # distinct authors among them
    first_seen: int  # ms since the epoch
    last_seen: int
    sample: StoredMention | None  # the first stored copy (None: gone with retention meanwhile)

    def summary(self) -> dict[str, Any]:
        """The JSON the API answers for one story."""
        def iso(value: int) -> str:
            return datetime.fromtimestamp(value / 1000, UTC).isoformat()

        em = self.sample.record if self.sample else None
        return {"story": self.story, "count": self.count, "authors": self.authors,
                "first_seen": iso(self.first_seen), "last_seen": iso(self.last_seen),
                "sample": {"key": em.mention.key, "text": em.mention.text,
                           "author": em.mention.author.handle,
                           "url": self.sample.url if self.sample else None} if em else None}


@dataclass(frozen=True)
class StoryPage:
    stories: list[StoryRow]
    cursor: str | None  # where the next page starts; None on the last page


def story_page(store: MentionStore, search: Search) -> StoryPage:
    """One page of ``search``'s stories (``search.group`` is "story"); blocking."""
    dialect = store.backend
    ph = dialect.placeholder
    params: list[Any] = []
    where, _hint = where_of(search, dialect, params, joined=True)
    where.insert(0, "w.story IS NOT NULL")
    having = ""
    if search.story_after is not None:
        cmp = "<" if search.order == "desc" else ">"
        having = f" HAVING ({_LAST}, w.story) {cmp} ({ph}, {ph})"
        params.extend(search.story_after)
    direction = "DESC" if search.order == "desc" else "ASC"
    sql = ("SELECT w.story, COUNT(DISTINCT m.id), COUNT(DISTINCT m.author), "
           f"MIN(m.posted_at), {_LAST}, MIN(m.id) "
           "FROM mentions m JOIN mention_watches w ON w.mention_id = m.id "
           "WHERE " + " AND ".join(where) + " GROUP BY w.story" + having
           + f" ORDER BY {_LAST} {direction}, w.story {direction} LIMIT {ph}")
    params.append(search.limit + 1)
    found = store.read_rows(sql, params)
    page = found[:search.limit]
    samples = _samples(store, [int(row[5]) for row in page])
    rows = [StoryRow(story=str(story), count=int(n), authors=int(authors),
                     first_seen=int(first), last_seen=int(last), sample=samples.get(int(sid)))
            for story, n, authors, first, last, sid in page]
    cursor = None
    if len(found) > search.limit and rows:
        cursor = encode_story_cursor(search, rows[-1].last_seen, rows[-1].story)
    return StoryPage(rows, cursor)


def _samples(store: MentionStore, ids: list[int]) -> dict[int, StoredMention]:
    if not ids:
        return {}
    ph = ", ".join([store.backend.placeholder] * len(ids))
    found = store.read_rows(
        f"SELECT m.id, m.posted_at, m.priority, m.reach, t.record FROM mentions m "
        f"JOIN mention_texts t ON t.id = m.id WHERE m.id IN ({ph})", ids)
    return {int(i): StoredMention.of(id=int(i), posted_at=int(p), priority=int(pr),
                                     reach=int(r), record=str(rec), watch_ids=())
            for i, p, pr, r, rec in found}
