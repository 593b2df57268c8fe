"""``api:``: bearer tokens of the HTTP API and the signed ack links."""

from __future__ import annotations

from pydantic import (
    Field,
    SecretStr,
)

from streams.config.base import Section

__all__ = ["ApiSettings"]


class ApiSettings(Section):
    tokens: list[SecretStr] = Field(
        default_factory=list, description="Bearer tokens for /api/… (reads and writes); none: "
        "the API refuses everything.")
    public_url: str = Field(
        default="http://127.0.0.1:6066",
        description="How people reach this server: the base of links in emails and push.")
    link_secret: SecretStr | None = Field(
        default=None, description="HMAC key of signed ack links (≥16 chars; the same on every "
        "worker). Unset: one is generated and kept in <datadir>/link-secret.")
    link_ttl_s: int = Field(default=86400, ge=60, description="How long an ack link works.")
