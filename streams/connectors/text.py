"""HTML from a source (RSS summaries, Mastodon statuses, HN comments) as plain mention text.

Entities are decoded, scripts and styles dropped, and block tags become breaks, so words on
either side of a ``<p>`` do not run together for the matcher and the model. The result is
plain text: every channel escapes it again for its own format.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

__all__ = ["html_to_text"]

_SKIP = frozenset({"script", "style", "head", "title"})
_LINE = frozenset({"br", "li", "tr"})
_BLOCK = frozenset({"p", "div", "blockquote", "pre", "ul", "ol", "table", "hr", "h1", "h2",
                    "h3", "h4", "h5", "h6"})


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP:
            self._skipping += 1
        elif tag in _LINE:
            self.parts.append("\n")
        elif tag in _BLOCK:
            self.parts.append("\n\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP:
            self._skipping = max(0, self._skipping - 1)
        elif tag in _BLOCK:
            self.parts.append("\n\n")

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.parts.append(data)


def html_to_text(html: object, *, lines: bool = False) -> str:
    """Plain text of an HTML fragment (anything not a string: ""); one line unless ``lines``.

    With ``lines``, ``<br>`` is a line break and a paragraph a blank line (Mastodon posts).
    """
    if not isinstance(html, str) or not html:
        return ""
    parser = _Text()
    parser.feed(html)
    parser.close()
    text = "".join(parser.parts)
    if not lines:
        return " ".join(text.split())
    text = re.sub(r"[ \t\r\f\v]+\n", "\n", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip()
