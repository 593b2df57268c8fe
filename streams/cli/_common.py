"""What every command group shares: loading settings (exit 2 on errors), finding the broker,
and calling a running worker's API (``incidents``, ``silences``)."""

from __future__ import annotations

import os
import sys
from typing import Any

import click

from streams.config.settings import ConfigError, Settings, load_settings
from streams.runtime.broker import read_address_file

__all__ = ["EXIT_CONFIG", "api_target", "bootstrap_or_exit", "call_api", "settings_or_exit",
           "with_api_options"]

EXIT_CONFIG = 2  # a configuration the CLI cannot use

def settings_or_exit(config: str | None, **overrides: Any) -> Settings:
    try:
        return load_settings(config, **overrides)
    except ConfigError as exc:
        click.echo(f"escucha: {exc}", err=True)
        sys.exit(EXIT_CONFIG)


def bootstrap_or_exit(settings: Settings) -> str:
    """The cluster to talk to: configured, or the embedded broker `escucha run` announced."""
    found = settings.kafka.bootstrap or read_address_file(settings.datadir)
    if not found:
        click.echo(
            "escucha: no Kafka broker: set ESCUCHA_KAFKA_BOOTSTRAP (or kafka.bootstrap), "
            "or start `escucha run` / `escucha worker` in another terminal first", err=True,
        )
        sys.exit(1)
    return found


def api_target(ctx_url: str | None, token: str | None, config: str | None) -> tuple[str, str]:
    """The worker's base URL and the API token to call it with; exits 2 without a token."""
    settings = settings_or_exit(config)
    url = (ctx_url or settings.api.public_url).rstrip("/")
    token = token or os.environ.get("ESCUCHA_API_TOKEN") or (
        settings.api.tokens[0].get_secret_value() if settings.api.tokens else None)
    if not token:
        click.echo("escucha: no API token: pass --token, set ESCUCHA_API_TOKEN or api.tokens",
                   err=True)
        sys.exit(EXIT_CONFIG)
    return url, token


def call_api(method: str, url: str, token: str, body: dict[str, Any] | None = None) -> Any:
    """The JSON answer of a running worker's API; exits 1 on an error answer, saying it."""
    import json
    import urllib.error
    import urllib.request

    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={
        "Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=15) as resp:
            return json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode("utf-8", "replace")[:300]
        click.echo(f"escucha: {method} {url} answered {exc.code}: {detail}", err=True)
        sys.exit(1)
    except OSError as exc:
        click.echo(f"escucha: cannot reach {url}: {exc}", err=True)
        sys.exit(1)


_API_OPTIONS = [
    click.option("--url", default=None, help="Worker URL (default: api.public_url)."),
    click.option("--token", default=None, help="API token (default: $ESCUCHA_API_TOKEN)."),
    click.option("--config", "config", type=click.Path(dir_okay=False), default=None),
]


def with_api_options(fn: Any) -> Any:
    """``--url``, ``--token`` and ``--config`` on a command that calls the API."""
    for option in reversed(_API_OPTIONS):
        fn = option(fn)
    return fn
