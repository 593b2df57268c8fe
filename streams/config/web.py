"""``web:``: where the worker's HTTP server listens and which proxies it trusts."""

from __future__ import annotations

import ipaddress

from pydantic import (
    Field,
    field_validator,
)

from streams.config.base import Section

__all__ = ["WebSettings"]


class WebSettings(Section):
    host: str = Field(default="127.0.0.1", description="Bind address of the web server.")
    port: int = Field(default=6066, ge=0, le=65535, description="0 picks a free port.")
    trusted_proxies: list[str] = Field(
        default_factory=list, description="Addresses or networks (CIDR) of reverse proxies "
        "whose X-Forwarded-For is believed, so sign-in throttling sees the real client. "
        "Empty: the TCP peer is the client and the header is ignored.")

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for item in value:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError as exc:
                raise ValueError(f"{item!r} is not an address or network: {exc}") from None
        return value
