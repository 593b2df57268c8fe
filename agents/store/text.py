"""The words of a mention as the store indexes them, and the words of a query term.

Both backends index the same tokens, made here in Python rather than by SQLite's tokenizer or
PostgreSQL's parser, so a search finds the same mentions on either and agrees with the watch
matcher (agents/classify/matching.py):

- text is folded first with :func:`streams.core.query.fold` (lower case, accents removed:
  "Café" is "cafe" in every language, which is why PostgreSQL needs no ``unaccent`` nor a
  language configuration here), then cut into runs of word characters (letters, digits, '_');
- ``#acme`` is the word "acme" (a hashtag is about acme) and also the tag token ``#acme``,
  which only a ``#acme`` term finds; ``@acme`` and ``$acme`` are tokens of their own (a handle
  or a ticker is not the word), and a word right after a stray '@' or '$' ("bob@acme.com") is
  no word at all, as for the matcher;
- tag tokens follow the words, so they never sit inside a phrase.

A term of a query is cut the same way, keeping ``*`` and ``?`` inside its tokens. Tokens are
cut to :data:`MAX_TOKEN` characters and a text to its first :data:`MAX_WORDS` words and
:data:`MAX_DOC_CHARS` characters (PostgreSQL refuses longer lexemes and documents, and stops
counting positions at 16383), identically for texts and queries, so a long word still finds
itself; the rest of a very long text is not searchable.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from streams.core.query import fold

__all__ = ["MAX_DOC_CHARS", "MAX_TOKEN", "MAX_WORDS", "Document", "QueryToken", "document",
           "query_tokens"]

#: Longest token kept, in characters (a PostgreSQL lexeme may not pass 2046 bytes).
MAX_TOKEN: Final = 100
#: Words indexed per text (PostgreSQL positions end at 16383).
MAX_WORDS: Final = 16_000
#: Characters of tokens indexed per text: folding can make a text longer (NFKD turns one
#: character into up to 18), and a PostgreSQL tsvector may not pass 1 MB.
MAX_DOC_CHARS: Final = 150_000
_MAX_TAGS: Final = 500
_SIGILS: Final = "@#$"
_TEXT_RUN = re.compile(r"[@#$]?\w+")
_QUERY_RUN = re.compile(r"[@#$]?[\w*?]+")


def _wordlike(ch: str) -> bool:
    return ch.isalnum() or ch == "_"


def _runs(folded: str, pattern: re.Pattern[str]) -> list[tuple[str, str]]:
    """(kind, token) for each run: kind 'word' (a word, or a handle/ticker with its sigil),
    'tag' (``#word``, also indexed as its word) or 'none' (a word the matcher never sees)."""
    out: list[tuple[str, str]] = []
    for m in pattern.finditer(folded):
        run = m.group()
        before = folded[m.start() - 1] if m.start() else ""
        sigil = run[0] if run[0] in _SIGILS else ""
        word = run[len(sigil):][:MAX_TOKEN]
        if not word.strip("*?") and pattern is _QUERY_RUN:
            continue  # a lone wildcard: nothing to look for
        if sigil and not (before and (_wordlike(before) or before in _SIGILS)):
            out.append(("tag", f"#{word}") if sigil == "#" else ("word", sigil + word))
        elif sigil in ("@", "$"):
            out.append(("none", word))  # "bob@acme.com": neither "acme" nor "@acme"
        else:
            out.append(("word", word))
    return out


@dataclass(frozen=True)
class Document:
    """What the store indexes for one text: its words in order, then its tags."""

    words: tuple[str, ...]
    tags: tuple[str, ...]

    @property
    def text(self) -> str:
        """The words then the tags, space-separated: the column both backends search."""
        return " ".join(self.words + self.tags)

    def tsvector(self) -> str:
        """PostgreSQL's ``tsvector`` input for the document: each token with its position.

        Tokens hold word characters and a sigil only, never a quote or a backslash, so
        quoting them is enough; the result is sent as a bound parameter all the same."""
        parts = [f"'{w}':{i}" for i, w in enumerate(self.words, start=1)]
        start = len(self.words) + 1
        parts += [f"'{t}':{min(start + i, 16383)}" for i, t in enumerate(self.tags)]
        return " ".join(parts)


def document(text: str) -> Document:
    words: list[str] = []
    tags: list[str] = []
    size = 0
    for kind, token in _runs(fold(text), _TEXT_RUN):
        if kind == "none":
            continue
        size += len(token) + 1
        if size > MAX_DOC_CHARS:
            break
        if kind == "tag":
            words.append(token[1:])
            if token not in tags and len(tags) < _MAX_TAGS:
                tags.append(token)
        else:
            words.append(token)
        if len(words) >= MAX_WORDS:
            break
    return Document(tuple(words), tuple(tags))


@dataclass(frozen=True)
class QueryToken:
    """One token of a query term: ``text`` as indexed (``#x`` for a tag), maybe with wildcards."""

    text: str
    tag: bool

    @property
    def word(self) -> str:
        """The token as a word in a phrase: a tag is its word there."""
        return self.text[1:] if self.tag else self.text

    @property
    def wild(self) -> bool:
        return "*" in self.text or "?" in self.text

    @property
    def prefix(self) -> str | None:
        """For ``acme*`` (one trailing star, letters before it): ``acme``; else None."""
        body = self.text[:-1]
        if self.text.endswith("*") and body.strip("#@$") and "*" not in body \
                and "?" not in body:
            return body
        return None


def query_tokens(term_text: str, *, phrase: bool) -> list[QueryToken]:
    """The tokens of a (folded) query term; a phrase's wildcards are plain characters."""
    runs = _runs(term_text, _TEXT_RUN if phrase else _QUERY_RUN)
    return [QueryToken(tok, kind == "tag") for kind, tok in runs if kind != "none"]
