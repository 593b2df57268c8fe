"""Which runtime may replace float32: within 0.5 points on every benchmark, or not at all."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from models.data import UMSAB_LANGUAGES
from models.errors import ModelError
from models.evaluate import TOLERANCE, adoptable, format_variants
from models.loader import (
    DEFAULT_RUNTIME,
    HELD_BACK,
    MEASURED_TEXTS_PER_S,
    QUANTIZED_RUNTIME,
    WITHIN_TOLERANCE,
    choose_auto,
    resolve_runtime,
)


def _result(value: float = 60.0) -> dict[str, Any]:
    per = {lang: value for lang in (*UMSAB_LANGUAGES, "all", "pooled")}
    return {"split": "test", "tweeteval_sentiment_macro_recall": value,
            "umsab_macro_f1": per, "emotion_macro_f1": value}


def test_a_variant_within_tolerance_everywhere_is_adoptable() -> None:
    fp32, int8 = _result(), _result(60.0 - TOLERANCE)
    assert adoptable(fp32, int8) == (True, [])


@pytest.mark.parametrize("where", ["tweeteval_sentiment_macro_recall", "hindi",
                                   "emotion_macro_f1"])
def test_one_benchmark_past_tolerance_rules_it_out(where: str) -> None:
    fp32, int8 = _result(), _result()
    if where == "hindi":
        int8["umsab_macro_f1"]["hindi"] = 60.0 - TOLERANCE - 0.1
    else:
        int8[where] = 60.0 - TOLERANCE - 0.1
    ok, worse = adoptable(fp32, int8)
    assert not ok and len(worse) == 1 and where.split("_")[0] in worse[0]


def test_a_missing_emotion_figure_rules_it_out() -> None:
    int8 = copy.deepcopy(_result())
    int8["emotion_macro_f1"] = None
    assert adoptable(_result(), int8)[0] is False


def test_better_is_always_fine_and_the_table_names_each_variant() -> None:
    lines = format_variants({"torch": _result(), "onnx-int8": _result(61.0),
                             "torch-int8": _result(50.0)}, "torch")
    assert "onnx-int8: within" in lines[-2] and "torch-int8: NOT within" in lines[-1]
    assert any(line.startswith("umsab:spanish") for line in lines)


def test_runtime_auto_and_older_quantize_configs() -> None:
    assert resolve_runtime("auto", quantize=False, bf16=True) == DEFAULT_RUNTIME
    assert resolve_runtime("auto", quantize=True) == QUANTIZED_RUNTIME == "onnx-int8"
    assert choose_auto(MEASURED_TEXTS_PER_S, WITHIN_TOLERANCE) == DEFAULT_RUNTIME
    assert resolve_runtime("torch", quantize=True) == "torch"  # explicit wins
    with pytest.raises(ModelError, match=r"model\.runtime"):
        resolve_runtime("gpu", quantize=False)


def test_auto_is_the_fastest_runtime_within_tolerance_of_float32() -> None:
    within = {"torch": True, "torch-int8": False, "onnx": True, "onnx-int8": False}
    speeds = {"torch": 117.0, "torch-int8": 230.0, "onnx": 150.0, "onnx-int8": 260.0}
    assert choose_auto(speeds, within) == "onnx"  # the int8 ones are faster but failed
    assert choose_auto(speeds | {"onnx": 110.0}, within) == "torch"  # slower: not adopted
    assert choose_auto(speeds | {"onnx": 117.0}, within) == "torch"  # a tie keeps the reference
    assert choose_auto(speeds, within | {"onnx-int8": True}) == "onnx-int8"
    assert choose_auto({}, within) == "torch"  # nothing measured: the reference
    assert choose_auto(speeds, dict.fromkeys(within, False)) == "torch"


def test_the_committed_choice_follows_the_committed_figures() -> None:
    assert set(MEASURED_TEXTS_PER_S) == set(WITHIN_TOLERANCE) == {
        "torch", "torch-bf16", "torch-int8", "onnx", "onnx-int8", "onnx-checked"}
    # int8 with its close calls run again in float32: within tolerance and faster than
    # onnx, but held back for its memory (HELD_BACK): auto stays onnx.
    assert WITHIN_TOLERANCE["onnx-checked"] and "onnx-checked" in HELD_BACK
    assert MEASURED_TEXTS_PER_S["onnx-checked"] > MEASURED_TEXTS_PER_S["onnx"]
    assert DEFAULT_RUNTIME == "onnx"
    assert choose_auto(MEASURED_TEXTS_PER_S, WITHIN_TOLERANCE,
                       held_back={"torch-bf16": "x"}) == "onnx-checked"
    # Faster still, but outside tolerance with the 6-layer model (emotion val -0.9) and held
    # back from auto besides (models/loader.py, HELD_BACK): either alone keeps it out.
    assert "torch-bf16" in HELD_BACK and not WITHIN_TOLERANCE["torch-bf16"]
    assert MEASURED_TEXTS_PER_S["torch-bf16"] > MEASURED_TEXTS_PER_S["onnx"]
    assert choose_auto(MEASURED_TEXTS_PER_S, WITHIN_TOLERANCE | {"torch-bf16": True},
                       held_back={"onnx-checked": "x"}) == "torch-bf16"
    assert choose_auto(MEASURED_TEXTS_PER_S, WITHIN_TOLERANCE | {"torch-bf16": True}) == "onnx"
    assert not WITHIN_TOLERANCE["torch-int8"] and not WITHIN_TOLERANCE["onnx-int8"]
    fastest_fine = max(MEASURED_TEXTS_PER_S[r] for r, ok in WITHIN_TOLERANCE.items()
                       if ok and r not in HELD_BACK)
    assert MEASURED_TEXTS_PER_S[DEFAULT_RUNTIME] == fastest_fine
