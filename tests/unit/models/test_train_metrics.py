"""Training helpers: macro metrics by hand, data files read without misalignment."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from models.data import macro_f1, macro_recall, read_split
from models.errors import ModelError


def test_macro_recall_and_f1_match_hand_computation() -> None:
    y = np.array([0, 0, 1, 1, 2, 2], dtype=np.int64)
    p = np.array([0, 1, 1, 1, 2, 0], dtype=np.int64)
    # recalls 1/2, 2/2, 1/2; F1s: c0 2/(2+1+1)=.5, c1 4/(4+1)=.8, c2 2/(2+0+1)=2/3
    assert macro_recall(y, p) == pytest.approx(100 * (0.5 + 1 + 0.5) / 3)
    assert macro_f1(y, p) == pytest.approx(100 * (0.5 + 0.8 + 2 / 3) / 3)


def test_absent_class_counts_as_zero() -> None:
    y = np.array([0, 0], dtype=np.int64)
    assert macro_f1(y, y) == pytest.approx(100 / 3)
    assert macro_recall(y, y) == pytest.approx(100 / 3)


def test_read_split_keeps_unicode_line_separators_inside_a_tweet(tmp_path: Path) -> None:
    (tmp_path / "test_text.txt").write_text("one\u2028still one\ntwo\x85still two\n",
                                            encoding="utf-8")
    (tmp_path / "test_labels.txt").write_text("0\n2\n", encoding="utf-8")
    texts, y = read_split(tmp_path, "test")
    assert texts == ["one\u2028still one", "two\x85still two"]
    assert y.tolist() == [0, 2]


def test_read_split_refuses_misaligned_files(tmp_path: Path) -> None:
    (tmp_path / "test_text.txt").write_text("a\nb\n", encoding="utf-8")
    (tmp_path / "test_labels.txt").write_text("0\n", encoding="utf-8")
    with pytest.raises(ModelError, match="aligned"):
        read_split(tmp_path, "test")
