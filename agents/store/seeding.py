"""Seeding the store's story indexes at start, from the store's own recent rows.

A worker's :class:`~agents.detect.storybook.StoryBook` lives in memory: without this, a story
still running when the worker restarts would continue under a second id, and the console's
grouped view would show one storm as two stories. So before the store stage writes its first
batch, each watch's index is given the watch's mentions of the last ``hours`` (at most
``per_watch`` of them, the newest: a bound on the start's time and memory), oldest first,
with the story ids they were stored under. A copy arriving after the restart then joins the
story's existing id. Rows stored before schema version 3 have no story and are skipped; so is
a record that no longer parses (a hand-edited database): seeding is a best effort, never a
reason not to write.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from agents.store.rows import ms
from agents.store.store import MentionStore

__all__ = ["seed_stories"]

log = logging.getLogger(__name__)


def seed_stories(store: MentionStore, *, watches: Sequence[str], hours: float,
                 per_watch: int, now: datetime | None = None) -> int:
    """Seed ``store.stories`` for ``watches`` from the last ``hours`` of stored rows (blocking:
    call from a thread); how many mentions were read back. Raises what
    :meth:`MentionStore.read_rows` raises (the database unavailable, a read past the search
    timeout)."""
    if hours <= 0 or per_watch <= 0:
        return 0
    since = ms((now or datetime.now(UTC)) - timedelta(hours=hours))
    ph = store.backend.placeholder
    # Newest first under the bound (the (watch_id, posted_at) index answers it), then
    # reversed: the index must see a story's copies in the order they were posted.
    sql = ("SELECT w.story, w.posted_at, t.record FROM mention_watches w "
           "JOIN mention_texts t ON t.id = w.mention_id "
           f"WHERE w.watch_id = {ph} AND w.posted_at >= {ph} AND w.story IS NOT NULL "
           f"ORDER BY w.posted_at DESC, w.mention_id DESC LIMIT {ph}")
    total = 0
    for watch in dict.fromkeys(watches):
        rows = store.read_rows(sql, (watch, since, per_watch))
        total += store.stories.seed(watch, _mentions(reversed(rows), watch=watch))
    return total


def _mentions(rows: Iterator[tuple[Any, ...]], *,
              watch: str) -> Iterator[tuple[str, str, float]]:
    for story, posted_at, record in rows:
        try:
            text = json.loads(record)["mention"]["text"]
        except (ValueError, KeyError, TypeError):
            log.warning("store: a stored mention of watch %r is unreadable; its story is not "
                        "seeded", watch)
            continue
        if isinstance(text, str):
            yield text, str(story), int(posted_at) / 1000
