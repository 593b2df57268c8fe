"""`escucha check-config` against a real PostgreSQL: reachable, and the password never shown."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from click.testing import CliRunner

from streams.cli import cli


def test_check_config_reaches_postgresql_and_masks_the_password(
        tmp_path: Path, postgres_url: str) -> None:
    parts = urlsplit(postgres_url)
    # The test cluster trusts every local connection: the password is carried, not checked.
    url = parts._replace(netloc=f"postgres:Pa55-w0rd@{parts.hostname}:{parts.port}").geturl()
    path = tmp_path / "escucha.yaml"
    path.write_text("watches:\n  - {id: acme, name: Acme, terms: [acme]}\n"
                    f"store:\n  url: {url}\n  watch_retention_days: {{acme: 400}}\n")
    result = CliRunner().invoke(cli, ["check-config", str(path)])
    assert result.exit_code == 0, result.output
    masked = f"postgresql://postgres:***@{parts.hostname}:{parts.port}{parts.path}"
    assert (f"store: postgresql at {masked}, retention 90 days (acme 400), reachable"
            in result.output)
    assert "Pa55-w0rd" not in result.output
