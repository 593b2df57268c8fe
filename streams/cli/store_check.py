"""The mention store's line in ``escucha check-config``: backend, where, retention per watch,
and, for PostgreSQL, whether the server answers now (a short timeout: a deploy's check must
not hang on a firewall that drops packets). Nothing it prints holds the URL's password."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from agents.store.backends import redact
from streams.config.settings import Settings

__all__ = ["REACH_TIMEOUT_S", "StoreCheck", "check_store"]

#: How long check-config waits for PostgreSQL to answer.
REACH_TIMEOUT_S = 3


@dataclass(frozen=True, slots=True)
class StoreCheck:
    line: str  # what check-config prints, always
    problem: str | None = None  # set when the store cannot be used as configured


def _retention(settings: Settings) -> str:
    cfg = settings.store
    own = ", ".join(f"{w} {d}" for w, d in sorted(cfg.watch_retention_days.items()))
    return f"retention {cfg.retention_days} days" + (f" ({own})" if own else "")


def _mask(text: str, secret: str | None) -> str:
    # libpq may echo parts of a conninfo it cannot parse: the password, raw or decoded.
    for form in {secret, unquote(secret)} if secret else ():
        text = text.replace(form, "***")
    return text


def _reach(url: str, timeout_s: float) -> str | None:
    """None when PostgreSQL accepts a connection at ``url``, else why not (password-free)."""
    import psycopg  # only deployments that use PostgreSQL need the driver loaded

    secret = urlsplit(url).password
    try:
        with psycopg.connect(url, connect_timeout=max(1, round(timeout_s)),
                             application_name="escucha-check-config") as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        why = " ".join(str(exc).split()) or type(exc).__name__
        return _mask(f"{type(exc).__name__}: {why}"[:300], secret)
    return None


def check_store(settings: Settings, *, timeout_s: float = REACH_TIMEOUT_S) -> StoreCheck:
    """The store as ``settings`` configure it, and whether it can be used."""
    cfg = settings.store
    if not cfg.enabled:
        return StoreCheck("store: off (store.enabled: false; /api/mentions answers 404)")
    path = cfg.sqlite_path(settings.datadir)
    if path is not None:
        where = path if path.is_absolute() else Path.cwd() / path
        state = "exists" if where.is_file() else "created at the first start"
        return StoreCheck(f"store: sqlite at {where} ({state}), {_retention(settings)}")
    url = cfg.postgres_url()
    assert url is not None  # not SQLite: validated as a PostgreSQL URL
    head = f"store: postgresql at {redact(url)}, {_retention(settings)}"
    why = _reach(url, timeout_s)
    if why is None:
        return StoreCheck(f"{head}, reachable")
    return StoreCheck(f"{head}, NOT reachable", problem=(
        f"store.url: PostgreSQL at {redact(url)} did not answer within {timeout_s:g} s "
        f"({why}). Check the host and port, that the server runs and lets this host in "
        "(pg_hba.conf), and the user, password and database in store.url "
        "(ESCUCHA_STORE__URL)."))
