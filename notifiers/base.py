"""The protocol every channel implements, and the shared receipt.

A notifier sends one notification once and reports how it went. It never loops, sleeps or
retries: that is ``notifiers.retry``'s job, so every channel gets the same backoff rules.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar, runtime_checkable

from pydantic import BaseModel

from streams.core.records import Notification

__all__ = ["BuildContext", "ChannelSpec", "Notifier", "Receipt", "not_configured"]

S = TypeVar("S", bound=BaseModel)


@dataclass(frozen=True, kw_only=True)
class Receipt:
    external_id: str | None = None  # the channel's own id for what was sent (Slack ts, ...)
    detail: str = ""


@runtime_checkable
class Notifier(Protocol):
    channel: str

    async def send(self, notification: Notification) -> Receipt:
        """Deliver once; raise ``DeliveryError`` on failure."""
        ...

    async def find_sent(self, notification: Notification) -> Receipt | None:
        """If the channel can tell, the receipt of an earlier send of this notification.

        Called only when a previous attempt may have succeeded without being recorded
        (a worker killed mid-send), so it may be slow. ``None``: not sent, or cannot tell.
        """
        ...

    async def close(self) -> None: ...


@dataclass(frozen=True, kw_only=True)
class BuildContext:
    """What a notifier may need beyond its own settings section."""

    watch_names: Mapping[str, str]
    links: Any = None  # streams.core.links.LinkSigner: ack links in email and push


@dataclass(frozen=True, kw_only=True)
class ChannelSpec(Generic[S]):
    """What one channel declares about itself; ``notifiers/registry.py`` lists them all.

    Settings (``notifiers.<name>``), escalation targets (``{<name>: value}``), on-call
    contacts, the channels told about acknowledgements, metric labels and the delivery
    agent's notifiers are all derived from these declarations.
    """

    name: str
    #: The section under ``notifiers.<name>``.
    settings: type[S]
    #: True: the section is there by default (and may be switched off inside it);
    #: False: the channel is off until the section is written.
    default_on: bool
    #: Told what became of what it was sent (Slack edits in place, email replies in the
    #: thread, ntfy replaces the notification, PagerDuty acknowledges, webhooks send the
    #: event): sent acknowledgements, resolutions and escalations to later levels.
    updatable: bool
    #: ``{<name>: value}`` in an escalation target: the value's type and its help text.
    target_type: Any
    target_help: str
    #: On-call members may carry a contact here (``via: [<name>]`` on a schedule target).
    personal: bool = False
    personal_help: str = ""
    #: The notifier for a section; None when the section cannot send (Slack without token).
    build: Callable[[S, BuildContext], Notifier | None]
    #: Why the section (None: not configured) cannot deliver to ``value``; None if it can.
    #: Called with ``value=None`` to ask whether the channel is usable at all.
    problem: Callable[[S | None, Any], str | None]
    #: A target value as a notification's ``target`` (a list of addresses is joined).
    address: Callable[[Any], str] = str
    #: The target of the default policy when no policy is configured, or None.
    default_target: Callable[[S], Any] = lambda _section: None


def not_configured(name: str, *, known: str | None = None,
                   what: str = "") -> Callable[[Any, Any], str | None]:
    """The ``problem`` of a channel that is off until its section is written; with ``known``
    (a mapping field of the section), a target value must also be one of its keys."""
    def problem(section: Any, value: Any) -> str | None:
        if section is None:
            return f"uses {name} but notifiers.{name} is not configured"
        if known is not None and value is not None and value not in getattr(section, known):
            return f"no {what} {value!r} in notifiers.{name}.{known}"
        return None
    return problem
