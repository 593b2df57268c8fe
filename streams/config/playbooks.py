"""Playbooks: the crisis plan for a kind of incident, matched by watch, detector and severity.

A playbook says who owns the response, which subject-matter experts have the last word, how
answers are approved, the steps to take, approved response templates per channel and language
(starting points people adapt and post themselves; escucha never posts them) and when not to
respond at all. The first playbook whose ``match`` fits an incident is copied onto it
(``Incident.playbook``), so Slack, email, push and the console all show the same plan, and
marking a step done is an event on the incident's timeline.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from streams.core.records import PlaybookCard, PlaybookStep, ResponseTemplate

__all__ = ["Playbook", "match_playbook"]

_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_MATCH_KEYS = ("watch", "detector", "severity", "language")


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class _Step(_Section):
    id: str = Field(description="Stable slug: what 'done' is recorded against.")
    text: str = Field(min_length=1, max_length=500)
    owner: str | None = Field(default=None, max_length=120)

    @field_validator("id")
    @classmethod
    def _slug(cls, value: str) -> str:
        if not _ID.match(value):
            raise ValueError("use lowercase letters, digits, '-' or '_' (max 64), e.g. 'holding'")
        return value


class _Template(_Section):
    channel: str = Field(default="any", max_length=32, description="x, email, press, any, ...")
    language: str = Field(default="en", max_length=16)
    text: str = Field(min_length=1, max_length=4000)


class Playbook(_Section):
    id: str
    name: str = Field(min_length=1, max_length=200)
    match: dict[str, str | list[str]] = Field(
        default_factory=dict, description="Labels to match (watch, detector, severity, "
        "language), each a value or a list; empty matches every incident.")
    owner: str = Field(min_length=1, max_length=120, description="Who runs the response.")
    experts: list[str] = Field(default_factory=list, description="Subject-matter experts with "
                               "the last word, e.g. 'Legal: Marta (+34 600 000 000)'.")
    approval: str | None = Field(default=None, max_length=500,
                                 description="How a public answer is approved.")
    steps: list[_Step] = Field(default_factory=list, max_length=20)
    templates: list[_Template] = Field(default_factory=list, max_length=40)
    do_not_respond: list[str] = Field(default_factory=list, description="When not to answer, "
                                      "e.g. 'Do not engage with accounts under 100 followers'.")

    @field_validator("id")
    @classmethod
    def _slug(cls, value: str) -> str:
        if not _ID.match(value):
            raise ValueError("use lowercase letters, digits, '-' or '_' (max 64)")
        return value

    @field_validator("match")
    @classmethod
    def _known_labels(cls, value: dict[str, str | list[str]]) -> dict[str, str | list[str]]:
        unknown = sorted(set(value) - set(_MATCH_KEYS))
        if unknown:
            raise ValueError(f"unknown label(s) {unknown}; use {list(_MATCH_KEYS)}")
        return value

    @model_validator(mode="after")
    def _unique_steps(self) -> Playbook:
        ids = [s.id for s in self.steps]
        if len(ids) != len(set(ids)):
            raise ValueError(f"step ids must be unique, got {ids}")
        return self

    def matches(self, labels: Mapping[str, str]) -> bool:
        for key, wanted in self.match.items():
            values = [wanted] if isinstance(wanted, str) else wanted
            if labels.get(key) not in values:
                return False
        return True

    def card(self) -> PlaybookCard:
        return PlaybookCard(
            id=self.id, name=self.name, owner=self.owner, experts=list(self.experts),
            approval=self.approval, do_not_respond=list(self.do_not_respond),
            steps=[PlaybookStep(id=s.id, text=s.text, owner=s.owner) for s in self.steps],
            templates=[ResponseTemplate(channel=t.channel, language=t.language, text=t.text)
                       for t in self.templates])


def match_playbook(playbooks: Sequence[Playbook], labels: Mapping[str, str]) -> Playbook | None:
    """The first playbook (in config order) whose ``match`` fits ``labels``."""
    return next((p for p in playbooks if p.matches(labels)), None)
