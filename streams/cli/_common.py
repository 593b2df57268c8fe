"""What every command group shares: loading settings (exit 2 on errors) and finding the broker."""

from __future__ import annotations

import sys
from typing import Any

import click

from streams.config.settings import ConfigError, Settings, load_settings
from streams.runtime.broker import read_address_file

__all__ = ["EXIT_CONFIG", "bootstrap_or_exit", "settings_or_exit"]

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

