"""``escucha incidents list | ack | resolve``: the API from a terminal."""

from __future__ import annotations

import os
from typing import Any

import click

from streams.cli._common import api_target, call_api, with_api_options

__all__ = ["incidents"]

@click.group()
def incidents() -> None:
    """List, acknowledge and resolve incidents through a running worker's API."""


@incidents.command("list")
@click.option("--state", type=click.Choice(["open", "acknowledged", "resolved"]), default=None)
@with_api_options
def incidents_list(state: str | None, url: str | None, token: str | None,
                   config: str | None) -> None:
    """One line per incident, newest first."""
    base, tok = api_target(url, token, config)
    query = f"?state={state}" if state else ""
    found = call_api("GET", f"{base}/api/incidents{query}", tok)["incidents"]
    if not found:
        click.echo("no incidents")
    for inc in found:
        who = inc.get("acked_by") or inc.get("resolved_by") or ""
        click.echo(f"{inc['id']:<32} {inc['state']:<12} {inc['severity']:<8} "
                   f"{inc['opened_at'][:16]}  {who:<12} {inc['summary'][:70]}")


def _decide(action: str) -> Any:
    @with_api_options
    @click.option("--by", default=None, help="Who is acting (default: $USER).")
    @click.argument("incident_id")
    def command(incident_id: str, by: str | None, url: str | None, token: str | None,
                config: str | None) -> None:
        base, tok = api_target(url, token, config)
        who = by or os.environ.get("USER") or "cli"
        call_api("POST", f"{base}/api/incidents/{incident_id}/{action}", tok,
              {"by": who, "source": "cli"})
        click.echo(f"{action} of {incident_id} accepted")

    command.__doc__ = f"{'Acknowledge' if action == 'ack' else 'Resolve'} INCIDENT_ID."
    return command


incidents.command("ack")(_decide("ack"))
incidents.command("resolve")(_decide("resolve"))

