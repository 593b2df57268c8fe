"""The connectors section of the config and `escucha connectors`."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from streams.cli import cli
from streams.config.settings import ConfigError, load_settings
from streams.connectors.base import Health
from streams.runtime.sources import connector_status
from tests.support.procs import write_config


def _config(tmp_path: Path, **connectors: object) -> Path:
    return write_config(tmp_path / "escucha.yaml", datadir=str(tmp_path / "var"),
                        watches=[{"id": "acme", "name": "Acme", "query": "acme OR #acme"}],
                        connectors=connectors)


def test_every_connector_problem_is_reported_with_its_path(tmp_path: Path) -> None:
    path = _config(tmp_path, rss=[{"name": "dup", "feeds": [{"url": "ftp://x"}]}],
                   hackernews=[{"name": "dup"}], reddit=[{"name": "r"}],
                   webhook={"tokens": ["t"], "max_items": 0})
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    text = "\n".join(err.value.problems)
    assert "connectors.rss.0.feeds.0.url" in text
    assert "connectors.reddit.0.client_id: Field required" in text
    assert "connectors.webhook.max_items" in text


def test_names_are_unique_across_sources(tmp_path: Path) -> None:
    path = _config(tmp_path, rss=[{"name": "dup", "feeds": [{"url": "https://a.example/f"}]}],
                   hackernews=[{"name": "dup"}])
    with pytest.raises(ConfigError, match="'dup' is used by rss and hackernews"):
        load_settings(path)


def test_status_shows_health_from_the_state_files(tmp_path: Path) -> None:
    path = _config(tmp_path, hackernews=[{"name": "hn"}, {"name": "hn-off", "enabled": False}],
                   rss=[{"name": "news", "feeds": [{"url": "https://a.example/f"}]}])
    settings = load_settings(path)
    state = tmp_path / "var" / "connectors"
    state.mkdir(parents=True)
    now = time.time()
    health = Health(name="hn", source="hackernews", state="backing_off", events=7, errors=2,
                    last_event_at=now - 90, last_error="SourceError: HTTP 503",
                    updated_at=now - 1)
    (state / "hn.json").write_text(json.dumps({"cursor": None, "seen": [],
                                               "health": health.__dict__}))
    rows = {r.name: r for r in connector_status(settings, now=now)}
    assert rows["hn"].state == "backing_off" and rows["hn"].events == 7
    assert rows["hn"].seconds_since_last_event == pytest.approx(90)
    assert rows["hn-off"].state == "disabled"
    assert rows["news"].state == "never ran"
    assert rows["webhook"].state.startswith("no tokens")
    # A state file nobody has updated for a while: the process is gone.
    stale = connector_status(settings, now=now + 3600)
    assert next(r for r in stale if r.name == "hn").state.startswith("not running")

    result = CliRunner().invoke(cli, ["connectors", "--config", str(path)])
    assert result.exit_code == 0, result.output
    assert "hn" in result.output and "backing_off" in result.output
    assert "last error: SourceError: HTTP 503" in result.output
    listed = json.loads(CliRunner().invoke(cli, ["connectors", "--config", str(path),
                                                 "--json"]).output)
    assert [r["name"] for r in listed] == ["webhook", "news", "hn", "hn-off"]


def test_ingest_refuses_to_start_without_connectors(tmp_path: Path) -> None:
    path = _config(tmp_path)
    result = CliRunner().invoke(cli, ["ingest", "--config", str(path)],
                                env={"ESCUCHA_KAFKA_BOOTSTRAP": "127.0.0.1:9"})
    assert result.exit_code == 2
    assert "no connectors enabled" in result.output
