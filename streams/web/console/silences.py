"""The console's silences page: every silence with its state, and an Expire button.

Matchers, comments and names come from requests (the API, the console, the CLI): all escaped.
``render.silences_page`` puts this section in the console's layout.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from html import escape

from streams.core.silences import Silence, SilenceState, is_configured
from streams.i18n import EN, N_, Lang
from streams.web.console.auth import Session

__all__ = ["silences_section"]


def e(value: object) -> str:
    return escape(str(value), quote=True)


#: A silence's state as shown; the class names and stored values stay English.
_STATES = {"active": N_("active"), "pending": N_("pending"), "expired": N_("expired")}


def _when(t: datetime | None, lang: Lang) -> str:
    if t is None:
        return ""
    t = t.astimezone(UTC)
    shown = f"{t:%Y-%m-%d %H:%M} UTC" if lang.unset else lang.at(t)
    return f'<time datetime="{e(t.isoformat())}">{e(shown)}</time>'


def _matchers(s: Silence) -> str:
    # "watch=acme", "severity!=info", "watch~rival-.*": the value already holds its operator.
    parts = [f"{label}{'' if value[:1] in '!~=' else '='}{value}"
             for label, value in s.matchers.items()]
    return " ".join(f"<code>{e(p)}</code>" for p in parts)


def _action(s: Silence, state: SilenceState, session: Session, csrf: str, lang: Lang) -> str:
    _ = lang._
    if state == "expired":
        return (_("expired by {who} {time}").format(who=e(s.expired_by),
                                                     time=_when(s.expired_at, lang))
                if s.expired_by else e(_("ended")))
    if is_configured(s.id):
        return f'<span class="note">{e(_("in escucha.yaml: change it there"))}</span>'
    if not session.can_act:
        return ""
    return (f'<form method="post" action="/console/silences/{e(s.id)}/expire" class="inline">'
            f'<input type="hidden" name="csrf" value="{e(csrf)}">'
            f'<button type="submit">{e(_("Expire"))}<span class="sr-only"> '
            f'{e(_("silence {id}").format(id=s.id))}</span></button></form>')


def silences_section(silences: Sequence[tuple[Silence, SilenceState]], *, session: Session,
                     csrf: str, notice: str = "", lang: Lang = EN) -> str:
    """The page's body in ``lang`` (the signed-in user's); request-made text stays as typed."""
    _ = lang._
    every = e(_("(every incident)"))
    rows = "".join(
        f'<tr data-id="{e(s.id)}" class="silence-{state}">'
        f'<td><span class="state silence-state-{state}">'
        f'{e(_(_STATES[state]) if state in _STATES else state)}</span></td>'
        f'<td>{_matchers(s)}{f" <strong>{every}</strong>" if s.all else ""}</td>'
        f'<td>{_when(s.starts_at, lang)}</td><td>{_when(s.ends_at, lang)}</td>'
        f'<td>{e(s.created_by)}</td><td>{e(s.comment)}</td>'
        f'<td>{_action(s, state, session, csrf, lang)}</td></tr>'
        for s, state in silences)
    if not rows:
        rows = f'<tr><td colspan="7" class="empty">{e(_("No silences."))}</td></tr>'
    note = f'<p class="notice" role="status">{e(_(notice))}</p>' if notice else ""
    head = "".join(f'<th scope="col">{e(h)}</th>' for h in (
        _("State"), _("Matchers"), _("From"), _("Until"), _("Created by"), _("Comment"),
        _("Expire")))
    intro = _("A silence holds back notifications for the incidents it matches. Expiring "
              "one ends it now, on every worker: an incident it held escalates within "
              "seconds. It stays listed, as expired.")
    return (
        f'<h1>{e(_("Silences"))}</h1>{note}<p>{e(intro)}</p>'
        f'<div class="table-wrap"><table class="silences"><caption class="sr-only">'
        f'{e(_("Silences, active first"))}</caption><thead><tr>{head}</tr></thead>'
        f'<tbody>{rows}</tbody></table></div>')
