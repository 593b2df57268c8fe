"""check-config's store line: backend, where, retention per watch; PostgreSQL tried with a
short timeout and never printed with its password (the server side: tests/integration/store)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from click.testing import CliRunner

from streams.cli import cli

WATCHES = ("watches:\n  - {id: acme, name: Acme, terms: [acme]}\n"
           "  - {id: beta, name: B, terms: [b]}\n")


def _config(tmp_path: Path, store: str) -> Path:
    path = tmp_path / "escucha.yaml"
    path.write_text(f"datadir: {tmp_path / 'var'}\n{WATCHES}store:\n{store}")
    return path


def _closed_port() -> int:
    # Bound then closed: nothing listens there, so a connection is refused at once.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_sqlite_by_default_with_where_and_retention_per_watch(tmp_path: Path) -> None:
    path = _config(tmp_path, "  retention_days: 30\n  watch_retention_days: {acme: 365}\n")
    result = CliRunner().invoke(cli, ["check-config", str(path)])
    assert result.exit_code == 0, result.output
    where = tmp_path / "var" / "store" / "mentions.sqlite3"
    assert (f"store: sqlite at {where} (created at the first start), retention 30 days "
            "(acme 365)") in result.output


def test_a_store_turned_off_says_so(tmp_path: Path) -> None:
    path = _config(tmp_path, "  enabled: false\n")
    result = CliRunner().invoke(cli, ["check-config", str(path)])
    assert result.exit_code == 0, result.output
    assert "store: off" in result.output


def test_unreachable_postgresql_exits_1_saying_what_to_fix_without_the_password(
        tmp_path: Path) -> None:
    port = _closed_port()
    # A password with an escaped "@": neither its written nor its decoded form may show.
    url = f"postgresql://escucha:s3cr%40t-pw@127.0.0.1:{port}/escucha"
    path = _config(tmp_path, f"  url: {url}\n")
    result = CliRunner().invoke(cli, ["check-config", str(path)])
    assert result.exit_code == 1, result.output
    out = result.output
    assert f"store: postgresql at postgresql://escucha:***@127.0.0.1:{port}/escucha" in out
    assert "retention 90 days, NOT reachable" in out
    assert "error: store.url: PostgreSQL at" in out and "pg_hba.conf" in out
    assert "did not answer within 3 s" in out
    assert "s3cr" not in out and "t-pw" not in out


def test_the_url_from_the_environment_is_masked_too(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    port = _closed_port()
    monkeypatch.setenv("ESCUCHA_STORE__URL", f"postgres://u:hunter2@127.0.0.1:{port}/db")
    path = _config(tmp_path, "  batch_size: 100\n")
    result = CliRunner().invoke(cli, ["check-config", str(path)])
    assert result.exit_code == 1, result.output
    assert "postgres://u:***@127.0.0.1" in result.output
    assert "hunter2" not in result.output


def test_a_driver_error_that_echoes_the_password_is_masked(tmp_path: Path) -> None:
    # libpq quotes a malformed percent-escape back, password and all.
    url = f"postgresql://escucha:hunter%zz2@127.0.0.1:{_closed_port()}/escucha"
    path = _config(tmp_path, f"  url: {url}\n")
    result = CliRunner().invoke(cli, ["check-config", str(path)])
    assert result.exit_code == 1, result.output
    assert "percent-encoded" in result.output  # the driver's own reason is kept
    assert "hunter" not in result.output
