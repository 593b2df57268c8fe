"""``escucha model …``: train, evaluate, try and time the sentiment model."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from streams.config.settings import Settings

__all__ = ["model"]

_DATA_HELP = "Labelled tweets (default: ../shared/data when it exists)."


def _data_dir(data: Path | None) -> Path:
    from models.data import default_data_dir

    found = data or default_data_dir()
    if found is None or not found.is_dir():
        click.echo("escucha: no labelled data: pass --data DIR (the layout of "
                   "../shared/data: umsab/<language>/, tweeteval/sentiment/, ...)", err=True)
        sys.exit(2)
    return found


def _settings_of(config: Path | None) -> Settings:
    from streams.cli._common import settings_or_exit  # the CLI's one loader (exit 2)

    return settings_or_exit(str(config) if config else None)


def _load(settings: Settings, *, cache: bool = True, runtime: str | None = None) -> object:
    from models.errors import ModelError
    from models.loader import load_model

    cfg = settings.model
    try:
        return load_model(name=cfg.name, label_map=cfg.label_map,
                          allow_download=cfg.allow_download, threads=cfg.threads,
                          batch_size=cfg.batch_size, quantize=cfg.quantize,
                          cache_size=cfg.cache_size if cache else 0, languages=cfg.languages,
                          runtime=runtime or cfg.runtime, cache_dir=cfg.cache_dir)
    except ModelError as exc:
        click.echo(f"escucha: {exc}", err=True)
        sys.exit(2)


def _progress(message: str) -> None:
    click.echo(f"… {message}", err=True)


@click.group()
def model() -> None:
    """Train, evaluate, try and time the sentiment model."""


@model.command("train")
@click.option("--data", type=click.Path(file_okay=False, path_type=Path), default=None,
              help=_DATA_HELP)
@click.option("--encoder", type=click.Choice(["e5", "minilm"]), default="e5", show_default=True,
              help="e5: the bundled multilingual model (model.name: bundled); minilm: the "
                   "English-centric one (model.name: minilm).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where to write the artifacts (default: the bundled ones in "
                   "models/artifacts/e5, or models/artifacts for minilm).")
@click.option("--seed", default=13, show_default=True)
@click.option("--layers", type=int, default=None,
              help="Top encoder layers to fine-tune (default: 6 for e5, 2 for minilm).")
@click.option("--epochs", default=3, show_default=True)
@click.option("--lr", default=1e-4, show_default=True,
              help="Learning rate of the fine-tuned layers (the heads: 1e-3).")
@click.option("--threads", type=int, default=None)
@click.option("--config", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Config whose model.cache_dir holds the converted e5 encoder.")
def train_cmd(data: Path | None, encoder: str, out: Path | None, seed: int,
              layers: int | None, epochs: int, lr: float, threads: int | None,
              config: Path | None) -> None:
    """Fine-tune the bundled model on the labelled tweets (e5: about 21 minutes on 2 cores)."""
    from models.errors import ModelError

    began = time.perf_counter()
    directory = _data_dir(data)
    try:
        if encoder == "e5":
            from models.multilingual import E5_ARTIFACTS
            from models.train_e5 import LAYERS, train_e5

            cache_dir = _settings_of(config).model.cache_dir or Path("var") / "models"
            bundle = train_e5(data_dir=directory, out=out or E5_ARTIFACTS, cache_dir=cache_dir,
                              seed=seed, layers=layers or LAYERS, epochs=epochs, lr=lr,
                              threads=threads, progress=_progress)
        else:
            from models.bundled import ARTIFACTS
            from models.train import train_bundle

            bundle = train_bundle(data_dir=directory, out=out or ARTIFACTS, seed=seed,
                                  layers=layers or 2, epochs=epochs, lr=lr, threads=threads,
                                  progress=_progress)
    except ModelError as exc:
        click.echo(f"escucha: {exc}", err=True)
        sys.exit(2)
    click.echo(json.dumps(bundle, indent=2))
    click.echo(f"trained in {time.perf_counter() - began:.0f}s; now run `escucha model eval`",
               err=True)


def _artifact_step(what: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """The options of a command that reruns one last step of `escucha model train` on the
    e5 artifacts (``what``: what it does to them, for --artifacts' help)."""
    def decorate(command: Callable[..., None]) -> Callable[..., None]:
        for option in reversed([
                click.option("--data", type=click.Path(file_okay=False, path_type=Path),
                             default=None, help=_DATA_HELP),
                click.option("--artifacts", type=click.Path(file_okay=False, path_type=Path),
                             default=None, help=f"The e5 artifacts to {what} (default: the "
                             "bundled models/artifacts/e5)."),
                click.option("--threads", type=int, default=None),
                click.option("--config", type=click.Path(dir_okay=False, path_type=Path),
                             default=None, help="Config whose model.cache_dir holds the "
                             "converted e5 encoder.")]):
            command = option(command)
        return command
    return decorate


def _run_step(step: Callable[..., Any], data: Path | None, artifacts: Path | None,
              threads: int | None, config: Path | None) -> Any:
    """``step(artifacts=, data_dir=, cache_dir=, threads=)`` with the options resolved; a
    ModelError ends the command with its message and exit code 2."""
    from models.errors import ModelError
    from models.multilingual import E5_ARTIFACTS

    directory = _data_dir(data)
    cache_dir = _settings_of(config).model.cache_dir or Path("var") / "models"
    try:
        return step(artifacts=artifacts or E5_ARTIFACTS, data_dir=directory,
                    cache_dir=cache_dir, threads=threads)
    except ModelError as exc:
        click.echo(f"escucha: {exc}", err=True)
        sys.exit(2)


@model.command("calibrate")
@_artifact_step("calibrate")
def calibrate_cmd(data: Path | None, artifacts: Path | None, threads: int | None,
                  config: Path | None) -> None:
    """Re-choose the n-gram mixture weight and sentiment offsets on UMSAB val (the last step
    of `escucha model train`, alone); rewrites bundle.json with a new version."""
    from models.train_e5 import calibrate_bundle

    bundle = _run_step(calibrate_bundle, data, artifacts, threads, config)
    click.echo(json.dumps({k: bundle[k] for k in ("version", "mixture", "sentiment_offsets")}
                          | {"validation": bundle["validation"]["calibration"]}, indent=2))


@model.command("smooth")
@_artifact_step("measure")
def smooth_cmd(data: Path | None, artifacts: Path | None, threads: int | None,
               config: Path | None) -> None:
    """Measure the activation peaks the int8 runtimes smooth with, on 612 train tweets (the
    last step of `escucha model train`, alone); writes smooth.npz beside bundle.json."""
    from models.train_e5 import smooth_bundle

    click.echo(f"wrote {_run_step(smooth_bundle, data, artifacts, threads, config)}")


@model.command("eval")
@click.option("--data", type=click.Path(file_okay=False, path_type=Path), default=None,
              help=_DATA_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object of figures.")
@click.option("--config", type=click.Path(dir_okay=False, path_type=Path), default=None)
@click.option("--split", type=click.Choice(["test", "val"]), default="test", show_default=True,
              help="val to tune on (TweetEval sentiment and UMSAB English val are training "
                   "data of the bundled models), test to report.")
@click.option("--variants", is_flag=True,
              help="The bundled model under every runtime (float32, bfloat16, int8 torch, "
                   "ONNX float32 and int8), each beside float32.")
@click.option("--runtimes", default="", metavar="LIST",
              help="With --variants: only these runtimes, comma-separated (torch, the "
                   "reference, is always scored).")
def eval_cmd(data: Path | None, as_json: bool, config: Path | None, split: str,
             variants: bool, runtimes: str) -> None:
    """The configured model on TweetEval and UMSAB splits, beside published baselines."""
    from models.evaluate import adoptable, evaluate, format_eval, format_variants
    from models.multilingual import RUNTIMES
    from streams.cli.bench import _variant_list

    wanted = _variant_list(runtimes)  # the same list syntax as `bench e2e --variants`
    unknown = [r for r in wanted if r not in RUNTIMES]
    if unknown:
        raise click.BadParameter(f"unknown runtimes {unknown}: use some of {list(RUNTIMES)}",
                                 param_hint="--runtimes")
    directory = _data_dir(data)
    settings = _settings_of(config)
    if not variants:
        result = evaluate(_load(settings, cache=False), directory,  # type: ignore[arg-type]
                          split=split, progress=_progress)
        if as_json:
            click.echo(json.dumps(result))
            return
        for line in format_eval(result):
            click.echo(line)
        return
    if settings.model.name != "bundled":
        click.echo("escucha: --variants compares the runtimes of model.name: bundled", err=True)
        sys.exit(2)
    chosen = [r for r in RUNTIMES if r == RUNTIMES[0] or not wanted or r in wanted]
    results = {}
    for runtime in chosen:
        _progress(f"runtime {runtime}")
        results[runtime] = evaluate(_load(settings, cache=False, runtime=runtime),  # type: ignore[arg-type]
                                    directory, split=split, progress=_progress)
    if as_json:
        click.echo(json.dumps({"variants": results, "within_tolerance": {
            r: adoptable(results[RUNTIMES[0]], results[r])[0] for r in chosen[1:]}}))
        return
    for line in format_eval(results[RUNTIMES[0]]):
        click.echo(line)
    click.echo("")
    for line in format_variants(results, RUNTIMES[0]):
        click.echo(line)


@model.command("prepare")
@click.option("--config", type=click.Path(dir_okay=False, path_type=Path), default=None)
def prepare_cmd(config: Path | None) -> None:
    """Convert the bundled encoder (and make its runtime's artifacts: the bfloat16 trace, or
    the ONNX export) into model.cache_dir now.

    A worker does it on its first start otherwise (seconds; a minute for the ONNX export);
    run it at install time, e.g. in the image build, so that the first start is fast.
    """
    settings = _settings_of(config)
    began = time.perf_counter()
    _load(settings, cache=False)
    click.echo(f"ready in {time.perf_counter() - began:.0f}s: {settings.model.name} "
               f"(cache {settings.model.cache_dir})", err=True)


@model.command("predict")
@click.argument("file", type=click.File("r", encoding="utf-8"), default="-")
@click.option("--json", "as_json", is_flag=True,
              help="One JSON object per line: label, scores, language, priority, reasons.")
@click.option("--config", type=click.Path(dir_okay=False, path_type=Path), default=None)
def predict_cmd(file: click.utils.LazyFile, as_json: bool, config: Path | None) -> None:
    """Classify texts, one per line, from FILE or standard input."""
    from datetime import UTC, datetime

    from models.priority import PriorityWeights, score_priority
    from streams.core.records import Author, Mention

    settings = _settings_of(config)
    weights = PriorityWeights(**settings.model.priority.model_dump())
    texts = [line.rstrip("\n") for line in file]
    texts = [t for t in texts if t.strip()]
    chosen = _load(settings)
    now = datetime.now(UTC)
    for start in range(0, len(texts), 256):
        chunk = texts[start:start + 256]
        for text, pred in zip(chunk, chosen.predict(chunk), strict=True):  # type: ignore[attr-defined]
            anger = (pred.emotion or {}).get("anger", 0.0)
            mention = Mention(source="cli", id="-", text=text[:20_000],
                              author=Author(handle="cli"), created_at=now)
            priority, reasons = score_priority(mention, pred.scores["negative"], anger=anger,
                                               weights=weights)
            if as_json:
                click.echo(json.dumps({
                    "text": text, "label": pred.label,
                    "scores": {k: round(v, 4) for k, v in pred.scores.items()},
                    "language": pred.language,
                    "emotion": {k: round(v, 4) for k, v in (pred.emotion or {}).items()},
                    "priority": priority, "reasons": reasons,
                    "model": {"id": pred.model_id, "version": pred.model_version}},
                    ensure_ascii=False))
            else:
                click.echo(f"{pred.label:<8} {pred.scores[pred.label]:.2f}  "
                           f"{pred.language or '??':<3} p{priority:<3} {text}")


@model.command("bench")
@click.option("--data", type=click.Path(file_okay=False, path_type=Path), default=None,
              help=_DATA_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object of figures.")
@click.option("--texts", "count", default=2048, show_default=True,
              help="How many real tweets to time on.")
@click.option("--batch-size", "batch_sizes", multiple=True, type=int,
              help="Batch sizes to time (repeatable; default 1, 8, 32, 64).")
@click.option("--duplicates", default=0.4, show_default=True,
              help="Share of repeated texts in the cache run.")
@click.option("--threads", type=int, default=None)
@click.option("--model", "which", type=click.Choice(["bundled", "minilm"]), default="bundled",
              show_default=True, help="Which offline model to time, with every variant.")
@click.option("--config", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Config whose model.cache_dir holds the converted e5 encoder.")
def bench_cmd(data: Path | None, as_json: bool, count: int, batch_sizes: tuple[int, ...],
              duplicates: float, threads: int | None, which: str,
              config: Path | None) -> None:
    """Texts/s and batch latency of an offline model: each variant, cache, forward limit."""
    from models.data import UMSAB_LANGUAGES, read_split
    from streams.bench.model import bench_model, format_bench

    directory = _data_dir(data)
    texts: list[str] = []
    for lang in UMSAB_LANGUAGES:  # every language, as a real stream would mix them
        texts += read_split(directory / "umsab" / lang, "test")[0]
    texts += read_split(directory / "tweeteval" / "sentiment", "test")[0]
    texts = texts[::max(1, len(texts) // count)][:count]
    result = bench_model(texts, batch_sizes=batch_sizes or (1, 8, 32, 64),
                         duplicate_ratio=duplicates, threads=threads, model=which,
                         cache_dir=_settings_of(config).model.cache_dir, progress=_progress)
    if as_json:
        click.echo(json.dumps(result))
        return
    for line in format_bench(result):
        click.echo(line)
