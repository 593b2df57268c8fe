"""The one place that turns the ``model`` config into a ready :class:`SentimentModel`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from models.sentiment import SentimentModel

__all__ = ["BUNDLED", "load_model"]

BUNDLED = "bundled"


def load_model(*, name: str = BUNDLED, label_map: Mapping[str, str] | None = None,
               allow_download: bool = False, threads: int | None = None,
               batch_size: int = 32, quantize: bool = False, cache_size: int = 50_000,
               languages: Sequence[str] = ()) -> SentimentModel:
    """The bundled model or a Hugging Face one, behind the repeated-text cache."""
    model: SentimentModel
    if name == BUNDLED:
        from models.bundled import BundledModel

        model = BundledModel(threads=threads, batch_size=batch_size, quantize=quantize,
                             languages=languages)
    else:
        from models.hf import HuggingFaceSentiment

        model = HuggingFaceSentiment(model=name, label_map=label_map or {},
                                     allow_download=allow_download, threads=threads,
                                     batch_size=batch_size)
    if cache_size:
        from models.cache import CachedModel

        model = CachedModel(model, max_entries=cache_size)
    return model
