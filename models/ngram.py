"""Hashed character and word n-grams with a linear softmax head: the language-agnostic half.

The bundled MiniLM encoder was trained on English; on Spanish, Portuguese, French, Arabic or
Hindi tweets its word pieces say little, while character n-grams (what FastText and the
published SVM baselines use) carry sentiment in any script. The two are mixed per language
in :mod:`models.bundled`. Features are hashed, so the artifact holds no vocabulary: only the
IDF weights and the head, as plain arrays (no pickle).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from sklearn.feature_extraction.text import HashingVectorizer
from sklearn.preprocessing import normalize

__all__ = ["N_FEATURES", "NgramModel", "idf_weights", "ngram_counts", "ngram_features"]

N_FEATURES = 2**19  # per part (characters, words): few collisions at tweet-corpus sizes

_CHARS = HashingVectorizer(analyzer="char_wb", ngram_range=(2, 5), n_features=N_FEATURES,
                           alternate_sign=False, norm=None, lowercase=True)
_WORDS = HashingVectorizer(analyzer="word", ngram_range=(1, 2), n_features=N_FEATURES,
                           alternate_sign=False, norm=None, lowercase=True,
                           token_pattern=r"(?u)[#@]?\w+")


def ngram_counts(texts: Sequence[str]) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    return _CHARS.transform(texts).tocsr(), _WORDS.transform(texts).tocsr()


def idf_weights(counts: sp.csr_matrix) -> npt.NDArray[np.float32]:
    """Smoothed IDF, as scikit-learn's TfidfTransformer computes it."""
    n = counts.shape[0]
    df = np.bincount(counts.indices, minlength=counts.shape[1])
    idf: npt.NDArray[np.float32] = (np.log((1 + n) / (1 + df)) + 1).astype(np.float32)
    return idf


def _tfidf(counts: sp.csr_matrix, idf: npt.NDArray[np.float32]) -> sp.csr_matrix:
    x = counts.astype(np.float32)
    x.data = np.log1p(x.data)  # sublinear tf: a word said five times is not five times as angry
    x = x.multiply(idf).tocsr()
    return normalize(x, norm="l2", copy=False)


def ngram_features(texts: Sequence[str], idf_chars: npt.NDArray[np.float32],
                   idf_words: npt.NDArray[np.float32]) -> sp.csr_matrix:
    chars, words = ngram_counts(texts)
    return sp.hstack([_tfidf(chars, idf_chars), _tfidf(words, idf_words)]).tocsr()


@dataclass(frozen=True, kw_only=True)
class NgramModel:
    """``probabilities(texts)``: softmax over ``weights @ features + bias`` (3 classes)."""

    idf_chars: npt.NDArray[np.float32]
    idf_words: npt.NDArray[np.float32]
    weights: npt.NDArray[np.float32]   # [classes, 2 * N_FEATURES]
    bias: npt.NDArray[np.float32]

    def probabilities(self, texts: Sequence[str]) -> npt.NDArray[np.float64]:
        x = ngram_features(texts, self.idf_chars, self.idf_words)
        # .T is a view: no copy of the 3 x 1M weights per call on the classify hot path.
        logits = np.asarray(x @ self.weights.T, dtype=np.float64) + self.bias
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        result: npt.NDArray[np.float64] = p / p.sum(axis=1, keepdims=True)
        return result
