"""Web routes on the Faust web server: the incident API and every acknowledgement path.

Writes never change state here: they produce an Ack (or a silence) to a topic, and the
escalate agent that owns the incident applies it, idempotently. Every write is authenticated:
a bearer token (API), Slack's request signature (buttons), or a signed expiring link.
"""

from __future__ import annotations

import hmac
import html
import json
import logging
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from faust.web import Request, Response, View

from agents.silences import Silence
from notifiers.slack_actions import SlackSignatureError, parse_block_action, verify_slack_signature
from streams import topics
from streams.app import Pipeline
from streams.links import LinkError, LinkSigner
from streams.records import Ack, Incident, dumps, stable_id, watch_of

__all__ = ["install_api", "send_ack", "send_silence"]

log = logging.getLogger(__name__)
INCIDENT_ID = re.compile(r"^[a-z0-9_-]{1,64}\.[0-9a-f]{8,32}$")
_MAX_BODY = 64 * 1024
_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>escucha</title>
<style>body{{font:16px system-ui,sans-serif;max-width:36rem;margin:2rem auto;padding:0 1rem}}
button{{font-size:1.1rem;padding:.6rem 1.2rem}}</style></head><body>{body}</body></html>"""


def _summary(inc: Incident, *, timeline: bool = False) -> dict[str, Any]:
    data = inc.model_dump(mode="json")
    if not timeline:
        data.pop("timeline", None)
    return data


async def send_ack(pipeline: Pipeline, incident_id: str, action: str, *, by: str,
                   source: str, step: str | None = None) -> None:
    """Hand an acknowledgement (or a playbook step done) to the worker that owns the incident
    (keyed by its watch)."""
    ack = Ack(incident_id=incident_id, action=action, by=by[:256] or source,  # type: ignore[arg-type]
              source=source, at=datetime.now(UTC), step=step)
    await pipeline.topic(topics.ACKS).send(key=watch_of(incident_id).encode(), value=dumps(ack))
    log.info("%s of %s by %s via %s accepted", action, incident_id, ack.by, source)


async def send_silence(pipeline: Pipeline, matchers: dict[str, str], *, minutes: float, by: str,
                       comment: str = "", incident_id: str | None = None) -> Silence:
    """Publish a new silence; ``ValueError`` when it would match nothing or last too long."""
    if not matchers or not 0 < minutes <= 60 * 24 * 30:
        raise ValueError("need matchers and 0 < minutes <= 43200")
    now = datetime.now(UTC)
    silence = Silence(
        id="s-" + stable_id(sorted(matchers.items()), now.isoformat()),
        matchers=matchers, starts_at=now, ends_at=now + timedelta(minutes=minutes),
        created_by=by[:80], comment=comment[:500], incident_id=incident_id)
    await pipeline.topic(topics.SILENCES).send(key=silence.id.encode(),
                                               value=json.dumps(silence.to_dict()).encode())
    pipeline.metrics.silences.inc()
    log.info("silence %s for %s by %s, %.0f min", silence.id, matchers, silence.created_by,
             minutes)
    return silence


def install_api(pipeline: Pipeline, *, links: LinkSigner) -> None:
    app, settings = pipeline.app, pipeline.settings
    tokens = [t.get_secret_value().encode() for t in settings.api.tokens]
    signing = settings.notifiers.slack.signing_secret

    def authorized(request: Request) -> bool:
        header = request.headers.get("Authorization", "")
        scheme, _, given = header.partition(" ")
        if scheme.lower() != "bearer" or not given:
            return False
        # Compare against every token in constant time, so timing reveals nothing.
        return any(hmac.compare_digest(given.encode(), t) for t in tokens) if tokens else False

    async def produce_ack(incident_id: str, action: str, by: str, source: str) -> None:
        await send_ack(pipeline, incident_id, action, by=by, source=source)

    def view() -> Any:
        return pipeline.views.get("incidents")

    async def read_json(request: Request) -> dict[str, Any]:
        raw = await request.read()  # type: ignore[attr-defined]
        if len(raw) > _MAX_BODY:
            raise ValueError("request body too large")
        if not raw.strip():
            return {}
        data = json.loads(raw)
        if not isinstance(data, dict):
            raise ValueError("the body must be a JSON object")
        return data

    @app.page("/api/incidents")
    class IncidentList(View):
        async def get(self, request: Request) -> Response:
            if not authorized(request):
                return self.json({"error": "missing or invalid bearer token"}, status=401)
            incidents = view().incidents() if view() else []
            state = request.query.get("state")
            if state:
                incidents = [i for i in incidents if i.state == state]
            return self.json({"incidents": [_summary(i) for i in incidents[:500]]})

    @app.page("/api/incidents/{incident_id}")
    class IncidentDetail(View):
        async def get(self, request: Request, incident_id: str) -> Response:
            if not authorized(request):
                return self.json({"error": "missing or invalid bearer token"}, status=401)
            inc = view().get(incident_id) if view() else None
            if inc is None:
                return self.json({"error": f"no incident {incident_id}"}, status=404)
            return self.json(_summary(inc, timeline=True))

    @app.page("/api/incidents/{incident_id}/{action}")
    class IncidentAction(View):
        async def post(self, request: Request, incident_id: str, action: str) -> Response:
            if not authorized(request):
                return self.json({"error": "missing or invalid bearer token"}, status=401)
            if action not in ("ack", "resolve") or not INCIDENT_ID.match(incident_id):
                return self.json({"error": "use POST /api/incidents/<id>/ack or /resolve"},
                                 status=404)
            try:
                body = await read_json(request)
            except ValueError as exc:
                return self.json({"error": f"bad body: {exc}"}, status=400)
            by = str(body.get("by") or "api")
            # The CLI and the console call this API too; anything else is just "api".
            source = body.get("source") if body.get("source") in ("cli", "console") else "api"
            await produce_ack(incident_id, action, by, str(source))
            return self.json({"status": "accepted", "incident_id": incident_id,
                              "action": action}, status=202)

    @app.page("/slack/actions")
    class SlackActions(View):
        async def post(self, request: Request) -> Response:
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
                log.warning("refused a Slack request: %s", exc)
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

    @app.page("/a/{token}")
    class SignedLink(View):
        def _page(self, body: str, status: int = 200) -> Response:
            return self.html(_PAGE.format(body=body), status=status)

        async def get(self, request: Request, token: str) -> Response:
            try:
                signed = links.verify(token)
            except LinkError as exc:
                return self._page(f"<h1>Link refused</h1><p>{html.escape(str(exc))}.</p>", 403)
            verb = "Acknowledge" if signed.action == "ack" else "Resolve"
            inc = view().get(signed.incident_id) if view() else None
            about = html.escape(inc.summary if inc else signed.incident_id)
            # GET only asks: mail scanners open links, and must not acknowledge anything.
            return self._page(
                f"<h1>{verb} incident?</h1><p>{about}</p>"
                f'<form method="post"><label>Your name <input name="by" maxlength="80" '
                f'autocomplete="name"></label> <button type="submit">{verb}</button></form>')

        async def post(self, request: Request, token: str) -> Response:
            try:
                signed = links.verify(token)
            except LinkError as exc:
                return self._page(f"<h1>Link refused</h1><p>{html.escape(str(exc))}.</p>", 403)
            form = await request.post()  # type: ignore[attr-defined]
            by = str(form.get("by") or "").strip()[:80] or "link"
            await produce_ack(signed.incident_id, signed.action, by, "link")
            done = "acknowledged" if signed.action == "ack" else "resolved"
            return self._page(f"<h1>Thanks</h1><p>The incident is {done}.</p>")

    @app.page("/api/silences")
    class Silences(View):
        async def get(self, request: Request) -> Response:
            if not authorized(request):
                return self.json({"error": "missing or invalid bearer token"}, status=401)
            sv = pipeline.views.get("silences")
            now = datetime.now(UTC)
            return self.json({"silences": [s.to_dict() for s in (sv.active(now) if sv else [])]})

        async def post(self, request: Request) -> Response:
            if not authorized(request):
                return self.json({"error": "missing or invalid bearer token"}, status=401)
            try:
                body = await read_json(request)
                matchers = {str(k): str(v) for k, v in dict(body["matchers"]).items()}
                minutes = float(body.get("minutes", 60))
                incident_id = body.get("incident_id")
                silence = await send_silence(
                    pipeline, matchers, minutes=minutes, by=str(body.get("by") or "api"),
                    comment=str(body.get("comment") or ""),
                    incident_id=str(incident_id) if incident_id else None)
            except (ValueError, KeyError, TypeError) as exc:
                return self.json({"error": f"bad silence: {exc}"}, status=400)
            return self.json(silence.to_dict(), status=201)
