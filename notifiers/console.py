"""The console channel: incidents printed by the worker. Needs no account; on by default."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import TextIO

from pydantic import BaseModel, ConfigDict, Field

from notifiers.base import ChannelSpec, Receipt
from notifiers.stories import watch_label
from notifiers.text import console_safe
from streams.core.records import Notification

__all__ = ["ConsoleNotifier"]


class ConsoleNotifier:
    channel = "console"

    def __init__(
        self, *, stream: TextIO | None = None, watch_names: Mapping[str, str] | None = None
    ) -> None:
        self._stream = stream
        self._watch_names = dict(watch_names or {})

    def render(self, notification: Notification) -> str:
        inc = notification.incident
        watch = watch_label(inc, self._watch_names)
        lines = [
            f"=== INCIDENT {inc.id} [{inc.severity.upper()}] {console_safe(watch)}: "
            f"{inc.detector} (level {notification.level}, {inc.state}) ===",
            f"  {console_safe(inc.summary)}",
        ]
        for sample in inc.samples[:3]:
            lines.append(
                f"  - @{console_safe(sample.author, limit=64)}: "
                f"{console_safe(sample.text, limit=160)}"
            )
        return "\n".join(lines)

    async def send(self, notification: Notification) -> Receipt:
        stream = self._stream or sys.stdout
        print(self.render(notification), file=stream, flush=True)
        return Receipt(detail="printed")

    async def find_sent(self, notification: Notification) -> Receipt | None:
        return None  # a terminal keeps no history we can read back

    async def close(self) -> None:
        return None

class ConsoleSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    enabled: bool = Field(default=True, description="Print incidents to the worker's stdout.")


def _console_problem(section: ConsoleSettings | None, value: object) -> str | None:
    if section is None or not section.enabled:
        return "uses the console but notifiers.console.enabled is false"
    return None


CHANNEL = ChannelSpec(
    name="console", settings=ConsoleSettings, default_on=True, updatable=True,
    target_type=bool, target_help="The worker's stdout.",
    build=lambda s, ctx: ConsoleNotifier(watch_names=ctx.watch_names) if s.enabled else None,
    problem=_console_problem, address=lambda _value: "stdout",
    default_target=lambda s: True if s.enabled else None,
)
