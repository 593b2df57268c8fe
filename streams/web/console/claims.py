"""Claims in the console: who answers a mention, and the forms to claim, answer, decline or
release it.

:func:`claim_section` renders one mention's claim (a badge saying who has it, and for a
responder the forms that apply): the Mentions page calls it for each mention it shows.
``/console/claims/{key}`` is a page of one mention's claim and history; its forms post to
``/console/claims/{key}/{action}``: a signed-in responder, the CSRF token, and the name is
the session's own (never a form field). The decision is the store's, as for the API
(streams/web/claims.py), so of two responders in two browsers one wins and the other sees
who has it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from html import escape
from urllib.parse import quote

from aiohttp import web
from faust.web import Request

from agents.store.claims import ACTIONS, Claim, ClaimBook, Kind
from streams.core.security import HTML_HEADERS
from streams.i18n import EN, N_, Lang
from streams.runtime.pipeline import Pipeline
from streams.web.api import Page
from streams.web.claims import act
from streams.web.console import render
from streams.web.console.auth import Session

__all__ = ["claim_link", "claim_section", "install_console_claims"]

SessionOf = Callable[[Request], Session | None]
#: Where each kind's claim pages live: a story id and a mention key each have their own.
_BASE = {"mention": "/console/claims", "story": "/console/story-claims"}
#: The console's gate for a responder's action (streams/web/console/routes.py): the session and
#: the posted form, or the page refusing it.
Acting = Callable[[Request, str], Awaitable[tuple[Session, dict[str, str]] | web.Response]]


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def _lang(session: Session) -> Lang:
    return Lang(session.locale, session.timezone)


def _says(claim: Claim, lang: Lang) -> str:
    """:meth:`Claim.says` in ``lang``; the name and reason stay as typed."""
    return claim.says(lang.tr)


def _time(claim: Claim, lang: Lang) -> str:
    at = claim.updated_at
    shown = f"{at:%Y-%m-%d %H:%M} UTC" if lang.unset else lang.at(at)
    return f'<time datetime="{_e(at.isoformat())}">{_e(shown)}</time>'


def _badge(claim: Claim | None, lang: Lang) -> str:
    _ = lang._
    if claim is None or not claim.held:
        return f'<span class="claim free">{_e(_("Nobody is answering this"))}</span>'
    link = ""
    url = render.safe_url(claim.reply_url)
    if claim.state == "answered" and url:
        link = (f' · <a href="{_e(url)}" rel="noopener noreferrer nofollow" '
                f'target="_blank">{_e(_("the reply"))}</a>')
    return (f'<span class="claim {_e(claim.state)}">{_e(_says(claim, lang))}</span>{link} '
            + _time(claim, lang))


def claim_link(key: str, claim: Claim | None, lang: Lang = EN, *,
               kind: Kind = "mention") -> str:
    """One line for a list of mentions (or stories): who has it, linked to its claim page."""
    text = (_says(claim, lang) if claim is not None and claim.held
            else lang._("Who answers this?"))
    state = claim.state if claim is not None else "free"
    return (f'<a class="claim {_e(state)}" href="{_BASE[kind]}/{_e(quote(key, safe=""))}">'
            f'{_e(text)}</a>')


def claim_section(key: str, claim: Claim | None, *, session: Session, csrf: str,
                  kind: Kind = "mention") -> str:
    """One mention's (or story's) claim in the reader's language: who has it and, for a
    responder, what they may do now."""
    lang = _lang(session)
    _ = lang._
    badge = f'<p class="claim-state" data-claim="{_e(key)}">{_badge(claim, lang)}</p>'
    if not session.can_act:
        return f'<div class="claim-box">{badge}</div>'
    base = f"{_BASE[kind]}/{quote(key, safe='')}"
    hidden = f'<input type="hidden" name="csrf" value="{_e(csrf)}">'
    forms: list[str] = []
    free = claim is None or not claim.held
    mine = claim is not None and claim.state == "claimed" and claim.by == session.user
    if free:
        answer = _e(_("I'll answer this"))
        forms.append(f'<form method="post" action="{base}/claim">{hidden}'
                     f'<button type="submit" class="primary">{answer}</button></form>')
    if free or mine:
        forms.append(
            f'<form method="post" action="{base}/answer">{hidden}<label>'
            f'{_e(_("Link to the reply"))} '
            '<input type="url" name="reply_url" required maxlength="2000" '
            f'placeholder="https://"></label> <button type="submit">{_e(_("Answered"))}'
            '</button></form>')
        forms.append(
            f'<form method="post" action="{base}/not-answering">{hidden}<label>'
            f'{_e(_("Why not"))} <input name="reason" required maxlength="500"></label> '
            f'<button type="submit">{_e(_("Not answering"))}</button></form>')
    if mine:
        forms.append(f'<form method="post" action="{base}/release">{hidden}'
                     f'<button type="submit">{_e(_("Release"))}</button></form>')
    return f'<div class="claim-box">{badge}<div class="actions">{"".join(forms)}</div></div>'


def _history(entries: Sequence[Claim], lang: Lang) -> str:
    if not entries:
        return ""
    rows = "".join(f"<li>{_time(c, lang)}: {_e(_says(c, lang))}</li>" for c in entries)
    return f'<h2>{_e(lang._("History"))}</h2><ol class="claim-history">{rows}</ol>'


def _html(text: str, status: int = 200) -> web.Response:
    return web.Response(text=text, status=status, content_type="text/html",
                        headers=HTML_HEADERS)


def install_console_claims(pipeline: Pipeline, *, book: ClaimBook, session_of: SessionOf,
                           acting: Acting, csrf_of: Callable[[Session], str],
                           kind: Kind = "mention") -> None:
    """Add ``/console/claims/{key}`` and its actions (``/console/story-claims/{story}`` for
    ``kind`` story); the console's own session, CSRF and role checks are passed in
    (streams/web/console/routes.py)."""
    app = pipeline.app
    base = _BASE[kind]

    async def claim_page(key: str, session: Session, notice: str = "",
                         status: int = 200) -> web.Response:
        claim = await asyncio.to_thread(lambda: book.get(key, kind=kind))
        history = await asyncio.to_thread(lambda: book.history(key, kind=kind))
        lang = _lang(session)
        note = f'<p class="notice" role="status">{_e(notice)}</p>' if notice else ""
        mentions = _e(lang._("The story's mentions"))
        more = (f'<p><a href="/console/mentions?story={_e(quote(key, safe=""))}">'
                f'{mentions}</a></p>' if kind == "story" else "")
        title = (lang._("Mention {key}") if kind == "mention"
                 else lang._("Story {key}")).format(key=key)
        body = (f"<h1>{_e(title)}</h1>{note}{more}"
                + claim_section(key, claim, session=session, csrf=csrf_of(session),
                                kind=kind)
                + _history(history, lang))
        return _html(render.page(title, body, session=session, csrf=csrf_of(session)),
                     status)

    @app.serve(base + "/{key}", access="session")
    class ClaimPage(Page):
        async def get(self, request: Request, key: str) -> web.Response:
            session = session_of(request)
            if session is None:
                return web.Response(status=303, headers={
                    **HTML_HEADERS, "Location": "/console/login?next="
                    + quote(f"{base}/{key}", safe="/")})
            return await claim_page(key, session)

    @app.serve(base + "/{key}/{action}", access="session")
    class ClaimAction(Page):
        async def post(self, request: Request, key: str, action: str) -> web.Response:
            checked = await acting(request, N_("Viewers cannot claim mentions."))
            if isinstance(checked, web.Response):
                return checked
            session, form = checked
            if action not in ACTIONS:
                return _html(render.message_page(N_("Not found"), N_("No such action."),
                                                 session=session), 404)
            status, data = await act(pipeline, book, key, action, by=session.user,
                                     reply_url=form.get("reply_url"),
                                     reason=form.get("reason"), source="console", kind=kind)
            if status == 200:
                return web.Response(status=303, headers={
                    **HTML_HEADERS, "Location": f"{base}/{quote(key, safe='')}"})
            if status == 409:
                return await claim_page(key, session, _lang(session)._(
                    "Not yours: {says}.").format(says=data["says"]), 409)
            return _html(render.message_page(N_("Cannot do that"), detail=str(data["error"]),
                                             session=session), status)
