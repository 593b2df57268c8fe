"""The naive baseline: how most teams would first write this stage.

A plain Kafka consumer loop that, for every message, parses it, calls a ``transformers``
text-classification pipeline on its one text and writes the result to an output topic,
waiting for each write. Same broker and texts as the pipeline; the model is the same
MiniLM-L6 encoder escucha bundles, with a sequence-classification head (untrained here: the
bench measures its cost, which is the encoder's forward pass plus one small layer, not its
answers).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from streams.core.topics import TopicSpec
from streams.runtime.broker import ensure_topics

__all__ = ["run_naive"]

_IN = TopicSpec("escucha.bench.naive-in", key="message number")
_OUT = TopicSpec("escucha.bench.naive-out", key="message number")


def _pipeline() -> object:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, pipeline
    from transformers.utils import logging as hf_logging

    from models.encoder import default_model_dir

    hf_logging.set_verbosity_error()  # type: ignore[no-untyped-call]
    # "some weights were newly initialised": on purpose
    logging.getLogger("transformers").setLevel(logging.ERROR)
    path = default_model_dir()
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=3)
    return pipeline("text-classification", model=model,
                    tokenizer=AutoTokenizer.from_pretrained(path), device="cpu")


async def run_naive(bootstrap: str, texts: Sequence[str]) -> dict[str, float]:
    """Messages per second through the naive loop, over ``texts`` (produced first)."""
    ensure_topics(bootstrap, partitions=1, specs=(_IN, _OUT))
    classify = _pipeline()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for i, text in enumerate(texts):
            await producer.send(_IN.name, key=str(i).encode(),
                                value=json.dumps({"id": i, "text": text}).encode())
        await producer.flush()
        consumer = AIOKafkaConsumer(_IN.name, bootstrap_servers=bootstrap,
                                    group_id="escucha-bench-naive",
                                    auto_offset_reset="earliest")
        await consumer.start()
        try:
            done, began = 0, 0.0
            async for msg in consumer:
                if not began:
                    began = time.perf_counter()
                item = json.loads(msg.value or b"{}")
                result = classify(item["text"])  # type: ignore[operator]
                await producer.send_and_wait(
                    _OUT.name, key=msg.key,
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
