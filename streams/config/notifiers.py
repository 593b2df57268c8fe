"""``notifiers:``: one section per channel, made from the channel registry.

Each channel's settings class lives beside its notifier (``notifiers/<channel>.py``) and is
listed in ``notifiers/registry.py``; this module only assembles them, so adding a channel
adds its section here without an edit. Channels on by default (console, Slack) have their
section from the start; the others are off until their section is written.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import Field, create_model

from notifiers.registry import CHANNELS
from streams.config.base import Section

__all__ = ["NotifierSettings"]


def _fields() -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for spec in CHANNELS:
        if spec.default_on:
            fields[spec.name] = (spec.settings, Field(default_factory=spec.settings))
        else:
            fields[spec.name] = (spec.settings | None, Field(
                default=None, description=f"{spec.name}; unset: off."))
    return fields


#: ``settings.notifiers``: ``.slack``, ``.email``, … (a model built from the registry; typed
#: access to one section: ``notifiers.registry.section(settings.notifiers, slack.CHANNEL)``).
if TYPE_CHECKING:  # built at run time: to mypy its sections are Any
    NotifierSettings = Any
else:
    NotifierSettings = create_model(
        "NotifierSettings", __base__=Section, __doc__="Each channel's settings live beside "
        "its notifier (notifiers/<channel>.py).", **_fields())
