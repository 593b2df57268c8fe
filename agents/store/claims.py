"""Claims: one person answers a mention ("Ana is answering this"), so two never do.

A claim moves ``claimed`` → ``answered`` (with the reply's http(s) link) or
``not_answering`` (with a reason), or back to ``released`` (anyone may claim it again). A
person may also mark a mention answered or not-to-answer without claiming it first, as long
as nobody else holds it. Every change is one conditional upsert on the ``claims`` primary key
(schema version 2): the database, not the worker, decides, so of two responders claiming at
once on two workers exactly one wins and the other is told who has it. Each change is also
appended to ``claim_events``, the claim's history.

A story (agents/detect/storybook.py) is claimed the same way with ``kind="story"``: one
person answers the whole copy-paste storm; the subject is the story id, which must have
stored mentions.

Names and reasons are free text from requests: kept as one clean line, bound as parameters.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Literal

from agents.store.rows import ms, safe_url
from agents.store.store import MentionStore
from streams.core.security import clean_text
from streams.i18n import EN, Translations
from streams.i18n.timeline import say_claim

__all__ = ["ACTIONS", "KINDS", "Claim", "ClaimBook", "ClaimError", "ClaimOutcome", "ClaimState",
           "Kind", "UnknownSubject"]

ClaimState = Literal["claimed", "answered", "not_answering", "released"]
Action = Literal["claim", "answer", "release", "not-answering"]
ACTIONS: Final[tuple[Action, ...]] = ("claim", "answer", "release", "not-answering")
_STATE_OF: Final[dict[Action, ClaimState]] = {
    "claim": "claimed", "answer": "answered", "release": "released",
    "not-answering": "not_answering"}
Kind = Literal["mention", "story"]
KINDS: Final[tuple[Kind, ...]] = ("mention", "story")
MAX_BY: Final = 80
MAX_REASON: Final = 500
MAX_URL: Final = 2000
_COLUMNS: Final = "kind, subject, state, by_whom, reply_url, reason, claimed_at, updated_at"


class ClaimError(ValueError):
    """A claim request that cannot be carried out as sent; the message says what to send."""


class UnknownSubject(ClaimError):
    """The mention is not in the store (never stored, or gone with retention)."""


@dataclass(frozen=True)
class Claim:
    kind: str
    subject: str
    state: ClaimState
    by: str
    reply_url: str | None
    reason: str | None
    claimed_at: datetime
    updated_at: datetime

    @property
    def held(self) -> bool:
        """Whether someone has it (claimed, answered or declined): others cannot take it."""
        return self.state != "released"

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "subject": self.subject, "state": self.state,
                "by": self.by, "reply_url": self.reply_url, "reason": self.reason,
                "claimed_at": self.claimed_at.isoformat(),
                "updated_at": self.updated_at.isoformat()}

    def params(self) -> dict[str, str]:
        """What people are told of it, as data (streams/i18n/timeline.py ``say_claim``)."""
        return {"state": self.state, "who": self.by, "reason": self.reason or ""}

    def says(self, tr: Translations = EN.tr) -> str:
        """One line for people, in ``tr``'s language: who has it and how far they got."""
        return say_claim(self.params(), tr)


@dataclass(frozen=True)
class ClaimOutcome:
    won: bool  # the change was made (or was already so: the same person claiming again)
    claim: Claim | None  # the claim as it stands now
    changed: bool = False  # a new state was recorded (a history entry was added)


def _dt(value: Any) -> datetime:
    return datetime.fromtimestamp(int(value) / 1000, UTC)


def _claim(row: tuple[Any, ...]) -> Claim:
    kind, subject, state, by, url, reason, claimed_at, updated_at = row
    return Claim(kind=str(kind), subject=str(subject), state=state, by=str(by),
                 reply_url=url, reason=reason, claimed_at=_dt(claimed_at),
                 updated_at=_dt(updated_at))


