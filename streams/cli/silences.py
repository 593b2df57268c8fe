"""``escucha silences list | add | expire``: silences through a running worker's API."""

from __future__ import annotations

import os
import re
from typing import Any
from urllib.parse import quote

import click

from streams.cli._common import api_target, call_api, with_api_options

__all__ = ["parse_matcher", "silences"]

# amtool's spelling: label=value, label!=value, label=~regex, label!~regex. "=~" is tried
# before "=": written the other way round "watch=~x" would be the literal value "~x".
_MATCHER = re.compile(r"([a-z_]+)(!=|=~|!~|=)(.*)", re.DOTALL)
_OPERATOR = {"!=": "!=", "=~": "~", "!~": "!~"}


def parse_matcher(text: str) -> tuple[str, str]:
    """``watch=~rival-.*`` as ``("watch", "~rival-.*")``: the label and the matcher in the
    syntax silences and routes use. ``click.BadParameter`` for anything else."""
    found = _MATCHER.fullmatch(text)
    if found is None:
        raise click.BadParameter(f"{text!r}: write LABEL=VALUE, LABEL!=VALUE, LABEL=~REGEX or "
                                 "LABEL!~REGEX, e.g. watch=acme")
    label, op, value = found.groups()
    if op != "=":
        return label, _OPERATOR[op] + value
    # "=" is equality, as in amtool: "watch=*" is the value "*", not anything (that is =~.*).
    return label, "=" + value if value == "*" or value[:1] in ("!", "~", "=") else value


@click.group()
def silences() -> None:
    """List, add and expire silences through a running worker's API."""


def _line(s: dict[str, Any]) -> str:
    matchers = " ".join(f"{k}{'' if v[:1] in '!~=' else '='}{v}"
                        for k, v in s["matchers"].items())
    who = f"by {s['created_by']}"
    if s.get("expired_by"):
        who += f", expired by {s['expired_by']}"
    return (f"{s['id']:<20} {s['state']:<8} until {s['ends_at'][:16]}  {matchers}  ({who})"
            + (f"  {s['comment']}" if s.get("comment") else ""))


@silences.command("list")
@click.option("--all", "everything", is_flag=True, help="Expired silences too.")
@with_api_options
def silences_list(everything: bool, url: str | None, token: str | None,
                  config: str | None) -> None:
    """Active and pending silences (with --all, expired ones too), ending soonest first."""
    base, tok = api_target(url, token, config)
    query = "" if everything else "?state=active,pending"
    found = call_api("GET", f"{base}/api/silences{query}", tok)["silences"]
    if not found:
        click.echo("no silences")
    for s in found:
        click.echo(_line(s))


@silences.command("add")
@click.argument("matchers", nargs=-1, required=True)
@click.option("--minutes", type=click.FloatRange(min=0, min_open=True, max=43200), default=60,
              show_default=True, help="How long it holds.")
@click.option("--comment", default="", help="Why (shown beside it).")
@click.option("--by", default=None, help="Who is silencing (default: $USER).")
@click.option("--all", "everything", is_flag=True,
              help="Say so when the matchers hold back every incident (e.g. watch=~.*).")
@with_api_options
def silences_add(matchers: tuple[str, ...], minutes: float, comment: str, by: str | None,
                 everything: bool, url: str | None, token: str | None,
                 config: str | None) -> None:
    """Silence the incidents matching every MATCHER (watch=acme severity!=critical ...)."""
    parsed = dict(parse_matcher(m) for m in matchers)
    base, tok = api_target(url, token, config)
    made = call_api("POST", f"{base}/api/silences", tok, {
        "matchers": parsed, "minutes": minutes, "comment": comment, "all": everything,
        "by": by or os.environ.get("USER") or "cli"})
    click.echo(f"silence {made['id']} until {made['ends_at'][:16]}")


@silences.command("expire")
@click.argument("silence_id")
@click.option("--by", default=None, help="Who is expiring it (default: $USER).")
@with_api_options
def silences_expire(silence_id: str, by: str | None, url: str | None, token: str | None,
                    config: str | None) -> None:
    """End SILENCE_ID now, on every worker (it stays listed, as expired)."""
    base, tok = api_target(url, token, config)
    answer = call_api("DELETE", f"{base}/api/silences/{quote(silence_id, safe='')}", tok,
                      {"by": by or os.environ.get("USER") or "cli"})
    click.echo(f"silence {silence_id}: {answer['status']}")
