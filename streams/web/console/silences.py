"""The console's silences page: every silence with its state, and an Expire button.

Matchers, comments and names come from requests (the API, the console, the CLI): all escaped.
``render.silences_page`` puts this section in the console's layout.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from html import escape

from streams.core.silences import Silence, SilenceState, is_configured
from streams.web.console.auth import Session

__all__ = ["silences_section"]


def e(value: object) -> str:
    return escape(str(value), quote=True)


def _when(t: datetime | None) -> str:
    if t is None:
        return ""
    t = t.astimezone(UTC)
    return f'<time datetime="{e(t.isoformat())}">{t:%Y-%m-%d %H:%M} UTC</time>'


def _matchers(s: Silence) -> str:
    # "watch=acme", "severity!=info", "watch~rival-.*": the value already holds its operator.
    parts = [f"{label}{'' if value[:1] in '!~=' else '='}{value}"
             for label, value in s.matchers.items()]
    return " ".join(f"<code>{e(p)}</code>" for p in parts)


def _action(s: Silence, state: SilenceState, session: Session, csrf: str) -> str:
    if state == "expired":
        return (f"expired by {e(s.expired_by)} {_when(s.expired_at)}" if s.expired_by
                else "ended")
    if is_configured(s.id):
        return '<span class="note">in escucha.yaml: change it there</span>'
    if not session.can_act:
        return ""
    return (f'<form method="post" action="/console/silences/{e(s.id)}/expire" class="inline">'
            f'<input type="hidden" name="csrf" value="{e(csrf)}">'
            f'<button type="submit">Expire<span class="sr-only"> silence {e(s.id)}</span>'
            '</button></form>')


def silences_section(silences: Sequence[tuple[Silence, SilenceState]], *, session: Session,
                     csrf: str, notice: str = "") -> str:
    rows = "".join(
        f'<tr data-id="{e(s.id)}" class="silence-{state}">'
        f'<td><span class="state silence-state-{state}">{state}</span></td>'
        f'<td>{_matchers(s)}{" <strong>(every incident)</strong>" if s.all else ""}</td>'
        f'<td>{_when(s.starts_at)}</td><td>{_when(s.ends_at)}</td>'
        f'<td>{e(s.created_by)}</td><td>{e(s.comment)}</td>'
        f'<td>{_action(s, state, session, csrf)}</td></tr>'
        for s, state in silences)
    if not rows:
        rows = '<tr><td colspan="7" class="empty">No silences.</td></tr>'
    note = f'<p class="notice" role="status">{e(notice)}</p>' if notice else ""
    body = (
        f'<h1>Silences</h1>{note}'
        '<p>A silence holds back notifications for the incidents it matches. Expiring one ends '
        'it now, on every worker: an incident it held escalates within seconds. It stays '
        'listed, as expired.</p>'
        '<div class="table-wrap"><table class="silences"><caption class="sr-only">Silences, '
        'active first</caption><thead><tr><th scope="col">State</th><th scope="col">Matchers'
        '</th><th scope="col">From</th><th scope="col">Until</th><th scope="col">Created by'
        '</th><th scope="col">Comment</th><th scope="col">Expire</th></tr></thead>'
        f'<tbody>{rows}</tbody></table></div>')
    return body