class ClaimBook:
    """Claims on the mentions of one :class:`MentionStore` (blocking: call from a thread)."""

    def __init__(self, store: MentionStore) -> None:
        self.store = store
        self._ph = store.backend.placeholder

    def act(self, key: str, action: str, *, by: str, reply_url: str | None = None,
            reason: str | None = None, now: datetime | None = None,
            kind: Kind = "mention") -> ClaimOutcome:
        """Do ``action`` (one of :data:`ACTIONS`) on mention ``key`` (or story, by ``kind``)
        for ``by``.

        Raises :class:`ClaimError` for a bad request (no name, a reply link that is not
        http(s), no reason), :class:`UnknownSubject` for a mention the store lacks; a claim
        someone else holds is not an error: the outcome is not won and says who has it."""
        if kind not in KINDS:
            raise ClaimError(f"kind: use one of {', '.join(KINDS)}")
        if action not in _STATE_OF:
            raise ClaimError(f"action: use one of {', '.join(ACTIONS)}")
        who = clean_text(by, limit=MAX_BY)
        if not who:
            raise ClaimError("by: say who you are (a name, up to 80 characters)")
        url = None
        if action == "answer":
            url = safe_url(reply_url) if reply_url and len(reply_url) <= MAX_URL else None
            if url is None:
                raise ClaimError("reply_url: the link to the reply, an http(s) URL")
        why = None
        if action == "not-answering":
            why = clean_text(reason, limit=MAX_REASON)
            if not why:
                raise ClaimError("reason: say why this mention is not to be answered")
        at = ms(now or datetime.now(UTC))
        state = _STATE_OF[action]  # type: ignore[index]
        with self.store.transaction() as cur:
            self._require_subject(cur, kind, key)
            if state == "released":
                changed = self._release(cur, kind, key, who, at)
            else:
                changed = self._upsert(cur, kind, key, state, who, url, why, at)
            if changed:
                cur.execute(f"INSERT INTO claim_events (kind, subject, state, by_whom, "
                            f"reply_url, reason, at) VALUES ({self._phs(7)})",
                            (kind, key, state, who, url, why, at))
            current = self._read(cur, kind, key)
        # Claiming again what one already holds is a success that changes nothing.
        won = changed or (action == "claim" and current is not None
                          and current.state == "claimed" and current.by == who)
        return ClaimOutcome(won=won, claim=current, changed=changed)

    def _phs(self, n: int) -> str:
        return ", ".join([self._ph] * n)

    def _require_subject(self, cur: Any, kind: Kind, key: str) -> None:
        if kind == "story":
            cur.execute(f"SELECT 1 FROM mention_watches WHERE story = {self._ph} LIMIT 1",
                        (key,))
        else:
            cur.execute(f"SELECT 1 FROM mentions WHERE key = {self._ph}", (key,))
        if cur.fetchone() is None:
            raise UnknownSubject(f"no stored {kind} {key!r}")

    def _upsert(self, cur: Any, kind: Kind, key: str, state: ClaimState, who: str, url: str | None,
                why: str | None, at: int) -> bool:
        # Free (no row, or released) anyone may take; a claim held may only be moved on by
        # its holder. A claim is not re-taken by its own holder: nothing would change.
        mine = "" if state == "claimed" else \
            " OR (claims.state = 'claimed' AND claims.by_whom = excluded.by_whom)"
        cur.execute(
            f"INSERT INTO claims ({_COLUMNS}) VALUES ({self._phs(8)}) "
            "ON CONFLICT (kind, subject) DO UPDATE SET state = excluded.state, "
            "by_whom = excluded.by_whom, reply_url = excluded.reply_url, "
            "reason = excluded.reason, updated_at = excluded.updated_at, "
            "claimed_at = CASE WHEN claims.state = 'released' THEN excluded.claimed_at "
            "ELSE claims.claimed_at END "
            f"WHERE claims.state = 'released'{mine}",
            (kind, key, state, who, url, why, at, at))
        return int(cur.rowcount) == 1

    def _release(self, cur: Any, kind: Kind, key: str, who: str, at: int) -> bool:
        ph = self._ph
        cur.execute(f"UPDATE claims SET state = 'released', updated_at = {ph} "
                    f"WHERE kind = {ph} AND subject = {ph} AND state = 'claimed' "
                    f"AND by_whom = {ph}", (at, kind, key, who))
        return int(cur.rowcount) == 1

    def _read(self, cur: Any, kind: Kind, key: str) -> Claim | None:
        cur.execute(f"SELECT {_COLUMNS} FROM claims WHERE kind = {self._ph} AND subject = "
                    f"{self._ph}", (kind, key))
        row = cur.fetchone()
        return _claim(row) if row else None

    def get(self, key: str, *, kind: Kind = "mention") -> Claim | None:
        return self.claims([key], kind=kind).get(key)

    def claims(self, keys: Iterable[str], *, kind: Kind = "mention") -> dict[str, Claim]:
        """The claims on these mentions (a page of them) or stories, by key or story id."""
        wanted = list(dict.fromkeys(keys))
        if not wanted:
            return {}
        with self.store.reading() as cur:
            cur.execute(f"SELECT {_COLUMNS} FROM claims WHERE kind = {self._ph} AND subject "
                        f"IN ({self._phs(len(wanted))})", [kind, *wanted])
            return {c.subject: c for c in map(_claim, cur.fetchall())}

    def history(self, key: str, *, kind: Kind = "mention") -> list[Claim]:
        """Every change of the claim on ``key``, oldest first."""
        with self.store.reading() as cur:
            cur.execute("SELECT kind, subject, state, by_whom, reply_url, reason, at, at "
                        f"FROM claim_events WHERE kind = {self._ph} AND subject = {self._ph} "
                        "ORDER BY id", (kind, key))
            return [_claim(row) for row in cur.fetchall()]
