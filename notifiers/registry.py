"""Every channel escucha can notify, in one list: add a channel here (and its module).

A channel is one module in ``notifiers/`` with a notifier class and a ``CHANNEL``
declaration (:class:`notifiers.base.ChannelSpec`). Everything else reads this list: the
``notifiers:`` settings, escalation targets and on-call contacts
(``streams/config``), which channels hear of acknowledgements (``agents/escalate``), the
metric labels (``streams/runtime``) and the delivery agent's notifiers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel

from notifiers import console, email, googlechat, pagerduty, push, slack, teams, webhook
from notifiers.base import BuildContext, ChannelSpec, Notifier
from streams.i18n import EN, Lang
from streams.i18n.fields import ChannelLocale

__all__ = ["CHANNELS", "UPDATABLE", "build_notifiers", "by_name", "lang_for", "names",
           "personal", "section"]

S = TypeVar("S", bound=BaseModel)

#: In the order targets list them in messages.
CHANNELS: tuple[ChannelSpec[Any], ...] = (
    slack.CHANNEL,
    email.CHANNEL,
    push.CHANNEL,
    pagerduty.CHANNEL,
    webhook.CHANNEL,
    teams.CHANNEL,
    googlechat.CHANNEL,
    console.CHANNEL,
)

by_name: Mapping[str, ChannelSpec[Any]] = {c.name: c for c in CHANNELS}
names: tuple[str, ...] = tuple(by_name)
#: Channels told about acknowledgements, escalations and resolutions of what they were sent.
UPDATABLE: frozenset[str] = frozenset(c.name for c in CHANNELS if c.updatable)
#: Channels an on-call member can be reached on.
personal: tuple[str, ...] = tuple(c.name for c in CHANNELS if c.personal)


def section(notifiers: Any, spec: ChannelSpec[S]) -> S | None:
    """The settings section of ``spec`` in ``settings.notifiers`` (None: not configured)."""
    value = getattr(notifiers, spec.name)
    return value if isinstance(value, spec.settings) else None


def build_notifiers(notifiers: Any, *, watch_names: Mapping[str, str],
                    links: Any = None) -> dict[str, Notifier]:
    """One notifier per configured channel."""
    ctx = BuildContext(watch_names=watch_names, links=links)
    out: dict[str, Notifier] = {}
    for spec in CHANNELS:
        configured = section(notifiers, spec)
        notifier = spec.build(configured, ctx) if configured is not None else None
        if notifier is not None:
            out[spec.name] = notifier
    return out


def lang_for(notifiers: Any, channel: str, target: str) -> Lang:
    """The language and zone of what ``channel`` sends ``target`` (English in UTC for a
    channel without locale settings), for text made outside the notifier (digest lines)."""
    spec = by_name.get(channel)
    configured = section(notifiers, spec) if spec is not None else None
    return configured.lang_for(target) if isinstance(configured, ChannelLocale) else EN
