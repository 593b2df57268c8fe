"""Console settings: who may sign in, with which role, and how sessions behave."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from streams.i18n.fields import LocaleName, TimeZoneName

__all__ = ["WebConsoleSettings", "ConsoleToken", "ConsoleUser", "Role"]

Role = Literal["viewer", "responder"]
_HASH = re.compile(r"^scrypt\$\d+\$\d+\$\d+\$[A-Za-z0-9_=-]+\$[A-Za-z0-9_=-]+$")


class _Section(BaseModel):
    # Tokens and hashes must not be echoed back in a validation error.
    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)


class _Prefs(_Section):
    locale: LocaleName = Field(default="en", description="Console language, e.g. 'es' or "
                               "'es_MX'.")
    timezone: TimeZoneName = Field(default="UTC", description="IANA zone the console shows "
                                   "times in, e.g. 'America/Mexico_City'.")


class ConsoleUser(_Prefs):
    username: str = Field(min_length=1, max_length=64)
    password_hash: str = Field(description="From `escucha console hash-password`; never the "
                               "password itself.")
    role: Role = Field(default="viewer", description="viewer: reads; responder: also acts.")

    @field_validator("password_hash")
    @classmethod
    def _hashed(cls, value: str) -> str:
        if not _HASH.match(value):
            raise ValueError("not a password hash; make one with `escucha console "
                             "hash-password` and paste its output here")
        return value


class ConsoleToken(_Prefs):
    name: str = Field(min_length=1, max_length=64, description="Shown as who acted.")
    token: SecretStr = Field(description="Bearer token, at least 16 characters.")
    role: Role = "viewer"

    @field_validator("token")
    @classmethod
    def _long(cls, value: SecretStr) -> SecretStr:
        if len(value.get_secret_value()) < 16:
            raise ValueError("use at least 16 characters (e.g. `openssl rand -hex 16`)")
        return value


class WebConsoleSettings(_Section):
    enabled: bool = Field(default=True, description="Serve /console on every worker.")
    users: list[ConsoleUser] = Field(default_factory=list, description="Username/password "
                                     "sign-in. With no users and no tokens, a responder token "
                                     "is generated in <datadir>/console-token.")
    tokens: list[ConsoleToken] = Field(default_factory=list, description="Token sign-in, in "
                                       "the form or as an Authorization: Bearer header.")
    session_ttl_s: int = Field(default=12 * 3600, ge=300, le=30 * 86400,
                               description="How long a sign-in lasts.")
    secure_cookies: bool | None = Field(
        default=None, description="Mark cookies Secure; unset: when api.public_url is https.")
