"""``model:``: which sentiment model runs, its batching and cache, and the priority weights."""

from __future__ import annotations

from pydantic import (
    Field,
)

from streams.config.base import Section

__all__ = ["ModelSettings", "PrioritySettings"]


class PrioritySettings(Section):
    """Points each factor adds to a mention's priority (0-100); each comes with a reason."""

    negativity: float = Field(default=40.0, ge=0, description="Scaled by P(negative).")
    reach: float = Field(default=20.0, ge=0, description="Scaled by log10(followers)/6.")
    verified: float = Field(default=5.0, ge=0, description="A verified author.")
    engagement: float = Field(default=10.0, ge=0, description="Scaled by log10 of "
                              "likes + 2 x shares + replies, over 4.")
    anger: float = Field(default=10.0, ge=0, description="Scaled by P(anger) of the emotion "
                         "head, for negative mentions.")
    risk_term: float = Field(default=20.0, ge=0, description="Any multilingual risk term "
                             "(legal threat, safety, recall, boycott, outage, breach, fraud).")


class ModelSettings(Section):
    name: str = Field(default="bundled", min_length=1, description="'bundled' (the offline "
                      "MiniLM model), a Hugging Face model id, or a local model directory.")
    label_map: dict[str, str] = Field(default_factory=dict, description="A Hugging Face "
                                      "model's labels to negative/neutral/positive.")
    allow_download: bool = Field(default=False, description="Let a Hugging Face model id be "
                                 "fetched from the hub (off: the machines may have none).")
    batch_size: int = Field(default=32, ge=1, le=1024, description="Max texts per model call.")
    max_wait_s: float = Field(
        default=0.05, gt=0, le=10, description="Longest a text waits for its batch to fill."
    )
    threads: int | None = Field(default=None, ge=1, le=256, description="Torch CPU threads.")
    quantize: bool = Field(default=False, description="int8 dynamic quantisation of the "
                           "bundled model's linear layers (see bench/RESULTS.md).")
    cache_size: int = Field(default=50_000, ge=0, description="Predictions kept for repeated "
                            "texts (reposts, copy-paste campaigns); 0 turns the cache off.")
    languages: list[str] = Field(default_factory=list, description="ISO 639-1 codes the "
                                 "language detector may answer; empty: all it knows.")
    priority: PrioritySettings = Field(default_factory=PrioritySettings)
