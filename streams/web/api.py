"""Web routes on the Faust web server: the incident API and every acknowledgement path.

Writes never change state here: they produce an Ack (or a silence) to a topic, and the
escalate agent that owns the incident applies it, idempotently. Every write is authenticated:
a bearer token (API), Slack's request signature (buttons), or a signed expiring link.
"""

from __future__ import annotations

import base64
import hashlib
import html
import logging
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from aiohttp import web as aioweb
from faust.web import Request, Response, View
from faust.web.exceptions import WebError

from notifiers.slack_actions import SlackSignatureError, parse_block_action, verify_slack_signature
from streams.core import topics
from streams.core.links import LinkError, LinkSigner, SignedAction
from streams.core.records import Ack, Incident, Phrase, dumps, watch_of
from streams.core.security import (
    CSP,
    BadRequest,
    CredentialKind,
    bearer_token,
    clean_text,
    media_type,
    read_json,
    same_secret,
)
from streams.runtime.pipeline import Pipeline
from streams.web.silences import (
    STATES,
    SilenceError,
    expire_silence,
    listed_silences,
    send_silence,
)

# send_silence is re-exported: it lived here before silences had a module of their own.
__all__ = ["INCIDENT_ID", "Page", "Refused", "check_bearer", "client_of", "install_api",
           "read_form", "send_ack", "send_silence", "too_many"]

log = logging.getLogger(__name__)
#: '<watch id>.<hex hash>'. Always ``fullmatch``: ``$`` accepts a trailing newline.
INCIDENT_ID = re.compile(r"[a-z0-9_-]{1,64}\.[0-9a-f]{8,32}")
_MAX_BODY = 64 * 1024
_MAX_BY = 80
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="escucha"'}
_STYLE = ("body{font:16px system-ui,sans-serif;max-width:36rem;margin:2rem auto;padding:0 1rem}"
          "button{font-size:1.1rem;padding:.6rem 1.2rem}")
# The signed-link pages are served without the console (which may be off), so their one
# style block is allowed by its hash rather than by a stylesheet URL.
_STYLE_HASH = base64.b64encode(hashlib.sha256(_STYLE.encode()).digest()).decode()
_LINK_HEADERS = {"Content-Security-Policy": CSP.replace(
    "style-src 'self'", f"style-src 'sha256-{_STYLE_HASH}'")}


