"""``escucha console``: helpers for the incident console's sign-in."""

from __future__ import annotations

import sys

import click

from streams.web.console.auth import hash_password

__all__ = ["console"]


@click.group("console")
def console() -> None:
    """The incident console at /console (see README, "Incident console")."""


@click.command("hash-password")
@click.option("--password-stdin", is_flag=True,
              help="Read the password from standard input instead of prompting.")
def hash_password_cmd(password_stdin: bool) -> None:
    """Print a password hash for console.users[].password_hash (the password is not kept)."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    if len(password) < 10:
        raise click.UsageError("use at least 10 characters")
    click.echo(hash_password(password))


console.add_command(hash_password_cmd)
