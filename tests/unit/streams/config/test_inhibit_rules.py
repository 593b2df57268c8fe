"""escalation.inhibit_rules: every bad rule reported at once, each with its path."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from streams.config.settings import ConfigError, load_settings


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith("ESCUCHA_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def _load(tmp_path: Path, rules: str) -> Path:
    path = tmp_path / "escucha.yaml"
    path.write_text("escalation:\n  inhibit_rules:\n" + rules, encoding="utf-8")
    return path


def test_a_valid_rule_loads(tmp_path: Path) -> None:
    settings = load_settings(_load(tmp_path, """\
    - source_match: {severity: critical}
      target_match: {severity: "~warning|info"}
      equal: [watch, detector]
"""))
    [rule] = settings.escalation.inhibit_rules
    assert rule.source_match == {"severity": "critical"} and rule.equal == ["watch", "detector"]


def test_every_bad_rule_is_reported_with_its_path(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(_load(tmp_path, """\
    - source_match: {severity: critical, team: comms}
      target_match: {severity: "~warning("}
      equal: [watch, region]
    - source_match: {}
      target_match: {severity: warning}
      equal: [watch, watch]
    - target_match: {severity: warning}
"""))
    by_path: dict[str, list[str]] = {}
    for problem in info.value.problems:
        where, _, what = problem.partition(": ")
        by_path.setdefault(where, []).append(what)
    rules = "escalation.inhibit_rules"
    assert "unknown label(s) ['team']" in by_path[f"{rules}.0.source_match"][0]
    assert "severity: invalid regex" in by_path[f"{rules}.0.target_match"][0]
    assert "unknown label(s) ['region']" in by_path[f"{rules}.0.equal"][0]
    assert "matches every incident" in by_path[f"{rules}.1.source_match"][0]
    assert "unique" in by_path[f"{rules}.1.equal"][0]
    assert f"{rules}.2.source_match" in by_path  # required
