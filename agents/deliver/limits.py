"""The rate limit per target and the digest of what it holds back, free of Faust.

At most ``rate_limit_per_min`` alerts and digests reach one target in any 60 seconds: a
sliding window of the times of its last sends. (Not a token bucket: a bucket of N refilled N
a minute lets a burst of N through and then its refill, so nearly 2N in one minute.) Past the
limit an alert becomes a line of the target's next digest; while lines are held, later alerts
join them, so none overtakes what is held and one digest lists them all. The digest goes out
(:class:`~agents.deliver.stages.DigestRound`) once the window has room, as one of the N.

Why it holds across workers and restarts: notifications are keyed by their target
(``streams.core.topics.notification_key``), so every notification to a target is read by one
worker, the owner of its partition. The window lives in a table (``state``: the
``escucha.rate`` table in the worker) written only while handling one of the target's events,
so its changelog partition is the target's: a restarted worker, or the next owner after a
rebalance, recovers it with the partition. Times are wall clock for the same reason: the
next owner is another process. Held lines are not stored: their events stay unacknowledged
until the digest listing them is sent, so whoever reads the partition next reads them again,
and the ledger's "held" makes :class:`RateLimit` hold them again instead of sending them.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from notifiers.followup import digest_line
from streams.core.records import Notification
from streams.i18n import EN, Lang
from streams.runtime.metrics import Metrics

__all__ = ["STATE_KINDS", "WINDOW_S", "Digests", "Ledger", "RateLimit", "RateWindow",
           "Target"]

#: Kinds that change an existing message; never held back by the rate limit, not counted.
STATE_KINDS = frozenset({"acknowledge", "resolve", "update"})
#: The rate limit's window: ``rate_limit_per_min`` is per this many seconds.
WINDOW_S = 60.0

Ledger = MutableMapping[str, Any]
Target = tuple[str, str]  # (channel, target)


def _state_key(key: Target) -> str:
    return f"{key[0]}:{key[1]}"  # as the notification key: one entry per partition's target


class RateWindow:
    """At most ``per_minute`` sends per target in any :data:`WINDOW_S` seconds."""

    def __init__(self, per_minute: int, *, state: MutableMapping[str, Any] | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.limit = per_minute
        #: target → the wall-clock times of its sends within the window (a list: JSON)
        self.state: MutableMapping[str, Any] = {} if state is None else state
        self._clock = clock

    def recent(self, key: Target) -> list[float]:
        """The times of ``key``'s sends that still count, oldest first."""
        now = self._clock()
        raw = self.state.get(_state_key(key))
        if not isinstance(raw, list):
            return []  # never sent, or an entry this version cannot read: start afresh
        # A time written by a worker whose clock ran far ahead must not block the target
        # for longer than one window: only times within a window of now, either way, count.
        return sorted(float(t) for t in raw
                      if isinstance(t, int | float) and abs(now - float(t)) < WINDOW_S)

    def take(self, key: Target) -> bool:
        """Count one send to ``key`` now, if the window has room; False when it has not."""
        recent = self.recent(key)
        if len(recent) >= self.limit:
            return False
        # A new list each time: a table sends what is assigned to its changelog, and an
        # in-place change would never reach it.
        self.state[_state_key(key)] = [*recent, self._clock()]
        return True


@dataclass
class Digests:
    """Lines held back by the rate limit, per target, until its next digest is sent.

    Each line keeps the token of its notification (the agent's Faust event), which is not
    acknowledged until the digest listing it is sent: a stop or a crash before then leaves
    it unacknowledged, so it is read again and held again by whichever worker reads its
    partition next. Lines being sent in a digest are ``sending`` until it is out.
    """

    held: dict[Target, list[Notification]] = field(default_factory=dict)
    tokens: dict[str, Any] = field(default_factory=dict)
    sending: dict[Target, list[Notification]] = field(default_factory=dict)

    def has(self, key: Target) -> bool:
        """Whether lines for ``key`` wait or are being sent (a new alert then joins them)."""
        return bool(self.held.get(key)) or key in self.sending

    def hold(self, note: Notification, token: Any = None) -> None:
        """Hold ``note`` for its target's next digest (once: a re-read replaces its token)."""
        key = (note.channel, note.target)
        lines = self.held.setdefault(key, [])
        known = [*lines, *self.sending.get(key, [])]
        if note.id not in self.tokens and all(n.id != note.id for n in known):
            lines.append(note)
        if token is not None:
            self.tokens[note.id] = token

    def waiting(self) -> list[Target]:
        """The targets with held lines and no digest being sent."""
        return [k for k, lines in self.held.items() if lines and k not in self.sending]

    def token_of(self, note: Notification) -> Any:
        return self.tokens.get(note.id)

    def start(self, key: Target) -> list[Notification]:
        """Every line held for ``key``, now being sent in one digest."""
        lines = self.held.pop(key, [])
        self.sending[key] = lines
        return lines

    def put_back(self, key: Target, lines: list[Notification]) -> None:
        """The digest of ``lines`` failed: they wait again, ahead of newer ones."""
        self.sending.pop(key, None)
        self.held[key] = lines + self.held.get(key, [])

    def sent(self, key: Target, lines: list[Notification]) -> list[tuple[Notification, Any]]:
        """A digest of ``lines`` went out: each line with its token, to acknowledge (None:
        forgotten by a rebalance, so the partition's next reader holds it again)."""
        self.sending.pop(key, None)
        return [(n, self.tokens.pop(n.id, None)) for n in lines]

    def forget(self) -> None:
        """After a rebalance every unacknowledged notification is read again (and held
        again) from its partition's committed offset: what is held here would be doubled,
        or belong to another worker now."""
        self.held.clear()
        self.tokens.clear()
        self.sending.clear()

    @staticmethod
    def digest_of(key: Target, lines: list[Notification], lang: Lang = EN) -> Notification:
        """One notification that lists the held lines (in the target's ``lang``), sent like
        the last of them.

        Its id names exactly these lines: a digest retried after a restart with the same
        lines is found as sent, one with other lines is a new digest.
        """
        last = lines[-1]
        ids = hashlib.sha256("\n".join(n.id for n in lines).encode()).hexdigest()[:16]
        text = [digest_line(n, lang) for n in lines]
        return last.model_copy(update={
            "id": f"digest:{key[0]}:{key[1]}:{ids}", "kind": "digest",
            "digest": text, "update_of": None})


@dataclass
class RateLimit:
    """Past the window's limit a new alert becomes a line of its target's next digest.

    State changes (acknowledged, resolved, updated) always pass: they edit what was sent. A
    notification the ledger says was held, read again after a restart, is held again: it
    belongs to the digest, not to a window that may have room by now.
    """

    window: RateWindow
    digests: Digests
    ledger: Ledger
    metrics: Metrics

    def __call__(self, note: Notification, token: Any = None) -> Notification | None:
        if note.kind in STATE_KINDS:
            return note
        key = (note.channel, note.target)
        held_before = (self.ledger.get(note.id) or {}).get("state") == "held"
        if not held_before and not self.digests.has(key) and self.window.take(key):
            return note
        if not held_before:
            self.ledger[note.id] = {"state": "held"}
            self.metrics.notifications.labels(note.channel, "digested").inc()
        self.digests.hold(note, token)
        return None
