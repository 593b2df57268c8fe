"""A watch query's tree (streams/core/query.py) compiled to a SQL condition, per backend.

The search box takes the syntax of watches, parsed by the same parser; this module only
translates the tree. Every value the user typed travels as a bound parameter: the SQL text is
made of fixed fragments and placeholders, never of the query's words (a test sends hostile
input to prove it).

Translation, both backends alike (the tokens are agents/store/text.py's):

- a word, a phrase or a term with punctuation ("acme.com") is a phrase of its tokens; a
  ``#tag`` inside a phrase counts as its word there, and the tag must also be present;
- ``acme*`` (a trailing star) is a prefix search of the full-text index;
- any other wildcard (``ac?e``, ``*cme``, ``a*e``) is matched against the stored words (a
  glob in SQLite, a regular expression in PostgreSQL), narrowed first by the index on the
  letters before the first wildcard when there are some (a leading wildcard reads every row:
  slow on a large store);
- ``lang:``, ``source:``, ``author:`` compare columns (``*``/``?`` as ``LIKE``);
- subtrees made only of index searches go to the index as one expression (SQLite's FTS5
  ``MATCH``; PostgreSQL's ``tsquery``), the rest is SQL ``AND``/``OR``/``NOT`` around them.

A term with no word at all in it (only punctuation) matches nothing: the index keeps words.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from agents.store.text import QueryToken, query_tokens
from streams.core.query import And, Field, Node, Not, Term

__all__ = ["Compiled", "Dialect", "FtsMode", "compile_query", "glob_match", "like_pattern",
           "token_regex"]

#: How a full-text condition runs (SQLite; PostgreSQL's planner decides for itself):
#: ``driver``, its matches are the rows the search starts from; ``set``, rows found another
#: way are tested against its matches, read once; ``probe``, each row is looked up in the
#: index. Only the condition at the top of a query can drive; the others are sets.
FtsMode = Literal["driver", "set", "probe"]
AttrColumn = Literal["language", "source", "author"]
_ATTR: dict[str, AttrColumn] = {"lang": "language", "source": "source", "author": "author"}


@dataclass(frozen=True)
class _Fts:
    """Tokens in a row (a phrase; one token: a word or tag), the last a prefix or not."""

    tokens: tuple[str, ...]
    prefix: bool = False


@dataclass(frozen=True)
class _Wildcard:
    """Tokens in a row of the stored words, ``*`` and ``?`` inside them."""

    tokens: tuple[str, ...]


@dataclass(frozen=True)
class _Attr:
    column: AttrColumn
    value: str
    like: bool


@dataclass(frozen=True)
class _Nothing:
    pass


@dataclass(frozen=True)
class _And:
    children: tuple[_Ir, ...]


@dataclass(frozen=True)
class _Or:
    children: tuple[_Ir, ...]


@dataclass(frozen=True)
class _Not:
    child: _Ir


_Ir = _Fts | _Wildcard | _Attr | _Nothing | _And | _Or | _Not


class Dialect(Protocol):
    """What differs between the backends; the rest of the translation is shared."""

    #: The driver's placeholder: ``?`` (sqlite3) or ``%s`` (psycopg).
    placeholder: str
    #: Whether the index language has a unary NOT (tsquery ``!``; FTS5 has only ``a NOT b``).
    unary_not: bool

    def fts_atom(self, tokens: tuple[str, ...], prefix: bool) -> str:
        """One phrase in the index's query language."""

    def fts_join(self, op: Literal["and", "or"], parts: list[str]) -> str: ...

    def fts_not(self, positive: str | None, negative: str) -> str:
        """``positive AND NOT negative``, or ``NOT negative`` alone when ``unary_not``."""

    def fts_condition(self, mode: FtsMode) -> str:
        """A condition on mention ``m`` taking the index expression as its one parameter."""

    def wildcard_condition(self, tokens: tuple[str, ...]) -> tuple[str, str]:
        """A condition on mention ``m``'s words (with ``{}`` for its one parameter) that
        holds when ``tokens`` (wildcards inside) stand in a row there, and that parameter."""

    def index_hint(self, sort: str) -> str:
        """What follows ``FROM mentions m`` to walk the sort's own index ("" if none)."""


@dataclass(frozen=True)
class Compiled:
    sql: str
    params: tuple[object, ...]
    #: The full-text expression the whole query needs (ANDed at its top), if any: what a
    #: backend estimates to choose its :data:`FtsMode`.
    driver_fts: str | None = None


