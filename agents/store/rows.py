"""An enriched mention as a stored row, and a stored row as what a search returns.

The row keeps the enriched record whole (JSON) beside the folded columns searches use, so an
export gives back exactly what the enriched topic carried. Mention text is attacker-
controlled: it is stored as data only (bound parameters), a NUL character (which PostgreSQL
text cannot hold) is dropped from the columns, and a link is only ever an http(s) URL.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from agents.store.text import document
from streams.core.query import fold
from streams.core.records import EnrichedMention, RecordError, dumps, parse

__all__ = ["Row", "RowError", "StoredMention", "ms", "row_of", "safe_url"]

_MAX_INT = 2**63 - 1


class RowError(ValueError):
    """A record the store cannot keep; the message is the dead letter's reason."""


def ms(when: datetime) -> int:
    """A time as whole milliseconds since the epoch (UTC), as the store keeps times."""
    return int(when.timestamp() * 1000)


def _clean(value: str) -> str:
    return value.replace("\x00", "")


def safe_url(url: str | None) -> str | None:
    """``url`` if it is an http(s) link with a host, else None: a ``javascript:`` or ``data:``
    URL from a source must never become a link in an answer or a page."""
    if not url:
        return None
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    return url.strip()


@dataclass(frozen=True)
class Row:
    """One mention's columns, in the order of the writers' INSERT statements."""

    key: str
    source: str
    author: str
    verified: bool
    language: str
    sentiment: str
    priority: int
    reach: int
    posted_at: int
    stored_at: int
    url: str | None
    words: str
    tsvector: str
    record: str
    watch_ids: tuple[str, ...]
    #: The story in each of ``watch_ids`` (agents/detect/storybook.py); empty: not assigned.
    stories: tuple[str, ...] = ()

    def watch_stories(self) -> list[tuple[str, str | None]]:
        """(watch, story or None) for each watch of the row."""
        stories: tuple[str | None, ...] = self.stories or (None,) * len(self.watch_ids)
        return list(zip(self.watch_ids, stories, strict=True))


def row_of(em: EnrichedMention, *, now: datetime) -> Row:
    """The row for ``em``; :class:`RowError` when it cannot be stored."""
    m = em.mention
    doc = document(m.text)
    watches = tuple(dict.fromkeys([*em.watch_ids, em.watch_id]))
    if not all(watches):
        raise RowError("a watch id is empty")
    if not 0 <= m.author.followers <= _MAX_INT:
        raise RowError(f"author.followers out of range: {m.author.followers}")
    return Row(
        key=_clean(m.key), source=_clean(fold(m.source)),
        author=_clean(fold(m.author.handle).lstrip("@")), verified=m.author.verified,
        language=_clean(fold(m.language or "")), sentiment=em.sentiment.label,
        priority=em.priority, reach=m.author.followers, posted_at=ms(m.created_at),
        stored_at=ms(now), url=safe_url(_clean(m.url or "")), words=doc.text,
        tsvector=doc.tsvector(),
        # JSON escapes control characters, NUL included: the record is kept byte for byte.
        record=dumps(em).decode(), watch_ids=tuple(_clean(w) for w in watches))


@dataclass(frozen=True)
class StoredMention:
    """A search result: the stored record and what the store knows about it now."""

    id: int
    posted_at: int
    priority: int
    reach: int
    watch_ids: tuple[str, ...]
    record: EnrichedMention

    @classmethod
    def of(cls, *, id: int, posted_at: int, priority: int, reach: int, record: str,
           watch_ids: tuple[str, ...]) -> StoredMention:
        try:
            em = parse(EnrichedMention, record)
        except RecordError as exc:  # only a hand-edited database gets here
            raise RowError(f"stored mention {id} is unreadable: {exc}") from exc
        return cls(id=id, posted_at=posted_at, priority=priority, reach=reach,
                   watch_ids=watch_ids, record=em)

    @property
    def url(self) -> str | None:
        return safe_url(self.record.mention.url)

    def summary(self) -> dict[str, Any]:
        """The JSON the API answers for one mention."""
        em, m = self.record, self.record.mention
        return {
            "key": m.key, "url": self.url, "watch_ids": list(self.watch_ids),
            "posted_at": datetime.fromtimestamp(self.posted_at / 1000, UTC).isoformat(),
            "source": m.source, "author": m.author.handle, "author_name": m.author.name,
            "verified": m.author.verified, "reach": m.author.followers,
            "language": m.language, "sentiment": em.sentiment.label,
            "priority": em.priority, "reasons": list(em.reasons), "text": m.text,
            "engagement": m.engagement.model_dump(),
        }

    def enriched_lines(self, watches: frozenset[str] | None = None) -> list[str]:
        """The record once per watch it belongs to (all, or those in ``watches``), as the
        enriched topic carried it: the JSON lines ``escucha backtest`` reads."""
        out = []
        for watch in self.watch_ids:
            if watches is None or watch in watches:
                out.append(self.record.model_copy(update={"watch_id": watch})
                           .model_dump_json())
        return out
