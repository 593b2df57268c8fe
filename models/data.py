"""The labelled tweets escucha trains and evaluates on, and the metrics of their benchmarks.

Only ``escucha model train`` and ``escucha model eval`` read these files (by default from
``../shared/data``); the running product never does.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt

from models.errors import ModelError

__all__ = ["EMOTION_LABELS", "UMSAB_LANGUAGES", "default_data_dir", "macro_f1", "macro_recall",
           "read_split"]

UMSAB_LANGUAGES: tuple[str, ...] = ("arabic", "english", "french", "german", "hindi", "italian",
                                    "portuguese", "spanish")
EMOTION_LABELS: tuple[str, ...] = ("anger", "joy", "optimism", "sadness")

_Ints = npt.NDArray[np.int64]


def default_data_dir() -> Path | None:
    """``../shared/data`` beside the working directory, when it exists."""
    candidate = Path.cwd().parent / "shared" / "data"
    return candidate if candidate.is_dir() else None


def macro_recall(y_true: _Ints, y_pred: _Ints, *, n_classes: int = 3) -> float:
    """Unweighted mean of per-class recall, in percent (TweetEval's sentiment metric)."""
    recalls = []
    for c in range(n_classes):
        support = int((y_true == c).sum())
        recalls.append(float(((y_pred == c) & (y_true == c)).sum()) / support if support else 0.0)
    return 100.0 * float(np.mean(recalls))


def macro_f1(y_true: _Ints, y_pred: _Ints, *, n_classes: int = 3) -> float:
    """Unweighted mean of per-class F1, in percent; a class never predicted nor present is 0."""
    f1s = []
    for c in range(n_classes):
        tp = float(((y_pred == c) & (y_true == c)).sum())
        fp = float(((y_pred == c) & (y_true != c)).sum())
        fn = float(((y_pred != c) & (y_true == c)).sum())
        f1s.append(2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0)
    return 100.0 * float(np.mean(f1s))


def read_split(folder: Path, split: str, *, n_classes: int = 3) -> tuple[list[str], _Ints]:
    """``folder/{split}_text.txt`` and ``{split}_labels.txt``, checked to align."""
    text_path, label_path = folder / f"{split}_text.txt", folder / f"{split}_labels.txt"
    try:
        # split("\n"), not splitlines(): tweets may hold U+2028 or \x85, which splitlines
        # would take for line breaks, misaligning texts and labels.
        texts = text_path.read_text(encoding="utf-8").split("\n")
        labels = label_path.read_text(encoding="utf-8").split("\n")
    except OSError as exc:
        raise ModelError(f"cannot read {text_path} / {label_path}: {exc}; pass --data DIR "
                         "pointing at the labelled tweets (see ../shared/data/README.md)") \
            from exc
    if texts and texts[-1] == "":
        texts.pop()
    if labels and labels[-1].strip() == "":
        labels.pop()
    if len(texts) != len(labels):
        raise ModelError(f"{text_path} has {len(texts)} lines but {label_path} has "
                         f"{len(labels)}; the files must be aligned line by line")
    y = np.array([int(v) for v in labels], dtype=np.int64)
    if y.size and (y.min() < 0 or y.max() >= n_classes):
        raise ModelError(f"{label_path} holds labels outside 0..{n_classes - 1}")
    return [t.removesuffix("\r") for t in texts], y
