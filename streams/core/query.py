"""Watch queries: Lucene-style boolean syntax, parsed with luqum into a small typed tree.

Syntax (what a comms team writes in ``watches[].query``)::

    acme AND (outage OR "data breach") NOT lang:fr
    "acme corp" OR @acme OR #acme OR $ACME         handles, hashtags, cashtags
    acme* -author:acme_support  source:reddit       wildcards, '-' / NOT, field filters

- ``AND``, ``OR``, ``NOT`` (also ``&&``, ``||``, ``!``, ``+term``, ``-term``), parentheses,
  quoted phrases, ``*`` and ``?`` wildcards.
- Terms side by side mean AND (``acme outage`` needs both), as on X and in most listening
  tools; Lucene's own default is OR, so write OR when you mean it.
- Fields: ``lang:`` (ISO 639-1, as detected), ``source:``, ``author:`` (handle, with or without
  ``@``), ``text:`` (the default). Anything else is an error.
- Matching is case- and accent-insensitive ("Café" = "cafe"); a term matches whole words
  ("acme" matches "Acme's" and "#acme", not "acmeology"); ``#acme`` matches only the hashtag,
  ``@acme`` only the handle.

An invalid query raises :class:`QueryError` with the character position, at config load.
:func:`to_query` prints a tree back as a query that parses to the same tree (fully
parenthesised); :func:`to_x_rule` translates it into an X filtered-stream rule.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Literal

from luqum import tree as lt
from luqum.exceptions import IllegalCharacterError, ParseError
from luqum.parser import parser as _parser

__all__ = [
    "FIELDS",
    "And",
    "Field",
    "Node",
    "Not",
    "Or",
    "QueryError",
    "Term",
    "fold",
    "parse_query",
    "positive_terms",
    "to_query",
    "to_x_rule",
]

FieldName = Literal["text", "lang", "source", "author"]
FIELDS: dict[str, FieldName] = {"text": "text", "lang": "lang", "language": "lang",
                                "source": "source", "author": "author"}
_MAX_QUERY = 10_000
_SPACE = re.compile(r"\s+")
_COMBINING = re.compile(r"[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]")
_ESCAPE = re.compile(r"\\(.)")
_RESERVED = set('+-&|!(){}[]^"~*?:\\/ ')


def fold(text: str) -> str:
    """Lowercase, without accents, whitespace runs as one space: how queries and texts meet.

    ASCII text (most of it) skips Unicode normalisation, which is what keeps matching fast.
    """
    if text.isascii():
        return _SPACE.sub(" ", text.lower())
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return _SPACE.sub(" ", _COMBINING.sub("", decomposed))


class QueryError(ValueError):
    """A query that cannot be used; the message names the character where it goes wrong."""


@dataclass(frozen=True)
class Term:
    """A word, phrase or wildcard pattern, already folded."""

    text: str
    phrase: bool = False

    @property
    def wildcard(self) -> bool:
        return not self.phrase and ("*" in self.text or "?" in self.text)


@dataclass(frozen=True)
class Field:
    """``name:value`` for a mention attribute other than its text."""

    name: FieldName
    term: Term


@dataclass(frozen=True)
class And:
    children: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    children: tuple[Node, ...]


@dataclass(frozen=True)
class Not:
    child: Node


Node = Term | Field | And | Or | Not


def _where(query: str, pos: int) -> str:
    pos = max(0, min(pos, len(query)))
    shown = query if len(query) <= 80 else query[max(0, pos - 40):pos + 40]
    return f"at character {pos + 1}: {shown!r}"


def parse_query(query: str) -> Node:
    """Parse ``query`` or raise :class:`QueryError` saying what is wrong and where."""
    if not query.strip():
        raise QueryError("the query is empty; write terms such as 'acme OR \"acme corp\"'")
    if len(query) > _MAX_QUERY:
        raise QueryError(f"the query is {len(query)} characters; keep it under {_MAX_QUERY}")
    try:
        tree = _parser.parse(query)
    except IllegalCharacterError as exc:
        m = re.search(r"position (\d+)", str(exc))
        pos = int(m.group(1)) if m else 0
        hint = " (an unclosed quote?)" if query[pos:pos + 1] == '"' else ""
        raise QueryError(f"unexpected character{hint} {_where(query, pos)}") from None
    except (ParseError, RecursionError) as exc:
        msg = str(exc)
        m = re.search(r"unexpected\s+'(.*)' at position (\d+)", msg)
        if m:
            raise QueryError(f"unexpected {m.group(1)!r} {_where(query, int(m.group(2)))}") \
                from None
        if "end of expression" in msg:
            raise QueryError("the query ends too early (an unclosed parenthesis or a dangling "
                             f"AND/OR/NOT?) {_where(query, len(query))}") from None
        raise QueryError(f"cannot parse the query: {msg}") from None
    return _convert(tree, query, field=None)


def _unescape(value: str) -> str:
    return _ESCAPE.sub(r"\1", value)


def _term(node: lt.Item, query: str, *, field: FieldName | None) -> Term:
    if isinstance(node, lt.Phrase):
        text = fold(_unescape(node.value[1:-1])).strip()
        if not text:
            raise QueryError(f"empty phrase {_where(query, node.pos or 0)}")
        return Term(text, phrase=True)
    value = str(node.value)
    if value in ("AND", "OR", "NOT", "&&", "||", "!"):
        raise QueryError(f"operator {value!r} without a term beside it "
                         f"{_where(query, node.pos or 0)}")
    text = fold(_unescape(value))
    if field == "author":
        text = text.lstrip("@")
    if not text.strip("*?"):
        raise QueryError(f"a wildcard needs some letters too {_where(query, node.pos or 0)}")
    return Term(text)


def _convert(node: lt.Item, query: str, *, field: FieldName | None) -> Node:
    pos = getattr(node, "pos", 0) or 0
    if isinstance(node, (lt.Word, lt.Phrase)):
        if isinstance(node, lt.Word) and node.value.startswith("!") and len(node.value) > 1:
            return Not(_convert(lt.Word(node.value[1:]), query, field=field))
        term = _term(node, query, field=field)
        return term if field in (None, "text") else Field(field or "text", term)
    if isinstance(node, lt.SearchField):
        if field is not None:
            raise QueryError(f"a field inside a field {_where(query, pos)}")
        name = FIELDS.get(node.name.lower())
        if name is None:
            raise QueryError(f"unknown field {node.name!r} {_where(query, pos)}; fields are "
                             f"{', '.join(sorted(set(FIELDS)))} (quote text with a colon)")
        inner = node.expr
        if isinstance(inner, lt.FieldGroup):
            inner = inner.expr
        return _convert(inner, query, field=name)
    if isinstance(node, (lt.Group, lt.FieldGroup)):
        return _convert(node.expr, query, field=field)
    if isinstance(node, (lt.Not, lt.Prohibit)):
        return Not(_convert(node.a, query, field=field))
    if isinstance(node, lt.Plus):
        return _convert(node.a, query, field=field)
    if isinstance(node, (lt.AndOperation, lt.OrOperation, lt.UnknownOperation)):
        parts: list[lt.Item] = list(node.children)
        is_or = isinstance(node, lt.OrOperation)
        if isinstance(node, lt.UnknownOperation):
            # "a || b" and "a && b" arrive as words between terms: make them operators.
            words = [p.value if isinstance(p, lt.Word) else None for p in parts]
            if "||" in words or "&&" in words:
                return _symbolic(parts, query, field=field)
        kids = tuple(_convert(p, query, field=field) for p in parts)
        return Or(kids) if is_or else And(kids)
    what = type(node).__name__.lower()
    raise QueryError(f"{what} queries are not supported {_where(query, pos)}; use words, "
                     "phrases, wildcards, AND/OR/NOT and lang:/source:/author:")


def _symbolic(parts: list[lt.Item], query: str, *, field: FieldName | None) -> Node:
    """``a && b || c``: && binds tighter than ||, as in Lucene."""
    groups: list[list[Node]] = [[]]
    expect_term = True
    for part in parts:
        value = part.value if isinstance(part, lt.Word) else None
        if value in ("||", "&&"):
            if expect_term:
                raise QueryError(f"{value!r} without a term before it "
                                 f"{_where(query, getattr(part, 'pos', 0) or 0)}")
            if value == "||":
                groups.append([])
            expect_term = True
            continue
        groups[-1].append(_convert(part, query, field=field))
        expect_term = False
    if expect_term:
        raise QueryError(f"the query ends with an operator {_where(query, len(query))}")
    ors = [g[0] if len(g) == 1 else And(tuple(g)) for g in groups]
    return ors[0] if len(ors) == 1 else Or(tuple(ors))


def positive_terms(node: Node) -> list[str]:
    """Text terms the query looks for (not under NOT), wildcards without their ``*``."""
    out: list[str] = []

    def walk(n: Node, negated: bool) -> None:
        if isinstance(n, Term):
            if not negated:
                # A wildcard's longest literal piece: a prefilter may over-include, never miss.
                text = max(re.split(r"[*?]", n.text), key=len).strip() if n.wildcard else n.text
                if text and text not in out:
                    out.append(text)
        elif isinstance(n, Not):
            walk(n.child, not negated)
        elif isinstance(n, (And, Or)):
            for c in n.children:
                walk(c, negated)

    walk(node, False)
    return out


def _quote_term(term: Term) -> str:
    if term.phrase:
        return '"' + term.text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return "".join("\\" + ch if ch in _RESERVED and ch not in "*?" else ch for ch in term.text)


def to_query(node: Node) -> str:
    """The tree as query text; ``parse_query(to_query(t)) == t`` (fully parenthesised)."""
    if isinstance(node, Term):
        return _quote_term(node)
    if isinstance(node, Field):
        return f"{node.name}:{_quote_term(node.term)}"
    if isinstance(node, Not):
        return f"NOT {_wrap(node.child)}"
    joiner = " AND " if isinstance(node, And) else " OR "
    return joiner.join(_wrap(c) for c in node.children)


def _wrap(node: Node) -> str:
    text = to_query(node)
    return f"({text})" if isinstance(node, (And, Or)) and len(node.children) > 1 else text


def to_x_rule(node: Node) -> str:
    """An X (Twitter API v2) filtered-stream rule for the query.

    X has no wildcards: ``acme*`` becomes ``acme``, which X matches as a token (a broader or
    narrower net; the watch's own matcher still decides). ``source:`` has no X equivalent
    and is dropped (the rule only feeds the X connector); ``author:`` becomes ``from:``.
    """
    if isinstance(node, Term):
        text = node.text.replace("*", "").replace("?", "")
        return f'"{text}"' if node.phrase or " " in text else text
    if isinstance(node, Field):
        value = node.term.text.replace("*", "").replace("?", "")
        if node.name == "lang":
            return f"lang:{value}"
        if node.name == "author":
            return f"from:{value}"
        if node.name == "text":
            return to_x_rule(node.term)
        return ""
    if isinstance(node, Not):
        inner = to_x_rule(node.child)
        return f"-{inner}" if inner else ""
    parts = [p for p in (to_x_rule(c) for c in node.children) if p]
    if not parts:
        return ""
    if len(parts) == 1:
        return parts[0]
    joined = " OR ".join(parts) if isinstance(node, Or) else " ".join(parts)
    return f"({joined})"
