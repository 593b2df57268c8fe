"""The console's pages, actions and live event stream, on the worker's own web server.

Reads come from the whole-topic views every worker keeps (incidents, aggregates, silences);
actions go out exactly like the API's (an Ack or a Silence on its topic, a silence expired by
the same function as ``DELETE /api/silences/{id}``), so the worker that owns the incident
applies them and Slack, PagerDuty and the escalation clock follow as for any ack.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import cast
from urllib.parse import quote

from aiohttp import web
from faust.web import Request
from pydantic import SecretStr

from agents.escalate.oncall import on_call, resolve_targets
from agents.escalate.routing import labels_of, route
from agents.store.claims import ClaimBook
from agents.store.store import MentionStore
from streams.config.console import ConsoleToken
from streams.core.records import Incident
from streams.core.security import HTML_HEADERS, CredentialKind, has_control
from streams.i18n import N_, Lang, negotiate
from streams.runtime.pipeline import Pipeline
from streams.web.api import (
    INCIDENT_ID,
    Page,
    Refused,
    check_bearer,
    client_of,
    read_form,
    send_ack,
    too_many,
)
from streams.web.console import render
from streams.web.console.auth import Authenticator, Session
from streams.web.console.claims import install_console_claims
from streams.web.console.mentions_routes import incident_link, install_mentions_page
from streams.web.console.overview import watch_cards
from streams.web.silences import SilenceError, expire_silence, listed_silences, send_silence

__all__ = ["install_console", "load_or_create_token"]

log = logging.getLogger(__name__)
COOKIE, LOGIN_COOKIE = "escucha_session", "escucha_login"
_STATIC = Path(__file__).parent / "static"
_ASSETS = {"console.css": "text/css", "console.js": "text/javascript"}
_HEADERS = HTML_HEADERS
_KEEPALIVE_S = 15.0


def load_or_create_token(datadir: Path) -> str:
    """The demo sign-in token in ``<datadir>/console-token`` (mode 0600), created if missing."""
    path = datadir / "console-token"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        datadir.mkdir(parents=True, exist_ok=True)
        token = secrets.token_urlsafe(24)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(token + "\n")
        return token


def _html(text: str, status: int = 200) -> web.Response:
    return web.Response(text=text, status=status, content_type="text/html", headers=_HEADERS)


def _redirect(location: str) -> web.Response:
    return web.Response(status=303, headers={**_HEADERS, "Location": location})


def _safe_next(value: object) -> str:
    """Where to go after sign-in: only our own pages (an open redirect is a phishing tool).

    Raises :class:`Refused` (400) for a control character: it would reach the Location
    header, where a CR/LF splits the response (aiohttp drops the connection instead)."""
    text = str(value or "")
    if has_control(text):
        raise Refused(_html(render.message_page(N_("Bad request"), N_("The next= address holds "
                                                "control characters.")), 400))
    return text if text.startswith("/console") and not text.startswith("//") else "/console"


def _browser(request: Request) -> str:
    """Signed out, the console speaks the browser's language (``Accept-Language``)."""
    return negotiate(request.headers.get("Accept-Language"))


def _aio(request: Request) -> web.Request:
    return cast(web.Request, request)  # Faust's aiohttp driver hands us aiohttp's request


