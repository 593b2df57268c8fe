"""Silences over the web: create, expire and list them, for the API and the console alike.

Like every write on the web server, nothing changes state here: a new silence, or the same
silence again expired (Alertmanager's semantics: ``ends_at`` becomes now, it stays listed),
goes to the silences topic keyed by its id, and every worker's view (streams/runtime/views.py)
takes the newest record of each id; the escalation engine reads that view at every tick.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from datetime import UTC, datetime, timedelta

from streams.core import topics
from streams.core.records import stable_id
from streams.core.security import clean_text
from streams.core.silences import Silence, SilenceState, is_configured, matches_every_incident
from streams.runtime.pipeline import Pipeline

__all__ = ["SILENCE_ID", "STATES", "SilenceError", "expire_silence", "listed_silences",
           "send_silence"]

log = logging.getLogger(__name__)
#: ``s-<hex>`` (made at run time) or ``config-<n>`` (escucha.yaml). Always ``fullmatch``.
SILENCE_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")
STATES: tuple[SilenceState, ...] = ("pending", "active", "expired")
_MAX_BY, _MAX_COMMENT = 80, 500
_VIEW_WAIT_S = 5.0


async def send_silence(pipeline: Pipeline, matchers: dict[str, str], *, minutes: float, by: str,
                       comment: str = "", incident_id: str | None = None,
                       everything: bool = False) -> Silence:
    """Publish a new silence; ``ValueError`` when it would match nothing, last too long, or
    silence every incident without ``everything`` (the API's ``"all": true``)."""
    if not matchers or not 0 < minutes <= 60 * 24 * 30:
        raise ValueError("need matchers and 0 < minutes <= 43200")
    now = datetime.now(UTC)
    silence = Silence(
        id="s-" + stable_id(sorted(matchers.items()), now.isoformat()),
        matchers=matchers, starts_at=now, ends_at=now + timedelta(minutes=minutes),
        created_by=clean_text(by, limit=_MAX_BY) or "api",
        comment=clean_text(comment, limit=_MAX_COMMENT), incident_id=incident_id,
        all=everything)
    universal = matches_every_incident(matchers,
                                       watches=[w.id for w in pipeline.settings.watches])
    if universal and not everything:
        raise ValueError(f"{matchers} would silence every incident; send \"all\": true if "
                         "that is what you mean")
    await pipeline.topic(topics.SILENCES).send(key=silence.id.encode(),
                                               value=json.dumps(silence.to_dict()).encode())
    pipeline.metrics.silences.inc()
    log.info("silence %s for %r by %r, %.0f min%s", silence.id, matchers, silence.created_by,
             minutes, " (every incident)" if universal else "")
    return silence


class SilenceError(Exception):
    """Why a silence cannot be expired; ``status`` is the HTTP answer (404, 409, 503)."""

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message)
        self.status = status


async def expire_silence(pipeline: Pipeline, silence_id: str, *, by: str) -> tuple[Silence, bool]:
    """Expire a silence for every worker: the silence again, with ``ends_at`` now and who did
    it, on the topic that owns silences (every worker's view replaces it by id). Returns the
    silence as it now stands and whether this call expired it (False: it already was, and
    nothing is written, so the first expiry's author stands). :class:`SilenceError` else."""
    view = pipeline.views.silences
    if not SILENCE_ID.fullmatch(silence_id):
        raise SilenceError("no such silence", status=404)
    if is_configured(silence_id):
        if not any(s.id == silence_id for s in view.silences()):
            raise SilenceError("no such silence", status=404)
        # A record on the topic cannot end it for good: the file recreates it at every start,
        # and its id is its position in the file, which changes when the file does.
        raise SilenceError(f"{silence_id} is written in escucha.yaml (escalation.silences."
                           f"{silence_id.removeprefix('config-')}): change its ends_at or remove "
                           "it there, and restart the workers", status=409)
    if not view.ready.is_set():
        try:
            await asyncio.wait_for(view.ready.wait(), _VIEW_WAIT_S)
        except TimeoutError:
            raise SilenceError("this worker is still reading the silences; try again in a "
                               "moment", status=503) from None
    found = next((s for s in view.silences() if s.id == silence_id), None)
    if found is None:
        raise SilenceError("no such silence", status=404)
    who = clean_text(by, limit=_MAX_BY) or "api"
    done = found.expire(by=who, at=datetime.now(UTC))
    if done is found:
        return found, False
    await pipeline.topic(topics.SILENCES).send(key=done.id.encode(),
                                               value=json.dumps(done.to_dict()).encode())
    # Held here at once, so a second request to this worker finds it expired and writes
    # nothing; the record coming back from the topic is this same value.
    view.items[done.id] = done
    pipeline.metrics.silences_expired.inc()
    log.info("silence %s (%r) expired by %r", done.id, done.matchers, who)
    return done, True


def listed_silences(pipeline: Pipeline, states: tuple[str, ...] = STATES, *,
                    limit: int = 500) -> list[tuple[Silence, SilenceState]]:
    """Silences in ``states`` with their state now: active and pending first (ending soonest
    first), then expired ones, most recently ended first."""
    now = datetime.now(UTC)
    found = [(s, state) for s in pipeline.views.silences.silences()
             if (state := s.state(now)) in states]

    def order(pair: tuple[Silence, SilenceState]) -> tuple[bool, float]:
        ends = pair[0].ends_at.timestamp()
        return (pair[1] == "expired", -ends if pair[1] == "expired" else ends)

    return sorted(found, key=order)[:limit]