def compile_query(node: Node, dialect: Dialect, *, driver: FtsMode = "set") -> Compiled:
    """The condition on mention ``m`` (the mentions table) that ``node`` describes; the
    full-text condition at its top runs as ``driver`` says."""
    params: list[object] = []
    render = _Render(dialect, params, driver=driver)
    sql = render.sql(_ir(node), top=True)
    return Compiled(sql, tuple(params), render.driver_fts)


# --- the tree, translated ------------------------------------------------------------------

def _ir(node: Node) -> _Ir:
    if isinstance(node, Term):
        return _term(node)
    if isinstance(node, Field):
        if node.name == "text":
            return _term(node.term)
        value = node.term.text
        if node.term.wildcard:
            return _Attr(_ATTR[node.name], like_pattern(value), like=True)
        return _Attr(_ATTR[node.name], value, like=False)
    if isinstance(node, Not):
        return _Not(_ir(node.child))
    kids = tuple(_ir(c) for c in node.children)
    return _And(kids) if isinstance(node, And) else _Or(kids)


def _term(term: Term) -> _Ir:
    tokens = query_tokens(term.text, phrase=term.phrase)
    if not tokens:
        return _Nothing()
    last = tokens[-1]
    if any(t.wild for t in tokens[:-1]) or (last.wild and last.prefix is None):
        return _wildcard(tokens)
    if len(tokens) == 1:
        if last.prefix is not None:
            return _Fts((last.prefix,), prefix=True)
        return _Fts((last.text,))
    words = [t.word for t in tokens]
    if last.prefix is not None:
        words[-1] = last.prefix[1:] if last.tag else last.prefix
    parts: list[_Ir] = [_Fts(tuple(words), prefix=last.prefix is not None)]
    for t in tokens:  # the tags themselves, wherever they are in the text
        if t.tag:
            parts.append(_Fts((t.prefix,), prefix=True) if t.prefix else _Fts((t.text,)))
    return parts[0] if len(parts) == 1 else _And(tuple(parts))


def _wildcard(tokens: list[QueryToken]) -> _Ir:
    parts: list[_Ir] = []
    for t in tokens:  # narrow with the index first, where a token has letters to look up
        lead = _lead(t.text)
        if not t.wild:
            parts.append(_Fts((t.text,)))
        elif lead.strip("#@$"):
            parts.append(_Fts((lead,), prefix=True))
    if len(tokens) == 1:
        parts.append(_Wildcard((tokens[0].text,)))
    else:
        parts.append(_Wildcard(tuple(t.word for t in tokens)))
        parts += [_Wildcard((t.text,)) for t in tokens if t.tag and t.wild]
    return parts[0] if len(parts) == 1 else _And(tuple(parts))


def _lead(text: str) -> str:
    cut = min((i for i in (text.find("*"), text.find("?")) if i >= 0), default=len(text))
    return text[:cut]


def token_regex(tokens: list[str]) -> str:
    """Tokens in a row of the stored words, as a regular expression for PostgreSQL's ``~``:
    ``*`` any characters within one token, ``?`` one. Tokens hold word characters (never
    special) and a sigil, of which only ``$`` needs escaping. (PostgreSQL's engine does not
    backtrack on ``a*a*a*…b``; Python's does, for ever: SQLite matches with
    :func:`glob_match` instead.)"""
    body = " ".join(
        "".join("[^ ]*" if ch == "*" else "[^ ]" if ch == "?" else "\\$" if ch == "$" else ch
                for ch in token)
        for token in tokens)
    return f"(^| ){body}( |$)"


def _glob1(pattern: str, word: str) -> bool:
    """One token against one glob, in time linear in their product (no backtracking blowup):
    on a mismatch, only the last ``*`` is moved on."""
    p = w = 0
    star, mark = -1, 0
    while w < len(word):
        if p < len(pattern) and pattern[p] in ("?", word[w]) and pattern[p] != "*":
            p, w = p + 1, w + 1
        elif p < len(pattern) and pattern[p] == "*":
            star, mark = p, w
            p += 1
        elif star >= 0:
            mark += 1
            p, w = star + 1, mark
        else:
            return False
    return all(ch == "*" for ch in pattern[p:])


