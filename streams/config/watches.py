"""``watches:``: what to listen for (terms or a query), per brand, product or campaign."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import (
    Field,
    PrivateAttr,
    field_validator,
    model_validator,
)

from streams.config.base import ID, Section
from streams.config.detect import DetectSettings
from streams.core.query import And, Node, Or, Term, fold, parse_query, positive_terms
from streams.core.query import Field as QField

__all__ = ["Watch"]


class Watch(Section):
    id: str = Field(description="Stable slug: lowercase letters, digits, '-' and '_'.")
    name: str = Field(min_length=1, description="Human name shown in alerts.")
    terms: list[str] = Field(
        default_factory=list, description="Any of these words or phrases (case/accent-"
        "insensitive); shorthand for a query of quoted terms joined by OR.")
    query: str | None = Field(
        default=None, description="A boolean query (streams/core/query.py): AND, OR, NOT, quoted "
        "phrases, parentheses, wildcards, lang:/source:/author: filters. With terms as well, "
        "a mention needs both.")
    languages: list[str] = Field(
        default_factory=list, description="ISO 639-1 codes to keep; empty keeps all."
    )
    competitors: list[str] = Field(
        default_factory=list,
        description="Ids of the watches this one is compared against for share of voice.")
    starts_at: datetime | None = Field(
        default=None, description="Campaign or event watch: mentions posted before this are "
        "ignored (ISO 8601 with a zone, e.g. 2026-06-01T09:00:00+02:00).")
    ends_at: datetime | None = Field(default=None, description="...and from this on.")
    detect: dict[str, Any] = Field(
        default_factory=dict, description="This watch's own detection thresholds: any `detect` "
        "field, e.g. {ratio: 5, min_volume: 50} for a launch that is loud by design.")
    _tree: Node = PrivateAttr()

    @field_validator("id")
    @classmethod
    def _slug(cls, value: str) -> str:
        if not ID.match(value):
            raise ValueError("use lowercase letters, digits, '-' or '_' (max 64), e.g. 'acme'")
        return value

    @field_validator("terms")
    @classmethod
    def _terms(cls, value: list[str]) -> list[str]:
        if any(not t.strip() for t in value):
            raise ValueError("terms must not be blank")
        return value

    @field_validator("query")
    @classmethod
    def _query(cls, value: str | None) -> str | None:
        if value is not None:
            parse_query(value)  # QueryError is a ValueError: reported with the field's path
        return value

    @model_validator(mode="after")
    def _compile(self) -> Watch:
        parts: list[Node] = []
        if self.terms:
            terms = tuple(Term(fold(t.strip()), phrase=" " in t.strip()) for t in self.terms)
            parts.append(terms[0] if len(terms) == 1 else Or(terms))
        if self.query is not None:
            parts.append(parse_query(self.query))
        if self.languages:
            langs = tuple(QField("lang", Term(fold(code))) for code in self.languages)
            parts.append(langs[0] if len(langs) == 1 else Or(langs))
        if not self.terms and self.query is None:
            raise ValueError("give the watch terms or a query")
        for name in ("starts_at", "ends_at"):
            value = getattr(self, name)
            if value is not None and value.tzinfo is None:
                raise ValueError(f"{name} needs a time zone, e.g. 2026-06-01T09:00:00+02:00")
        if self.starts_at and self.ends_at and self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        unknown = sorted(set(self.detect) - set(DetectSettings.model_fields))
        if unknown:
            # Checked here, not only with the values later, so it is reported with the rest.
            raise ValueError(f"detect: unknown setting(s) {unknown}; see the `detect` section")
        self._tree = parts[0] if len(parts) == 1 else And(tuple(parts))
        return self

    def active(self, at: datetime) -> bool:
        """Whether a mention posted at ``at`` is inside the watch's campaign window."""
        return ((self.starts_at is None or at >= self.starts_at)
                and (self.ends_at is None or at < self.ends_at))

    @property
    def query_tree(self) -> Node:
        """Terms, query and languages as one boolean tree (what the matcher compiles)."""
        return self._tree

    @property
    def all_terms(self) -> list[str]:
        """Every text term the watch looks for (folded), for detectors and source filters."""
        return positive_terms(self._tree)
