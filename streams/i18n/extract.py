"""Which strings the code asks to translate, found by reading the source (``ast``).

Babel's Python extractor reads f-strings as one token on Python 3.11, so a ``_("…")`` inside
``f"{_('…')}"`` is invisible to it; the syntax tree sees every call. Recognised: ``_("…")``,
``N_("…")``, ``<x>.gettext("…")``, ``<x>.ngettext("…", "…", n)`` and
``<x>.pgettext("context", "…")`` with literal strings; a context message is keyed
``"context\x04msgid"`` as in a compiled catalogue (see :func:`split`).

``python -m streams.i18n.extract`` adds new strings to every shipped catalogue (untranslated,
for a translator to fill) and lists the ones no longer used; the test suite fails while any
string lacks a translation.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterable
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po, write_po

from streams.i18n import DOMAIN, LOCALES_DIR, SHIPPED

__all__ = ["PACKAGES", "SOURCES", "Message", "marking_modules", "messages", "split",
           "update_catalogues"]

ROOT = Path(__file__).resolve().parents[2]
#: The modules whose words are translated; a new one is added here.
SOURCES = ("notifiers/slack.py", "streams/web/console/render.py", "streams/reports/render.py",
           "streams/reports/pdf.py", "streams/i18n/__init__.py", "notifiers/followup.py",
           "notifiers/stories.py", "notifiers/card.py", "notifiers/teams.py",
           "notifiers/googlechat.py", "notifiers/push.py", "notifiers/pagerduty.py",
           "notifiers/email.py", "notifiers/email_message.py",
           "streams/web/console/silences.py", "streams/web/console/episode.py",
           "streams/web/console/mentions.py", "streams/web/console/claims.py",
           "streams/i18n/summaries.py", "streams/i18n/timeline.py", "streams/web/console/routes.py",
           "streams/web/console/mentions_routes.py", "streams/reports/charts.py")
#: Where product code lives: a module here that marks a string must be in SOURCES.
PACKAGES = ("agents", "models", "notifiers", "streams")

Message = str | tuple[str, str]  # msgid, or (singular, plural)
_SINGLE = {"_", "N_", "gettext"}


def _name(func: ast.expr) -> str | None:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return None


def _literal(node: ast.expr) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) \
        else None


def split(msg: Message) -> tuple[str | None, Message]:
    """``(context, msgid)`` of a key from :func:`messages`."""
    if isinstance(msg, str) and "\x04" in msg:
        context, _, msgid = msg.partition("\x04")
        return context, msgid
    return None, msg


def messages(paths: Iterable[str] = SOURCES, root: Path = ROOT) -> dict[Message, list[str]]:
    """Every literal message in ``paths`` with where it is used (``path:line``)."""
    found: dict[Message, list[str]] = {}
    for rel in paths:
        tree = ast.parse((root / rel).read_text(encoding="utf-8"), filename=rel)
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call) or not node.args:
                continue
            name = _name(node.func)
            msg: Message | None = None
            if name in _SINGLE:
                msg = _literal(node.args[0])
            elif name == "pgettext" and len(node.args) >= 2:
                ctx, text = _literal(node.args[0]), _literal(node.args[1])
                msg = f"{ctx}\x04{text}" if ctx is not None and text is not None else None
            elif name == "ngettext" and len(node.args) >= 2:
                one, many = _literal(node.args[0]), _literal(node.args[1])
                msg = (one, many) if one is not None and many is not None else None
            if msg is not None:
                found.setdefault(msg, []).append(f"{rel}:{node.lineno}")
    return found


def marking_modules(root: Path = ROOT) -> list[str]:
    """Every module under :data:`PACKAGES` that marks a string for translation, so a module
    newly wrapped but not listed in :data:`SOURCES` is found (its strings would otherwise
    never reach the catalogue, and the completeness check would pass without them)."""
    return [rel for top in PACKAGES for path in sorted((root / top).rglob("*.py"))
            if messages([rel := path.relative_to(root).as_posix()], root)]


def update_catalogues() -> list[str]:
    """Add new messages to each shipped ``.po``; returns what is no longer used."""
    found = messages()
    stale: list[str] = []
    for language in sorted(SHIPPED - {"en"}):
        path = LOCALES_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po"
        with path.open("rb") as fh:
            catalog: Catalog = read_po(fh, locale=language, domain=DOMAIN)
        for key, where in found.items():
            context, msg = split(key)
            if catalog.get(msg, context=context) is None:
                catalog.add(msg, string=("", "") if isinstance(msg, tuple) else "",
                            context=context,
                            locations=[(w.rsplit(":", 1)[0], int(w.rsplit(":", 1)[1]))
                                       for w in where])
        keys = {(c, m[0] if isinstance(m, tuple) else m) for c, m in map(split, found)}
        stale += [f"{language}: {m.id!r}" for m in catalog if m.id and
                  (m.context, m.id[0] if isinstance(m.id, tuple) else m.id) not in keys]
        with path.open("wb") as fh:
            write_po(fh, catalog, width=100, omit_header=False, include_lineno=False)
    return stale


if __name__ == "__main__":  # pragma: no cover - a maintainer's tool
    for line in update_catalogues():
        print("unused:", line, file=sys.stderr)
