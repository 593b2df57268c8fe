"""Untrusted text stays text: cleaning and escaping of mention text for every channel.

Mention text, author names and URLs come from strangers on the internet. Before any of it
reaches a channel it is cleaned (no control characters, no lone surrogates, bounded length)
and escaped for that channel's markup, so it can neither notify anyone nor hide a link.
"""

from __future__ import annotations

import html
import re
import unicodedata
from urllib.parse import urlsplit

__all__ = ["chat_escape", "clean", "console_safe", "html_escape", "no_broadcast", "safe_url",
           "slack_escape", "teams_escape", "truncate"]

# C0/C1 controls except tab and newline; includes ESC, so no terminal escape sequences.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
# Slack turns these into pings when they appear with link_names or inside <...>.
_BROADCAST = re.compile(r"@(here|channel|everyone)\b", re.IGNORECASE)
_BIDI = re.compile("[\u202a-\u202e\u2066-\u2069]")  # direction overrides disguise text
_LINE_BREAK = re.compile("[\t\n\u2028\u2029]")
# What the Adaptive Card TextBlock Markdown subset (CommonMark) and its {{DATE()}} functions
# give meaning to; a backslash before ASCII punctuation makes it a literal in CommonMark.
_TEAMS_MARKDOWN = re.compile(r"([\\`*_{}\[\]()#+\-.!<>~|])")


def truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: max(0, limit - 1)] + "…"


def clean(text: str, *, limit: int = 2000) -> str:
    """Printable, valid UTF-8, bounded: the common base of every channel's escaping."""
    text = text.encode("utf-8", "replace").decode("utf-8", "replace")  # lone surrogates
    text = _CONTROL.sub(" ", text)
    text = _BIDI.sub("", text)
    text = unicodedata.normalize("NFC", text)
    return truncate(text, limit)


def slack_escape(text: str, *, limit: int = 2000) -> str:
    """Escape for Slack mrkdwn: no links, no mentions, no broadcast pings."""
    text = clean(text, limit=limit)
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    # A zero-width joiner after "@" keeps the word readable but never a ping.
    return _BROADCAST.sub(lambda m: "@\u2060" + m.group(1), text)


def no_broadcast(text: str) -> str:
    """``@here``/``@channel``/``@everyone`` kept readable but never a ping (a word joiner
    after the ``@``)."""
    return _BROADCAST.sub(lambda m: "@\u2060" + m.group(1), text)


def teams_escape(text: str, *, limit: int = 2000) -> str:
    """Escape for a Teams Adaptive Card ``TextBlock`` (Markdown subset): no bold, links, lists
    or date functions; ``<at>`` is inert without ``msteams.entities`` and escaped anyway.
    Text that needs no markup at all is better put in a ``TextRun``, which has none."""
    return no_broadcast(_TEAMS_MARKDOWN.sub(r"\\\1", clean(text, limit=limit)))


def chat_escape(text: str, *, limit: int = 2000) -> str:
    """Escape for Google Chat card text (an HTML subset): no tags, no links, no
    ``<users/all>`` mention; ``&``, ``<`` and ``>`` become entities."""
    text = clean(text, limit=limit)
    return no_broadcast(text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;"))


def html_escape(text: str, *, limit: int = 2000) -> str:
    """Escape for HTML text and quoted attribute values: no tags, no entities, no way out of
    an attribute. Cleaned first so the length bound applies to what the reader sees."""
    return html.escape(clean(text, limit=limit), quote=True)


def console_safe(text: str, *, limit: int = 500) -> str:
    """One line for a terminal or log: no escape sequences, no line breaks."""
    # U+2028/U+2029 are line breaks to str.splitlines() and many log viewers.
    return _LINE_BREAK.sub(" ", clean(text, limit=limit))


def safe_url(url: str | None) -> str | None:
    """The URL if it is a plain http(s) link safe to put in markup, else None."""
    if not url:
        return None
    url = clean(url, limit=2048)
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    if any(ch in url for ch in "<>|\" \n"):
        return None
    return url