def _page(body: str) -> str:
    return ('<!doctype html><html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>escucha</title><style>{_STYLE}</style></head><body>{body}</body></html>")


def _summary(inc: Incident, *, timeline: bool = False) -> dict[str, Any]:
    data = inc.model_dump(mode="json")
    if not timeline:
        data.pop("timeline", None)
    return data


class Refused(WebError):
    """Raised by a check inside a view: :class:`Page` answers with ``response`` (so Faust's
    request metrics see the real status, not a 500)."""

    def __init__(self, response: aioweb.Response) -> None:
        super().__init__("refused", code=response.status)
        self.response = response


class Page(View):
    """Base of every escucha view: a :class:`Refused` becomes its response."""

    async def on_request_error(self, request: Request, exc: WebError) -> Response:
        if isinstance(exc, Refused):
            return exc.response  # type: ignore[return-value]
        return await super().on_request_error(request, exc)


def _json_refusal(status: int, message: str, headers: dict[str, str] | None = None) -> Refused:
    return Refused(aioweb.json_response({"error": message}, status=status, headers=headers))


def client_of(pipeline: Pipeline, request: Request) -> str:
    """The client's address, as the throttle keys it (``web.trusted_proxies``)."""
    return pipeline.gate.client(getattr(request, "remote", None),
                                request.headers.get("X-Forwarded-For"))


def too_many(retry_after: float, *, html_body: str | None = None) -> Refused:
    """429 with ``Retry-After`` (whole seconds, rounded up)."""
    seconds = max(1, int(retry_after + 0.999))
    headers = {"Retry-After": str(seconds)}
    if html_body is not None:
        return Refused(aioweb.Response(text=html_body, status=429, content_type="text/html",
                                       headers=headers))
    return Refused(aioweb.json_response(
        {"error": "too many failed attempts from this address; wait and try again",
         "retry_after_s": seconds}, status=429, headers=headers))


def check_bearer(pipeline: Pipeline, request: Request, *, kind: CredentialKind,
                 secrets: list[bytes]) -> int | None:
    """The index in ``secrets`` of the request's bearer token; None without a bearer header.

    Raises 429 while this address is throttled for ``kind`` (before the token is looked at)
    and 401 for a wrong token, which counts against the address."""
    given = bearer_token(request.headers.get("Authorization"))
    if given is None:
        return None
    client = client_of(pipeline, request)
    wait = pipeline.gate.locked(kind, client)
    if wait is not None:
        raise too_many(wait)
    found = None
    for i, secret in enumerate(secrets):  # every one compared, each in constant time
        if same_secret(given, secret) and found is None:
            found = i
    if found is None:
        pipeline.gate.failed(kind, client)
        log.info("refused a %s from %s", kind.replace("_", " "), client)
        raise _json_refusal(401, "missing or invalid bearer token", _CHALLENGE)
    return found


async def send_ack(pipeline: Pipeline, incident_id: str, action: str, *, by: str,
                   source: str, step: str | None = None, note: str | None = None,
                   mention: str | None = None, claim: Mapping[str, str] | None = None) -> None:
    """Hand an acknowledgement (or a playbook step done) to the worker that owns the incident
    (keyed by its watch). ``by`` is free text from a request: stored as one clean line."""
    who = clean_text(by, limit=_MAX_BY) or source
    ack = Ack(incident_id=incident_id, action=action, by=who,  # type: ignore[arg-type]
              source=source, at=datetime.now(UTC), step=step,
              note=clean_text(note, limit=300) if note else None, mention=mention,
              claim=Phrase(key="claim", params={k: clean_text(v, limit=300)
                                                for k, v in claim.items()}) if claim else None)
    await pipeline.topic(topics.ACKS).send(key=watch_of(incident_id).encode(), value=dumps(ack))
    log.info("%s of %s by %r via %s accepted", action, incident_id, ack.by, source)


async def read_form(request: Request) -> dict[str, str]:
    """A posted form's fields as text; :class:`Refused` (400/413) for a body that is not a
    readable form (a multipart body without its boundary, a truncated one, too large)."""
    try:
        form = await request.post()  # type: ignore[attr-defined]
    except aioweb.HTTPException as exc:  # aiohttp's own 413 for a body over its limit
        raise _json_refusal(exc.status, exc.reason) from None
    except (ValueError, UnicodeDecodeError, AssertionError, KeyError) as exc:
        raise _json_refusal(400, f"unreadable form: {type(exc).__name__}") from None
    return {str(k): v if isinstance(v, str) else "" for k, v in form.items()}


async def read_body(request: Request) -> dict[str, Any]:
    """A JSON object body (an empty body is ``{}``), bounded; :class:`BadRequest` else."""
    raw = await request.read()  # type: ignore[attr-defined]
    if not raw.strip():
        return {}
    if media_type(request.headers.get("Content-Type")) != "application/json":
        raise BadRequest("send Content-Type: application/json", status=415)
    data = read_json(raw, max_bytes=_MAX_BODY)
    if not isinstance(data, dict):
        raise BadRequest("the body must be a JSON object")
    return data


def install_api(pipeline: Pipeline, *, links: LinkSigner) -> None:
    app, settings = pipeline.app, pipeline.settings
    tokens = [t.get_secret_value().encode() for t in settings.api.tokens]
    signing = settings.notifiers.slack.signing_secret

    def authorize(request: Request) -> None:
        if check_bearer(pipeline, request, kind="api_token", secrets=tokens) is None:
            raise _json_refusal(401, "missing or invalid bearer token" if tokens else
                                "no API tokens configured: set api.tokens", _CHALLENGE)

    incidents_view = pipeline.views.incidents

    @app.serve("/api/incidents", access="token")
    class IncidentList(Page):
        async def get(self, request: Request) -> Response:
            authorize(request)
            incidents = incidents_view.incidents()
            state = request.query.get("state")
            if state:
                incidents = [i for i in incidents if i.state == state]
            return self.json({"incidents": [_summary(i) for i in incidents[:500]]})

    @app.serve("/api/incidents/{incident_id}", access="token")
    class IncidentDetail(Page):
        async def get(self, request: Request, incident_id: str) -> Response:
            authorize(request)
            inc = incidents_view.get(incident_id)
            if inc is None:
                return self.json({"error": "no such incident"}, status=404)
            return self.json(_summary(inc, timeline=True))

    @app.serve("/api/incidents/{incident_id}/{action}", access="token")
    class IncidentAction(Page):
        async def post(self, request: Request, incident_id: str, action: str) -> Response:
            authorize(request)
            if action not in ("ack", "resolve") or not INCIDENT_ID.fullmatch(incident_id):
                return self.json({"error": "use POST /api/incidents/<id>/ack or /resolve"},
                                 status=404)
            try:
                body = await read_body(request)
            except BadRequest as exc:
                return self.json({"error": f"bad body: {exc}"}, status=exc.status)
            # The CLI and the console call this API too; anything else is just "api".
            source = body.get("source") if body.get("source") in ("cli", "console") else "api"
            await send_ack(pipeline, incident_id, action, by=str(body.get("by") or "api"),
                           source=str(source))
            return self.json({"status": "accepted", "incident_id": incident_id,
                              "action": action}, status=202)

    @app.serve("/slack/actions", access="signed")
    class SlackActions(Page):
        async def post(self, request: Request) -> Response:
            client = client_of(pipeline, request)
            wait = pipeline.gate.locked("slack_signature", client)
            if wait is not None:
                raise too_many(wait)
            body = await request.read()  # type: ignore[attr-defined]
            if signing is None:
                log.warning("a Slack button was clicked but notifiers.slack.signing_secret "
                            "is not set; refused")
                return self.json({"error": "not configured"}, status=401)
            try:
                verify_slack_signature(
                    body=body, timestamp=request.headers.get("X-Slack-Request-Timestamp"),
                    signature=request.headers.get("X-Slack-Signature"),
                    signing_secret=signing.get_secret_value())
            except SlackSignatureError as exc:
                pipeline.gate.failed("slack_signature", client)
                log.warning("refused a Slack request from %s: %s", client, exc)
                return self.json({"error": "invalid signature"}, status=401)
            try:
                action = parse_block_action(body)
            except ValueError as exc:
                return self.json({"error": str(exc)}, status=400)
            if action is not None:
                await send_ack(pipeline, action.incident_id, action.action,
                               by=action.user_name or action.user_id, source="slack",
                               step=action.step)
            # Slack wants a quick 200; the message itself is updated by the deliver stage.
            return self.text("", status=200)

    @app.serve("/a/{token}", access="signed")
    class SignedLink(Page):
        def _page(self, body: str, status: int = 200) -> Response:
            return self.html(_page(body), status=status, headers=_LINK_HEADERS)

        def _verify(self, request: Request, token: str) -> SignedAction:
            """The signed action, or :class:`Refused` (403, or 429 while throttled)."""
            client = client_of(pipeline, request)
            wait = pipeline.gate.locked("link", client)
            if wait is not None:
                raise too_many(wait, html_body=_page(
                    "<h1>Too many tries</h1><p>Wait a minute and open the link again.</p>"))
            try:
                return links.verify(token)
            except LinkError as exc:
                pipeline.gate.failed("link", client)
                raise Refused(aioweb.Response(
                    text=_page(f"<h1>Link refused</h1><p>{html.escape(str(exc))}.</p>"),
                    status=403, content_type="text/html", headers=_LINK_HEADERS)) from None

        async def get(self, request: Request, token: str) -> Response:
            signed = self._verify(request, token)
            verb = "Acknowledge" if signed.action == "ack" else "Resolve"
            inc = incidents_view.get(signed.incident_id)
            about = html.escape(inc.summary if inc else signed.incident_id)
            # GET only asks: mail scanners open links, and must not acknowledge anything.
            return self._page(
                f"<h1>{verb} incident?</h1><p>{about}</p>"
                f'<form method="post"><label>Your name <input name="by" maxlength="80" '
                f'autocomplete="name"></label> <button type="submit">{verb}</button></form>')

        async def post(self, request: Request, token: str) -> Response:
            signed = self._verify(request, token)
            form = await read_form(request)
            by = clean_text(form.get("by"), limit=_MAX_BY) or "link"
            await send_ack(pipeline, signed.incident_id, signed.action, by=by, source="link")
            done = "acknowledged" if signed.action == "ack" else "resolved"
            return self._page(f"<h1>Thanks</h1><p>The incident is {done}.</p>")

    @app.serve("/api/silences", access="token")
    class Silences(Page):
        async def get(self, request: Request) -> Response:
            authorize(request)
            wanted = tuple(w for w in str(request.query.get("state") or "").split(",") if w)
            if any(w not in STATES for w in wanted):
                return self.json({"error": f"state is any of {', '.join(STATES)}, comma "
                                           "separated"}, status=400)
            return self.json({"silences": [{**s.to_dict(), "state": state} for s, state in
                                           listed_silences(pipeline, wanted or STATES)]})

        async def post(self, request: Request) -> Response:
            authorize(request)
            try:
                body = await read_body(request)
            except BadRequest as exc:
                return self.json({"error": f"bad body: {exc}"}, status=exc.status)
            try:
                raw = body["matchers"]
                if not isinstance(raw, dict):
                    raise TypeError("matchers must be an object of label: value")
                matchers = {str(k): str(v) for k, v in raw.items()}
                minutes = float(body.get("minutes", 60))
                incident_id = body.get("incident_id")
                if incident_id is not None and not (isinstance(incident_id, str)
                                                    and INCIDENT_ID.fullmatch(incident_id)):
                    raise ValueError("incident_id is not an incident id")
                silence = await send_silence(
                    pipeline, matchers, minutes=minutes, by=str(body.get("by") or "api"),
                    comment=str(body.get("comment") or ""), incident_id=incident_id,
                    everything=body.get("all") is True)
            except (ValueError, KeyError, TypeError, OverflowError) as exc:
                return self.json({"error": f"bad silence: {exc}"}, status=400)
            return self.json(silence.to_dict(), status=201)

    @app.serve("/api/silences/{silence_id}", access="token")
    class SilenceExpiry(Page):
        async def delete(self, request: Request, silence_id: str) -> Response:
            """Expire (Alertmanager's DELETE): it stays listed, as expired. Idempotent."""
            authorize(request)
            try:
                body = await read_body(request)
            except BadRequest as exc:
                return self.json({"error": f"bad body: {exc}"}, status=exc.status)
            try:
                silence, changed = await expire_silence(pipeline, silence_id,
                                                        by=str(body.get("by") or "api"))
            except SilenceError as exc:
                return self.json({"error": str(exc)}, status=exc.status)
            return self.json({"status": "expired" if changed else "already expired",
                              "silence": {**silence.to_dict(), "state": "expired"}})