def install_console(pipeline: Pipeline, *, secret: bytes,
                    store: MentionStore | None = None,
                    claims: ClaimBook | None = None) -> None:
    settings = pipeline.settings
    cfg = settings.console
    if not cfg.enabled:
        return
    app = pipeline.app
    tokens = list(cfg.tokens)
    if not cfg.users and not tokens:
        path = settings.datadir.resolve() / "console-token"
        tokens = [ConsoleToken(name="console-admin", role="responder",
                               token=SecretStr(load_or_create_token(settings.datadir.resolve())))]
        log.warning("console: no users configured; sign in at %s/console with the token in %s",
                    settings.api.public_url.rstrip("/"), path)
    log.info("console at %s/console (%d users, %d tokens)", settings.api.public_url.rstrip("/"),
             len(cfg.users), len(tokens))
    auth = Authenticator(secret=secret, users=cfg.users, tokens=tokens, ttl_s=cfg.session_ttl_s)
    secure = (cfg.secure_cookies if cfg.secure_cookies is not None
              else settings.api.public_url.startswith("https://"))
    assets = {name: (_STATIC / name).read_bytes() for name in _ASSETS}
    names = {w.id: w.name for w in settings.watches}
    policies = {p.id: p for p in settings.escalation.policies}
    schedules = {s.id: s for s in settings.escalation.schedules}

    console_tokens = [t.token.get_secret_value().encode() for t in tokens]

    def session_of(request: Request) -> Session | None:
        """A cookie session, or a console token as a bearer header (a wallboard, a script);
        a wrong bearer counts against the address like a wrong sign-in (401, then 429)."""
        found = check_bearer(pipeline, request, kind="console_token", secrets=console_tokens)
        if found is not None:
            t = tokens[found]
            return Session(user=t.name, role=t.role, sid="bearer",
                           expires=datetime.now(UTC).timestamp() + 60,
                           locale=t.locale, timezone=t.timezone)
        return auth.read(request.cookies.get(COOKIE))

    def csrf_of(session: Session) -> str:
        return auth.csrf(session.sid)

    def login_redirect(request: Request) -> web.Response:
        return _redirect("/console/login?next=" + quote(_aio(request).path, safe="/"))

    async def checked_form(request: Request, session: Session) -> dict[str, str] | None:
        """The posted form, or None when the CSRF token or the origin is wrong."""
        origin = request.headers.get("Origin")
        if origin and origin.split("://", 1)[-1] != _aio(request).host:
            return None
        data = await read_form(request)
        if session.sid == "bearer":  # a header, not a cookie: no cross-site risk
            return data
        given = data.get("csrf") or request.headers.get("X-CSRF-Token")
        return data if auth.check_csrf(session.sid, given) else None

    async def acting(request: Request,
                     read_only: str) -> tuple[Session, dict[str, str]] | web.Response:
        """A responder's session and posted form, or the page refusing the action: signed
        out (401), a wrong form token or origin (403), a viewer (403, ``read_only`` says what
        viewers cannot do)."""
        session = session_of(request)
        if session is None:
            return _html(render.message_page(N_("Sign in first"), N_("Your session ended."),
                                             locale=_browser(request)), 401)
        form = await checked_form(request, session)
        if form is None:
            return _html(render.message_page(N_("Refused"), N_("Missing or invalid form token; "
                                             "reload the page and try again."), session=session),
                         403)
        if not session.can_act:
            return _html(render.message_page(N_("Read-only"), read_only, session=session), 403)
        return session, form

    def incidents() -> list[Incident]:
        view = pipeline.views.incidents
        return list(view.incidents())

    @app.serve("/console/static/{name}", access="public")
    class Static(Page):
        async def get(self, request: Request, name: str) -> web.Response:
            if name not in _ASSETS:
                return web.Response(status=404, text="not found")
            return web.Response(body=assets[name], content_type=_ASSETS[name],
                                headers={**_HEADERS, "Cache-Control": "max-age=300"})

    @app.serve("/console/login", access="public")
    class Login(Page):
        async def get(self, request: Request) -> web.Response:
            nonce = secrets.token_hex(16)
            next_url = _safe_next(request.query.get("next"))
            resp = _html(render.login_page(csrf=auth.csrf("login:" + nonce), next_url=next_url,
                                           locale=_browser(request)))
            resp.set_cookie(LOGIN_COOKIE, nonce, httponly=True, samesite="Strict",
                            secure=secure, path="/console", max_age=3600)
            return resp

        async def post(self, request: Request) -> web.Response:
            form = await read_form(request)
            nonce = request.cookies.get(LOGIN_COOKIE, "")
            csrf = auth.csrf("login:" + nonce)
            if not nonce or not auth.check_csrf("login:" + nonce, form.get("csrf")):
                return _html(render.login_page(csrf=csrf, error=N_("The form expired; try again."),
                                               locale=_browser(request)), 403)
            next_url = _safe_next(form.get("next"))
            username = form.get("username", "").strip()[:64]
            # Keyed by address and kind, never by name alone: guessing at Ana's password
            # from one address must not lock Ana out from hers.
            kind: CredentialKind = "password" if username else "console_token"
            client = client_of(pipeline, request)
            wait = pipeline.gate.locked(kind, client)
            if wait is not None:
                raise too_many(wait, html_body=render.login_page(
                    csrf=csrf, error=N_("Too many failed attempts; wait a minute and try again."),
                    locale=_browser(request)))
            who = (await asyncio.to_thread(auth.password, username, form.get("password", ""))
                   if username else auth.token(form.get("token", "").strip()))
            if who is None:
                pipeline.gate.failed(kind, client)
                log.info("console sign-in refused for %r from %s", username or "(token)",
                         client)
                return _html(render.login_page(csrf=csrf, error=N_("Wrong username, password or "
                                               "token."), locale=_browser(request)), 401)
            log.info("console sign-in: %r (%s) from %s", who[0], who[1], client)
            resp = _redirect(next_url)
            resp.set_cookie(COOKIE, auth.issue(*who), httponly=True, samesite="Strict",
                            secure=secure, path="/console", max_age=cfg.session_ttl_s)
            resp.del_cookie(LOGIN_COOKIE, path="/console")
            return resp

    @app.serve("/console/logout", access="session")
    class Logout(Page):
        async def post(self, request: Request) -> web.Response:
            session = session_of(request)
            if session is None or await checked_form(request, session) is None:
                return _html(render.message_page(N_("Refused"),
                                                 N_("Missing or invalid form token.")), 403)
            resp = _redirect("/console/login")
            resp.del_cookie(COOKIE, path="/console")
            return resp

    @app.serve("/console", access="session")
    class IncidentList(Page):
        async def get(self, request: Request) -> web.Response:
            session = session_of(request)
            if session is None:
                return login_redirect(request)
            filters = _filters(request)
            shown = [i for i in incidents() if filters.keep(i)][:300]
            return _html(render.list_page(shown, names=names, filters=filters,
                                          session=session, csrf=csrf_of(session)))

    @app.serve("/console/events", access="session")
    class Events(Page):
        async def get(self, request: Request) -> web.StreamResponse:
            session = session_of(request)
            if session is None:
                return web.Response(status=401, text="sign in first", headers=_HEADERS)
            resp = web.StreamResponse(headers={**_HEADERS, "Content-Type": "text/event-stream",
                                               "X-Accel-Buffering": "no"})
            await resp.prepare(request)  # type: ignore[arg-type]
            wanted = request.query.get("incident")
            filters = _filters(request)
            last = ""
            view = pipeline.views.incidents
            try:
                while session.expires > datetime.now(UTC).timestamp():
                    if wanted:
                        inc = view.get(wanted) if view else None
                        payload = json.dumps({
                            "state": inc.state if inc else None,
                            "updated": inc.updated_at.isoformat() if inc else None,
                            "timeline": len(inc.timeline) if inc else 0})
                        event = "incident"
                    else:
                        shown = [i for i in incidents() if filters.keep(i)][:300]
                        payload = json.dumps({
                            "rows": render.incident_rows(shown, names, session),
                            **render.live_status(shown, session), "count": len(shown),
                            "open": sum(1 for i in shown if i.state == "open")})
                        event = "incidents"
                    digest = hashlib.sha256(payload.encode()).hexdigest()
                    if digest != last:
                        await resp.write(f"event: {event}\ndata: {payload}\n\n".encode())
                        last = digest
                    changed = await view.wait_changed(_KEEPALIVE_S) if view else False
                    if not changed:
                        await resp.write(b": keepalive\n\n")
            except (ConnectionResetError, asyncio.CancelledError):
                pass  # the browser went away
            return resp

    @app.serve("/console/incidents/{incident_id}", access="session")
    class IncidentPage(Page):
        async def get(self, request: Request, incident_id: str) -> web.Response:
            session = session_of(request)
            if session is None:
                return login_redirect(request)
            view = pipeline.views.incidents
            inc = view.get(incident_id) if INCIDENT_ID.fullmatch(incident_id) else None
            if inc is None:
                return _html(render.message_page(N_("Not found"), N_("No such incident."),
                                                 session=session), 404)
            done = {"ack": N_("Acknowledgement sent."), "resolve": N_("Resolution sent."),
                    "silence": N_("Silence created."), "step": N_("Step marked done.")
                    }.get(request.query.get("done", ""), "")
            series, authors = _around(pipeline, inc)
            return _html(render.incident_page(
                inc, watch_name=names.get(inc.watch_id, inc.watch_id),
                oncall=oncall_lines(inc), series=series, authors=authors, session=session,
                csrf=csrf_of(session), notice=done,
                mentions_link=await incident_link(
                    store, inc, Lang(session.locale, session.timezone)),
                joined_watches=[names.get(w, w) for w in inc.watches]))

    @app.serve("/console/incidents/{incident_id}/{action}", access="session")
    class IncidentAction(Page):
        async def post(self, request: Request, incident_id: str, action: str) -> web.Response:
            checked = await acting(request, N_("Viewers cannot change incidents."))
            if isinstance(checked, web.Response):
                return checked
            session, form = checked
            view = pipeline.views.incidents
            inc = view.get(incident_id) if INCIDENT_ID.fullmatch(incident_id) else None
            if inc is None or action not in ("ack", "resolve", "silence", "step"):
                return _html(render.message_page(N_("Not found"), N_("No such incident or action."),
                                                 session=session), 404)
            if action == "silence":
                try:
                    minutes = float(form.get("minutes", "60"))
                    await send_silence(pipeline, {"watch": inc.watch_id,
                                                  "detector": inc.detector},
                                       minutes=minutes, by=session.user, incident_id=inc.id,
                                       comment=f"from the console, incident {inc.id}")
                except ValueError as exc:
                    return _html(render.message_page(N_("Bad silence"), detail=str(exc),
                                                     session=session), 400)
            elif action == "step":
                step = form.get("step", "")
                if inc.playbook is None or step not in {s.id for s in inc.playbook.steps}:
                    return _html(render.message_page(N_("Not found"), N_("No such playbook step."),
                                                     session=session), 404)
                await send_ack(pipeline, inc.id, "step", by=session.user, source="console",
                               step=step)
            else:
                await send_ack(pipeline, inc.id, action, by=session.user, source="console")
            return _redirect(f"/console/incidents/{inc.id}?done={action}")

    install_mentions_page(pipeline, store=store, names=names, session_of=session_of,
                          csrf_of=csrf_of, login_redirect=login_redirect, html=_html,
                          claims=claims)

    @app.serve("/console/watches", access="session")
    class Watches(Page):
        async def get(self, request: Request) -> web.Response:
            session = session_of(request)
            if session is None:
                return login_redirect(request)
            cards = watch_cards(settings, pipeline.views.aggregates,
                                now=datetime.now(UTC))
            return _html(render.watches_page(cards, session=session, csrf=csrf_of(session)))

    @app.serve("/console/silences", access="session")
    class SilenceList(Page):
        async def get(self, request: Request) -> web.Response:
            session = session_of(request)
            if session is None:
                return login_redirect(request)
            done = {"expired": N_("Silence expired."), "already": N_("That silence had "
                    "already expired.")}.get(request.query.get("done", ""), "")
            return _html(render.silences_page(listed_silences(pipeline), session=session,
                                              csrf=csrf_of(session), notice=done))

    @app.serve("/console/silences/{silence_id}/expire", access="session")
    class SilenceExpire(Page):
        async def post(self, request: Request, silence_id: str) -> web.Response:
            checked = await acting(request, N_("Viewers cannot expire silences."))
            if isinstance(checked, web.Response):
                return checked
            session, _ = checked
            try:
                _, changed = await expire_silence(pipeline, silence_id, by=session.user)
            except SilenceError as exc:
                return _html(render.message_page(N_("Cannot expire"), detail=str(exc),
                                                 session=session), exc.status)
            return _redirect(f"/console/silences?done={'expired' if changed else 'already'}")

    if claims is not None:  # the store is on: who answers which mention
        for kind in ("mention", "story"):  # a story is claimed whole, from the grouped view
            install_console_claims(pipeline, book=claims, session_of=session_of,
                                   acting=acting, csrf_of=csrf_of,
                                   kind=kind)  # type: ignore[arg-type]

    def oncall_lines(inc: Incident) -> list[render.OnCallLine]:
        now = datetime.now(UTC)
        lines = []
        labels = labels_of(inc.watch_id, inc.severity, inc.detector, inc.language)
        for pid in route(labels, settings.escalation.route):
            policy = policies.get(pid)
            for n, level in enumerate(policy.levels if policy else [], start=1):
                names_here = []
                for target in level.targets:
                    pairs = resolve_targets(target, schedules, now)
                    if target.schedule:
                        member = on_call(schedules[target.schedule], now)
                        names_here.append(f"{member.name} (on call in {target.schedule})")
                    else:
                        names_here += [f"{c} {t}" for c, t in pairs]
                lines.append(render.OnCallLine(policy=pid, level=n,
                                               targets=", ".join(names_here) or "nobody",
                                               current=n == inc.level and inc.state == "open"))
        return lines


def _filters(request: Request) -> render.Filters:
    q = request.query
    return render.Filters(watch=str(q.get("watch", ""))[:64],
                          severity=str(q.get("severity", ""))[:16],
                          state=str(q.get("state", ""))[:16])


def _around(pipeline: Pipeline, inc: Incident) -> tuple[list[tuple[datetime, int, int]],
                                                        list[tuple[str, int]]]:
    """Mention counts around the incident and its top authors, from the stored aggregates."""
    view = pipeline.views.aggregates
    since = inc.opened_at - timedelta(hours=1)
    until = max(inc.updated_at, inc.opened_at) + timedelta(minutes=30)
    series = [(p.start, p.count, p.negative) for p in view.series(
        inc.watch_id, since=since, until=until,
        step_s=pipeline.settings.aggregates.bucket_s)]
    summary = view.summary(inc.watch_id, since=inc.opened_at - timedelta(minutes=30),
                           until=until)
    return series, list(summary.authors.items())[:5]