def glob_match(globs: str, words: str) -> bool:
    """Whether the space-separated ``globs`` stand in a row among the space-separated
    ``words`` (SQLite's ``escucha_glob``; the same as :func:`token_regex` does)."""
    want, have = globs.split(" "), words.split(" ")
    return any(all(_glob1(g, have[i + j]) for j, g in enumerate(want))
               for i in range(len(have) - len(want) + 1))


def like_pattern(value: str) -> str:
    """A field wildcard as a ``LIKE`` pattern (``ESCAPE '\\'``): ``*`` is ``%``, ``?`` is ``_``."""
    escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%").replace("?", "_")


# --- rendering -------------------------------------------------------------------------------

class _Render:
    def __init__(self, dialect: Dialect, params: list[object], *, driver: FtsMode) -> None:
        self.d = dialect
        self.params = params
        self.driver = driver
        self.driver_fts: str | None = None

    def _fts_condition(self, ir: _Ir, *, top: bool) -> str:
        expression = self.fts(ir)
        if top:
            self.driver_fts = expression
        template = self.d.fts_condition(self.driver if top else "set")
        return template.replace("{}", self._bind(expression))

    def _bind(self, value: object) -> str:
        self.params.append(value)
        return self.d.placeholder

    def pure(self, ir: _Ir) -> bool:
        """Whether the index alone can answer ``ir`` (one expression in its language)."""
        if isinstance(ir, _Fts):
            return True
        if isinstance(ir, _Not):
            return self.d.unary_not and self.pure(ir.child)
        if isinstance(ir, _Or):
            return all(self.pure(c) for c in ir.children)
        if isinstance(ir, _And):
            pos, _neg, rest = self._split(ir.children)
            return not rest and bool(pos)
        return False

    def _split(self, children: tuple[_Ir, ...]) -> tuple[list[_Ir], list[_Ir], list[_Ir]]:
        """An AND's children: index-pure positives, negations the index can attach to them
        (FTS5's binary NOT), and the rest."""
        pos, neg, rest = [], [], []
        for c in children:
            if self.pure(c):
                pos.append(c)
            elif isinstance(c, _Not) and not self.d.unary_not and self.pure(c.child):
                neg.append(c.child)
            else:
                rest.append(c)
        if not pos:  # FTS5 cannot say "NOT x" without something before it
            rest += [_Not(c) for c in neg]
            neg = []
        return pos, neg, rest

    def fts(self, ir: _Ir) -> str:
        d = self.d
        if isinstance(ir, _Fts):
            return d.fts_atom(ir.tokens, ir.prefix)
        if isinstance(ir, _Not):
            return d.fts_not(None, self.fts(ir.child))
        if isinstance(ir, _Or):
            return d.fts_join("or", [self.fts(c) for c in ir.children])
        assert isinstance(ir, _And)
        pos, neg, _ = self._split(ir.children)
        expr = d.fts_join("and", [self.fts(c) for c in pos])
        for n in neg:
            expr = d.fts_not(expr, self.fts(n))
        return expr

    def sql(self, ir: _Ir, *, top: bool = False) -> str:
        if self.pure(ir):
            return self._fts_condition(ir, top=top)
        if isinstance(ir, _Wildcard):
            template, value = self.d.wildcard_condition(ir.tokens)
            return template.replace("{}", self._bind(value))
        if isinstance(ir, _Attr):
            column = f"m.{ir.column}"
            if ir.like:
                return f"{column} LIKE {self._bind(ir.value)} ESCAPE '\\'"
            return f"{column} = {self._bind(ir.value)}"
        if isinstance(ir, _Nothing):
            return "1 = 0"
        if isinstance(ir, _Not):
            return f"NOT ({self.sql(ir.child)})"
        if isinstance(ir, _Or):
            pure = [c for c in ir.children if self.pure(c)]
            rest = [c for c in ir.children if not self.pure(c)]
            parts = [self.sql(_Or(tuple(pure)))] if len(pure) > 1 else \
                [self.sql(c) for c in pure]
            return " OR ".join(f"({p})" for p in parts + [self.sql(c) for c in rest])
        assert isinstance(ir, _And)
        pos, neg, rest = self._split(ir.children)
        parts = []
        if pos:  # one index expression for all the index can answer
            group = _And(tuple(pos) + tuple(_Not(n) for n in neg))
            parts.append(self._fts_condition(group, top=top))
        parts += [self.sql(c) for c in rest]
        return " AND ".join(f"({p})" for p in parts)
