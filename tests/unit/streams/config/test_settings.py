"""Configuration: every problem at once with its path, env beats file, the check-config CLI."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from streams.cli import cli
from streams.config.settings import ConfigError, Settings, load_settings

EXAMPLE = Path(__file__).resolve().parents[4] / "escucha.example.yaml"

BAD_FILE = """\
kafka:
  bootstrap: localhost
  partitions: 0
web:
  port: 70000
detect:
  ratio: 0.5
  colour: red
watches:
  - id: Acme!
    name: ""
    terms: [acme]
  - id: ok
    name: ok
    terms: ["  "]
"""


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # The developer's own ESCUCHA_* variables must not leak into these tests.
    for name in list(os.environ):
        if name.startswith("ESCUCHA_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # no stray ./escucha.yaml


def write(tmp_path: Path, text: str, name: str = "escucha.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert info.value.source == str(path)
    return info.value.problems


def test_every_bad_field_is_reported_at_once_with_its_dotted_path(tmp_path: Path) -> None:
    problems = problems_of(write(tmp_path, BAD_FILE))
    where = [p.split(":", 1)[0] for p in problems]
    assert where == [
        "kafka.bootstrap", "kafka.partitions", "web.port", "detect.ratio", "detect.colour",
        "watches.0.id", "watches.0.name", "watches.1.terms",
    ]
    by_path = dict(p.split(": ", 1) for p in problems)
    assert "'localhost' is not host:port" in by_path["kafka.bootstrap"]
    assert "lowercase" in by_path["watches.0.id"]
    assert "blank" in by_path["watches.1.terms"]
    assert not any(p.startswith("Value error") or "Value error," in p for p in problems)


def test_config_error_message_lists_every_problem(tmp_path: Path) -> None:
    path = write(tmp_path, BAD_FILE)
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    text = str(info.value)
    assert str(path) in text
    for problem in info.value.problems:
        assert f"  - {problem}" in text


@pytest.mark.parametrize(
    ("text", "path"),
    [
        ("kafak:\n  bootstrap: k:9092\n", "kafak"),
        ("detect:\n  ratoi: 4\n", "detect.ratoi"),
        ("notifiers:\n  slack:\n    tokn: x\n", "notifiers.slack.tokn"),
        ("watches:\n  - {id: a, name: A, terms: [a], colour: red}\n", "watches.0.colour"),
    ],
)
def test_unknown_key_is_named_with_a_hint(tmp_path: Path, text: str, path: str) -> None:
    (problem,) = problems_of(write(tmp_path, text))
    assert problem.startswith(f"{path}: unknown key")
    assert "escucha.example.yaml" in problem


def test_yaml_syntax_error_gives_the_line(tmp_path: Path) -> None:
    text = "kafka:\n  partitions: 4\nweb:\n  port: 6066: 7\n"
    (problem,) = problems_of(write(tmp_path, text))
    assert problem.startswith("line 4, column ")
    assert "not valid YAML" in problem


@pytest.mark.parametrize("text", ["- a\n- b\n", "just a string\n", "42\n"])
def test_top_level_must_be_a_mapping(tmp_path: Path, text: str) -> None:
    (problem,) = problems_of(write(tmp_path, text))
    assert "mapping" in problem


def test_empty_file_means_defaults(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, ""))
    assert settings == Settings()
    assert settings.kafka.bootstrap is None and settings.watches == []


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError) as info:
        load_settings(missing)
    assert info.value.source == str(missing)
    assert "not found" in info.value.problems[0]


def test_escucha_config_env_names_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, "detect:\n  ratio: 7\n", name="elsewhere.yaml")
    monkeypatch.setenv("ESCUCHA_CONFIG", str(path))
    assert load_settings().detect.ratio == 7.0


def test_env_overrides_beat_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(
        tmp_path,
        "kafka:\n  bootstrap: file-host:9092\n  partitions: 3\n"
        "detect:\n  ratio: 4\n  min_negative: 3\n",
    )
    monkeypatch.setenv("ESCUCHA_KAFKA_BOOTSTRAP", "k1:9092,k2:9093")
    monkeypatch.setenv("ESCUCHA_DETECT__RATIO", "5.5")
    settings = load_settings(path)
    assert settings.kafka.bootstrap == "k1:9092,k2:9093"
    assert settings.detect.ratio == 5.5
    # The rest of each section still comes from the file: sources merge, they do not replace.
    assert settings.kafka.partitions == 3
    assert settings.detect.min_negative == 3


def test_short_secret_alias_fills_a_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ESCUCHA_SLACK_TOKEN", "xoxb-from-env")
    settings = load_settings(write(tmp_path, "notifiers:\n  slack:\n    channel: '#x'\n"))
    token = settings.notifiers.slack.token
    assert token is not None and token.get_secret_value() == "xoxb-from-env"
    assert "xoxb-from-env" not in repr(settings)
    assert settings.notifiers.slack.channel == "#x"


def test_empty_alias_is_ignored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ESCUCHA_KAFKA_BOOTSTRAP", "")
    settings = load_settings(write(tmp_path, "kafka:\n  bootstrap: file-host:9092\n"))
    assert settings.kafka.bootstrap == "file-host:9092"


def test_bad_env_value_is_reported_with_its_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ESCUCHA_DETECT__RATIO", "lots")
    monkeypatch.setenv("ESCUCHA_KAFKA_BOOTSTRAP", "nohost")
    problems = problems_of(write(tmp_path, "web:\n  port: 1\n"))
    assert sorted(p.split(":", 1)[0] for p in problems) == ["detect.ratio", "kafka.bootstrap"]


def test_explicit_overrides_win(tmp_path: Path) -> None:
    path = write(tmp_path, "web:\n  port: 1\n")
    assert load_settings(path, web={"port": 2}).web.port == 2


def test_duplicate_watch_ids_are_refused(tmp_path: Path) -> None:
    text = (
        "watches:\n"
        "  - {id: acme, name: Acme, terms: [acme]}\n"
        "  - {id: globex, name: Globex, terms: [globex]}\n"
        "  - {id: acme, name: Acme again, terms: [acme2]}\n"
    )
    (problem,) = problems_of(write(tmp_path, text))
    assert problem.startswith("watches: ")
    assert "'acme'" in problem and "twice" in problem


@pytest.mark.parametrize(
    "bootstrap",
    [
        "localhost", "host:", ":9092", "host:port", "k1:9092,", "k1:9092,k2", "k1:9092;k2:9092",
        "bad host:9092", "k1:0", "k1:99999", "k1:\uff19\uff10\uff19\uff12", "http://k1:9092",
    ],
)
def test_bad_bootstrap_shape(tmp_path: Path, bootstrap: str) -> None:
    (problem,) = problems_of(write(tmp_path, f"kafka:\n  bootstrap: '{bootstrap}'\n"))
    assert problem.startswith("kafka.bootstrap: ")
    assert "host:port" in problem


@pytest.mark.parametrize(
    ("bootstrap", "expected"),
    [
        ("k1:9092", "k1:9092"),
        (" k1:9092, k2:9093 ", "k1:9092, k2:9093"),
        ("kafka://broker.internal:9092", "kafka://broker.internal:9092"),
        ("[::1]:9092", "[::1]:9092"),
        ("   ", None),
    ],
)
def test_good_bootstrap_shapes(tmp_path: Path, bootstrap: str, expected: str | None) -> None:
    settings = load_settings(write(tmp_path, f"kafka:\n  bootstrap: '{bootstrap}'\n"))
    assert settings.kafka.bootstrap == expected


def test_settings_are_frozen(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, ""))
    with pytest.raises(ValueError):
        settings.detect.ratio = 10  # type: ignore[misc]


def test_example_file_is_valid() -> None:
    settings = load_settings(EXAMPLE)
    assert [w.id for w in settings.watches] == ["acme", "globex"]


def test_check_config_exits_2_and_prints_every_problem(tmp_path: Path) -> None:
    path = write(tmp_path, BAD_FILE)
    result = CliRunner().invoke(cli, ["check-config", str(path)])
    assert result.exit_code == 2
    output = result.output  # stdout and stderr, as the user sees them
    for where in ("kafka.bootstrap", "kafka.partitions", "web.port", "detect.ratio",
                  "detect.colour", "watches.0.id", "watches.0.name", "watches.1.terms"):
        assert where in output


def test_check_config_exits_2_on_a_missing_file(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["check-config", str(tmp_path / "absent.yaml")])
    assert result.exit_code == 2
    assert "not found" in result.output


def test_check_config_accepts_the_example() -> None:
    result = CliRunner().invoke(cli, ["check-config", str(EXAMPLE)])
    assert result.exit_code == 0, result.output
    assert "ok: 2 watches (acme, globex)" in result.output
    assert "broker embedded" in result.output


def test_source_silence_thresholds_keep_a_default_and_refuse_nonsense(tmp_path: Path) -> None:
    path = tmp_path / "escucha.yaml"
    path.write_text("connectors:\n  silent_after_s: {rss: 7200}\n")
    assert load_settings(path).connectors.silent_after_s == {"default": 1800, "rss": 7200}
    path.write_text("connectors:\n  silent_after_s: {default: 600, hackernews: 30}\n")
    with pytest.raises(ConfigError, match=r"silent_after_s.*hackernews: 30"):
        load_settings(path)


def test_kafka_handler_and_retention_settings_are_bounded(tmp_path: Path) -> None:
    path = tmp_path / "escucha.yaml"
    path.write_text("kafka:\n  handler_attempts: 0\n  handler_backoff_s: -1\n"
                    "  stream_retention_days: 0\n  history_retention_days: 0\n")
    with pytest.raises(ConfigError) as exc:
        load_settings(path)
    for field in ("handler_attempts", "handler_backoff_s", "stream_retention_days",
                  "history_retention_days"):
        assert f"kafka.{field}" in str(exc.value)
