"""What every configuration section shares: the error that lists every problem, the base
model, and the shapes of ids, hosts and ports."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict

__all__ = ["HOST", "ID", "PORT", "ConfigError", "Section"]

#: A watch, report or other id: lower case, digits, '-' and '_'.
ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
# A DNS name, an IPv4 address or a bracketed IPv6 address: what a Kafka client can dial.
HOST = re.compile(r"^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9_])?)$")
PORT = re.compile(r"^[0-9]{1,5}$")


class ConfigError(Exception):
    """The configuration cannot be used; ``problems`` holds one line per bad field."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"invalid configuration ({source}):\n{lines}")


class Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
