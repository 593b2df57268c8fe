"""``POST /api/mentions/{key}/claim|answer|release|not-answering``: one person per answer.

Body (JSON): ``by`` (who), ``reply_url`` (answer: the http(s) link to the reply), ``reason``
(not-answering). ``GET /api/mentions/{key}/claim`` reads the claim and its history.
Answers: 200 with the claim when the change was made (or already so); 409 with the claim
when someone else has it (``says`` names them); 404 for a mention the store lacks.
``/api/stories/{id}/...`` does the same for a whole story (one person answers the
copy-paste storm): the id is the 16 hex digits the store gives (400 for anything else), 404
for a story with no stored mention.

The decision is the database's (agents/store/claims.py), so two workers cannot both let a
claim through. A change on a mention that is a sample of a live incident is also handed to
that incident's worker as an Ack (action ``claim``): its timeline keeps who answers whom.
Bearer-token protected like every /api route; the database work runs in a thread.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, Final

from aiohttp import web as aioweb
from faust.web import Request, Response

from agents.store.claims import (
    ACTIONS,
    KINDS,
    Claim,
    ClaimBook,
    ClaimError,
    Kind,
    UnknownSubject,
)
from agents.store.search import STORY_ID
from agents.store.store import StoreError, StoreUnavailable
from streams.core.security import BadRequest
from streams.runtime.pipeline import Pipeline
from streams.web.api import Page, Refused, check_bearer, read_body, send_ack

__all__ = ["claim_note", "install_claims", "record_on_incidents"]

log = logging.getLogger(__name__)
_CHALLENGE: Final = {"WWW-Authenticate": 'Bearer realm="escucha"'}


def _refusal(status: int, message: str, headers: dict[str, str] | None = None) -> Refused:
    return Refused(aioweb.json_response({"error": message}, status=status, headers=headers))


def claim_note(claim: Claim) -> str:
    """The claim in one line, for the incident's timeline and its messages."""
    return claim.says()[:300]


async def record_on_incidents(pipeline: Pipeline, claim: Claim, *, source: str) -> int:
    """Put the change on the timeline of every unresolved incident that has the mention
    among its samples; how many incidents were told."""
    view = pipeline.views.incidents
    told = 0
    for inc in view.incidents() if view is not None else []:
        if inc.state != "resolved" and any(s.key == claim.subject for s in inc.samples):
            await send_ack(pipeline, inc.id, "claim", by=claim.by, source=source,
                           note=claim_note(claim), mention=claim.subject,
                           claim=claim.params())
            told += 1
    return told


async def act(pipeline: Pipeline, book: ClaimBook, key: str, action: str, *, by: str,
              reply_url: str | None, reason: str | None, source: str,
              kind: Kind = "mention") -> tuple[int, Any]:
    """Do a claim action on a mention or a story (``kind``): (HTTP status, JSON body).
    Shared by the API and the console."""
    status, body = await _act(pipeline, book, key, action, by=by, reply_url=reply_url,
                              reason=reason, source=source, kind=kind)
    if action in ACTIONS:  # anything else was never a claim action: no label for it
        outcome = {200: "done", 409: "taken", 400: "refused", 404: "refused"}.get(status,
                                                                                 "failed")
        pipeline.metrics.claims.labels(action, outcome).inc()
    return status, body


async def _act(pipeline: Pipeline, book: ClaimBook, key: str, action: str, *, by: str,
               reply_url: str | None, reason: str | None, source: str,
               kind: Kind) -> tuple[int, Any]:
    try:
        out = await asyncio.to_thread(book.act, key, action, by=by, reply_url=reply_url,
                                      reason=reason, kind=kind)
    except UnknownSubject as exc:
        return 404, {"error": str(exc)}
    except ClaimError as exc:
        return 400, {"error": str(exc)}
    except StoreUnavailable as exc:
        log.warning("claim on %r: %s", key, exc)
        return 503, {"error": "the mention store is unavailable; try again shortly"}
    except StoreError as exc:
        log.error("claim on %r: %s", key, exc)
        return 500, {"error": "the mention store cannot answer; see the worker's log"}
    claim = out.claim.to_dict() if out.claim else None
    says = out.claim.says() if out.claim else "nobody has it"
    # Incidents keep mention samples: a story's claim has no sample to match.
    if out.changed and out.claim is not None and kind == "mention":
        await record_on_incidents(pipeline, out.claim, source=source)
        log.info("claim on %r: %s via %s", key, out.claim.state, source)
    if not out.won:
        return 409, {"error": f"not yours: {says}" if out.claim and out.claim.held
                     else "you do not hold this claim", "claim": claim, "says": says}
    return 200, {"claim": claim, "says": says}


def install_claims(pipeline: Pipeline, *, book: ClaimBook | None) -> None:
    """Add the claim routes; with ``book`` None (``store.enabled: false``) they say so."""
    tokens = [t.get_secret_value().encode() for t in pipeline.settings.api.tokens]

    def authorize(request: Request) -> None:
        if check_bearer(pipeline, request, kind="api_token", secrets=tokens) is None:
            raise _refusal(401, "missing or invalid bearer token" if tokens else
                           "no API tokens configured: set api.tokens", _CHALLENGE)

    for kind in KINDS:
        _serve(pipeline, book, kind, authorize)


#: Where each kind's claims are served, and what the path's subject is called.
_BASE: Final[dict[Kind, tuple[str, str]]] = {"mention": ("/api/mentions", "key"),
                                             "story": ("/api/stories", "id")}


def _serve(pipeline: Pipeline, book: ClaimBook | None, kind: Kind,
           authorize: Callable[[Request], None]) -> None:
    base, name = _BASE[kind]

    def bad_subject(key: str) -> str | None:
        # A story id is checked before the database is asked: a typo gets a clear 400,
        # never a lookup of whatever was sent.
        if kind == "story" and not STORY_ID.fullmatch(key):
            return "a story id is 16 hexadecimal digits (the story column of /api/mentions)"
        return None

    @pipeline.app.serve(base + "/{key}/{action}", access="token")
    class ClaimAction(Page):
        async def get(self, request: Request, key: str, action: str) -> Response:
            authorize(request)
            if book is None or action != "claim":
                return self.json({"error": f"use GET {base}/<{name}>/claim (the store "
                                  "must be on)"}, status=404)
            if (problem := bad_subject(key)) is not None:
                return self.json({"error": problem}, status=400)
            claim = await asyncio.to_thread(book.get, key, kind=kind)
            history = await asyncio.to_thread(book.history, key, kind=kind)
            return self.json({"claim": claim.to_dict() if claim else None,
                              "says": claim.says() if claim else "nobody has it",
                              "history": [c.to_dict() for c in history]})

        async def post(self, request: Request, key: str, action: str) -> Response:
            authorize(request)
            if action not in ACTIONS:
                return self.json({"error": f"use POST {base}/<{name}>/ one of "
                                  f"{', '.join(ACTIONS)}"}, status=404)
            if book is None:
                return self.json({"error": "the mention store is off (store.enabled)"},
                                 status=404)
            if (problem := bad_subject(key)) is not None:
                return self.json({"error": problem}, status=400)
            try:
                body = await read_body(request)
            except BadRequest as exc:
                return self.json({"error": f"bad body: {exc}"}, status=exc.status)
            status, data = await act(
                pipeline, book, key, action, by=str(body.get("by") or ""),
                reply_url=_text(body.get("reply_url")), reason=_text(body.get("reason")),
                source="api", kind=kind)
            return self.json(data, status=status)


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None
