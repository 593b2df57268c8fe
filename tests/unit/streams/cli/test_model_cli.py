"""`escucha model predict|eval|bench` on the real bundled model and a small labelled dir."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from models.data import UMSAB_LANGUAGES
from models.multilingual import RUNTIMES
from streams.cli import cli

_TWEETS = [("I hate this, worst service ever", 0), ("The store opens at nine", 1),
           ("I love it, thank you so much!", 2), ("Odio este producto, no funciona", 0)]


def _data(tmp_path: Path) -> Path:
    def split(folder: Path, name: str, rows: list[tuple[str, int]]) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{name}_text.txt").write_text("".join(f"{t}\n" for t, _ in rows))
        (folder / f"{name}_labels.txt").write_text("".join(f"{y}\n" for _, y in rows))

    for lang in UMSAB_LANGUAGES:
        split(tmp_path / "umsab" / lang, "test", _TWEETS)
    split(tmp_path / "tweeteval" / "sentiment", "test", _TWEETS)
    split(tmp_path / "tweeteval" / "emotion", "test",
          [("I am furious!!", 0), ("so happy today", 1), ("it will get better", 2),
           ("I miss her so much", 3)])
    return tmp_path


def test_predict_reads_stdin_and_explains_priority() -> None:
    text = "Acme's charger exploded and injured my son, I'm calling a lawyer. Disgusting!"
    result = CliRunner().invoke(cli, ["model", "predict", "--json"],
                                input=f"{text}\n\nMe encanta Acme, gracias\n")
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(rows) == 2
    assert rows[0]["label"] == "negative" and rows[0]["language"] == "en"
    assert any(r.startswith("risk:") for r in rows[0]["reasons"])
    assert rows[0]["priority"] > rows[1]["priority"]
    assert rows[1]["label"] == "positive" and rows[1]["language"] == "es"
    assert set(rows[0]["emotion"]) == {"anger", "joy", "optimism", "sadness"}


def test_eval_json_has_the_documented_keys(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["model", "eval", "--json", "--data", str(_data(tmp_path))])
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert 0 <= figures["tweeteval_sentiment_macro_recall"] <= 100
    assert set(figures["umsab_macro_f1"]) == {*UMSAB_LANGUAGES, "all", "pooled"}
    assert figures["emotion_macro_f1"] is not None


def test_eval_without_data_says_where_to_point() -> None:
    result = CliRunner().invoke(cli, ["model", "eval", "--data", "/nonexistent/dir"])
    assert result.exit_code == 2
    assert "--data DIR" in result.output


def test_bench_smoke(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["model", "bench", "--json", "--data", str(_data(tmp_path)),
                                      "--texts", "32", "--batch-size", "8", "--model", "minilm"])
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert figures["forward_limit"]["texts_per_s"] > 0
    assert figures["fp32"][0]["batch_size"] == 8 and figures["int8"][0]["texts_per_s"] > 0
    assert figures["cache"]["with"]["texts_per_s"] > 0


def test_bench_times_every_runtime_of_the_bundled_model(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["model", "bench", "--json", "--data", str(_data(tmp_path)),
                                      "--texts", "16", "--batch-size", "8"])
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert figures["variants"] == list(RUNTIMES)
    assert all(figures[v][0]["texts_per_s"] > 0 for v in figures["variants"])


def test_eval_variants_on_val_compares_each_runtime_to_float32(tmp_path: Path) -> None:
    data = _data(tmp_path)
    for folder in [*(data / "umsab").iterdir(), data / "tweeteval" / "sentiment",
                   data / "tweeteval" / "emotion"]:
        for suffix in ("text", "labels"):
            (folder / f"val_{suffix}.txt").write_bytes((folder / f"test_{suffix}.txt")
                                                       .read_bytes())
    result = CliRunner().invoke(cli, ["model", "eval", "--variants", "--split", "val",
                                      "--json", "--data", str(data)])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(out["variants"]) == set(RUNTIMES) >= {"torch", "onnx", "onnx-int8"}
    assert all(r["split"] == "val" for r in out["variants"].values())
    assert set(out["within_tolerance"]) == set(RUNTIMES) - {"torch"}


@pytest.mark.parametrize("command", ["train", "smooth"])
def test_train_and_smooth_refuse_a_missing_data_dir(command: str) -> None:
    result = CliRunner().invoke(cli, ["model", command, "--data", "/nonexistent/dir"])
    assert result.exit_code == 2 and "--data DIR" in result.output


def test_smooth_writes_the_peaks_of_the_artifacts_it_measures(tmp_path: Path) -> None:
    import shutil

    from models.multilingual import E5_ARTIFACTS
    from models.smooth import PEAKS_FILE, read_peaks
    from tests.unit.models.test_train_e5 import _write

    data = tmp_path / "data"
    for lang in UMSAB_LANGUAGES:
        _write(data / "umsab" / lang, "train", [(f"good {lang}", 2), (f"bad {lang}", 0)])
    _write(data / "tweeteval" / "emotion", "train", [("so angry", 0), ("so happy", 1)])
    artifacts = tmp_path / "e5"
    shutil.copytree(E5_ARTIFACTS, artifacts)
    (artifacts / PEAKS_FILE).unlink()
    result = CliRunner().invoke(cli, ["model", "smooth", "--data", str(data), "--artifacts",
                                      str(artifacts), "--threads", "2"])
    assert result.exit_code == 0, result.output
    version = json.loads((artifacts / "bundle.json").read_text())["version"]
    peaks = read_peaks(artifacts / PEAKS_FILE, version=version)
    assert peaks is not None and len(peaks) == 24


def test_train_help_names_the_layers_it_trains_by_default() -> None:
    from models.train_e5 import LAYERS

    # The help is written before torch is imported, so it states the number; keep it true.
    result = CliRunner().invoke(cli, ["model", "train", "--help"])
    assert f"(default: {LAYERS} for e5" in " ".join(result.output.split())


def test_eval_names_an_unknown_runtime_before_reading_anything() -> None:
    result = CliRunner().invoke(cli, ["model", "eval", "--variants", "--runtimes",
                                      "onnx, cuda", "--data", "/nonexistent/dir"])
    assert result.exit_code == 2
    assert "unknown runtimes ['cuda']" in result.output and "torch-bf16" in result.output
