"""A worker configuration with every credential set: API and console tokens, a console user,
Slack's signing secret, PagerDuty's webhook secret, ingest tokens and a link secret. For the
security tests and soak."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from streams.web.console.auth import hash_password

__all__ = ["ANA", "API_TOKEN", "CONSOLE_TOKEN", "INGEST_TOKEN", "LINK_SECRET",
           "PAGERDUTY_SECRET", "SIGNING_SECRET", "addresses", "secured_sections"]

API_TOKEN = "api-token-0123456789abcdef"
CONSOLE_TOKEN = "console-token-0123456789abcdef"
INGEST_TOKEN = "ingest-token-0123456789abcdef"
SIGNING_SECRET = "slack-signing-secret-0123456789"
LINK_SECRET = "link-secret-0123456789abcdef"
PAGERDUTY_SECRET = "pagerduty-webhook-secret-0123456789"
ANA = ("ana", "ana's long password")


def secured_sections(tmp: Path, *, port: int, bootstrap: str | None) -> dict[str, Any]:
    """Config sections (for ``write_config`` or ``Settings(**…)``)."""
    sections: dict[str, Any] = {
        "web": {"port": port},
        "datadir": str(tmp / "var"),
        "watches": [{"id": "acme", "name": "Acme", "query": "acme"},
                    {"id": "globex", "name": "Globex", "query": "globex"}],
        "api": {"tokens": [API_TOKEN], "public_url": f"http://127.0.0.1:{port}",
                "link_secret": LINK_SECRET},
        "console": {"users": [{"username": ANA[0], "role": "responder",
                               "password_hash": hash_password(ANA[1])}],
                    "tokens": [{"name": "wallboard", "role": "viewer",
                                "token": CONSOLE_TOKEN}]},
        "notifiers": {"slack": {"signing_secret": SIGNING_SECRET},
                      "pagerduty": {"webhook": {"secrets": [PAGERDUTY_SECRET]}}},
        "connectors": {"webhook": {"tokens": [INGEST_TOKEN]}},
    }
    if bootstrap is not None:
        sections["kafka"] = {"bootstrap": bootstrap}
    return sections


def addresses(first: int) -> Iterator[str]:
    """Distinct loopback addresses 127.<first..249>.x.y to bind clients to (Linux routes all of
    127/8 to lo), so each test's clients are addresses the throttle has not seen."""
    for a, b, c in itertools.product(range(first, 250), range(256), range(1, 255)):
        yield f"127.{a}.{b}.{c}"
