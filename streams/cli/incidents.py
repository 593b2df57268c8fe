"""``escucha incidents list | ack | resolve``: the API from a terminal."""

from __future__ import annotations

import os
import sys
from typing import Any

import click

from streams.cli._common import EXIT_CONFIG, settings_or_exit

__all__ = ["incidents"]

@click.group()
def incidents() -> None:
    """List, acknowledge and resolve incidents through a running worker's API."""


def _api(ctx_url: str | None, token: str | None, config: str | None) -> tuple[str, str]:
    settings = settings_or_exit(config)
    url = (ctx_url or settings.api.public_url).rstrip("/")
    token = token or os.environ.get("ESCUCHA_API_TOKEN") or (
        settings.api.tokens[0].get_secret_value() if settings.api.tokens else None)
    if not token:
        click.echo("escucha: no API token: pass --token, set ESCUCHA_API_TOKEN or api.tokens",
                   err=True)
        sys.exit(EXIT_CONFIG)
    return url, token


def _call(method: str, url: str, token: str, body: dict[str, Any] | None = None) -> Any:
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


_api_options = [
    click.option("--url", default=None, help="Worker URL (default: api.public_url)."),
    click.option("--token", default=None, help="API token (default: $ESCUCHA_API_TOKEN)."),
    click.option("--config", "config", type=click.Path(dir_okay=False), default=None),
]


def _with_api_options(fn: Any) -> Any:
    for option in reversed(_api_options):
        fn = option(fn)
    return fn


@incidents.command("list")
@click.option("--state", type=click.Choice(["open", "acknowledged", "resolved"]), default=None)
@_with_api_options
def incidents_list(state: str | None, url: str | None, token: str | None,
                   config: str | None) -> None:
    """One line per incident, newest first."""
    base, tok = _api(url, token, config)
    query = f"?state={state}" if state else ""
    found = _call("GET", f"{base}/api/incidents{query}", tok)["incidents"]
    if not found:
        click.echo("no incidents")
    for inc in found:
        who = inc.get("acked_by") or inc.get("resolved_by") or ""
        click.echo(f"{inc['id']:<32} {inc['state']:<12} {inc['severity']:<8} "
                   f"{inc['opened_at'][:16]}  {who:<12} {inc['summary'][:70]}")


def _decide(action: str) -> Any:
    @_with_api_options
    @click.option("--by", default=None, help="Who is acting (default: $USER).")
    @click.argument("incident_id")
    def command(incident_id: str, by: str | None, url: str | None, token: str | None,
                config: str | None) -> None:
        base, tok = _api(url, token, config)
        who = by or os.environ.get("USER") or "cli"
        _call("POST", f"{base}/api/incidents/{incident_id}/{action}", tok,
              {"by": who, "source": "cli"})
        click.echo(f"{action} of {incident_id} accepted")

    command.__doc__ = f"{'Acknowledge' if action == 'ack' else 'Resolve'} INCIDENT_ID."
    return command


incidents.command("ack")(_decide("ack"))
incidents.command("resolve")(_decide("resolve"))

