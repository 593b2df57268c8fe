"""A sentiment model run in its own process, fed whole batches over a pipe.

Why: in one process the model's Python parts (tokeniser, the layer loop, the softmax and
language detection around the forward pass) hold the GIL between kernels, so the worker's
other stages (detect, aggregate, store) and the model take turns; the issue measured the
pipeline at 0.75-0.81x the model's own rate that way. In a ``spawn`` child (a fresh
interpreter: no copy of the parent's threads, event loop or broker sockets) the model has an
interpreter to itself, and the parent's classify thread only waits on the pipe, with the GIL
released.

Failure: a child that dies mid-batch (killed, out of memory, a crash in native code) is
logged with its exit code and started again, and the batch in hand is sent again once; a
second death in a row raises :class:`ModelProcessError` (the next call starts a new child), so
the caller's batch stays unacknowledged and is retried; a text that kills the model every
time ends, alone, in the dead-letter topic with that reason (streams/runtime/batches.py).
Nothing is lost either way: a batch's predictions only leave :meth:`ProcessModel.predict`
whole. A child that hangs (alive, but no answer within ``batch_timeout_s``: a deadlock in
native code, a machine swapping) is killed and treated as a death, so a stuck model process
cannot stop classification for good.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import threading
import time
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection
from typing import Any

from models.errors import ModelError
from models.sentiment import Prediction, SentimentModel

__all__ = ["ModelProcessError", "ProcessModel"]

log = logging.getLogger(__name__)

#: Long enough for a first start that converts the encoder and exports ONNX (about a minute
#: on 2 cores), short enough that a child stuck at start-up is reported.
_START_TIMEOUT_S = 600.0


class ModelProcessError(ModelError):
    """The model process died or could not start."""


class _NoAnswer(EOFError):
    """The child is alive but gave no answer in time."""


def _serve(conn: Connection, factory: Callable[..., SentimentModel],
           kwargs: dict[str, Any]) -> None:
    """The child: load the model, then answer one batch per message until the pipe closes."""
    try:
        model = factory(**kwargs)
    except Exception as exc:  # reported to the parent, which raises it with the reason
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
        return
    conn.send(("ready", (model.model_id, model.model_version)))
    while True:
        try:
            texts = conn.recv()
        except (EOFError, OSError):  # the parent closed the pipe or exited
            return
        if texts is None:
            return
        try:
            conn.send(("ok", model.predict(texts)))
        except Exception as exc:  # the model's own error: the parent raises it, child lives
            conn.send(("error", f"{type(exc).__name__}: {exc}"))


class ProcessModel:
    """:class:`SentimentModel` whose ``factory(**kwargs)`` model lives in a child process.

    ``factory`` and ``kwargs`` must pickle (a module-level function, plain values): the
    child is spawned, not forked.
    """

    model_id: str
    model_version: str

    def __init__(self, *, factory: Callable[..., SentimentModel], kwargs: dict[str, Any],
                 start_timeout_s: float = _START_TIMEOUT_S,
                 batch_timeout_s: float | None = None) -> None:
        """``batch_timeout_s``: how long one batch may take before the child is taken for
        hung and killed (``None``: wait for ever)."""
        self._factory, self._kwargs = factory, dict(kwargs)
        self._start_timeout_s = start_timeout_s
        self._batch_timeout_s = batch_timeout_s
        self._ctx = multiprocessing.get_context("spawn")
        self._lock = threading.Lock()
        self._proc: Any = None
        self._conn: Connection | None = None
        self.restarts = 0
        self._start()

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def _start(self) -> None:
        parent, child = self._ctx.Pipe()
        proc = self._ctx.Process(target=_serve, args=(child, self._factory, self._kwargs),
                                 name="escucha-model", daemon=True)
        proc.start()
        child.close()  # the child's copy only: its death then reads as EOF here
        self._proc, self._conn = proc, parent
        try:
            kind, payload = self._receive(self._start_timeout_s)
        except _NoAnswer as exc:
            self.close()
            raise ModelProcessError(f"the model process could not load the model: {exc}") \
                from exc
        if kind != "ready":
            self.close()
            raise ModelProcessError(f"the model process could not load the model: {payload}")
        self.model_id, self.model_version = payload

    def _receive(self, timeout_s: float | None) -> tuple[str, Any]:
        assert self._conn is not None
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while not self._conn.poll(1.0 if deadline is None else
                                  min(1.0, max(0.0, deadline - time.monotonic()))):
            if not self._proc.is_alive() and not self._conn.poll(0):
                raise EOFError("the model process exited")
            if deadline is not None and time.monotonic() >= deadline:
                raise _NoAnswer(f"the model process gave no answer in {timeout_s:g}s")
        kind, payload = self._conn.recv()
        return str(kind), payload

    def predict(self, texts: Sequence[str]) -> list[Prediction]:
        if not texts:
            return []
        with self._lock:
            for attempt in (1, 2):
                if self._conn is None:  # an earlier restart failed: try again now
                    self._start()
                    assert self._conn is not None
                try:
                    self._conn.send(list(texts))
                    kind, payload = self._receive(self._batch_timeout_s)
                except (EOFError, OSError) as exc:
                    if isinstance(exc, _NoAnswer):  # hung: the same as a death, by force
                        self._proc.kill()
                    self._proc.join(5)
                    code = self._proc.exitcode
                    log.error("the model process (pid %s) %s during a batch of %d texts (%s); %s",
                              self._proc.pid, "hung and was killed" if isinstance(exc, _NoAnswer)
                              else f"died with exit code {code}", len(texts), exc,
                              "starting a new one and sending the batch again" if attempt == 1
                              else "the next batch starts a new one")
                    self.close()
                    self.restarts += 1
                    if attempt == 2:
                        raise ModelProcessError(
                            f"the model process died twice in a row on a batch of {len(texts)} "
                            f"texts (exit code {code}; {exc}); the batch stays unacknowledged"
                        ) from exc
                    self._start()
                    continue
                if kind != "ok":
                    raise ModelError(f"the model process could not classify a batch: {payload}")
                predictions: list[Prediction] = payload
                return predictions
        raise AssertionError("unreachable")  # pragma: no cover

    def close(self) -> None:
        """Stop the child (politely, then by force) and close the pipe."""
        if self._conn is not None:
            with contextlib.suppress(OSError, ValueError):  # the child may be gone already
                self._conn.send(None)
            self._conn.close()
            self._conn = None
        if self._proc is not None:
            self._proc.join(5)
            if self._proc.is_alive():
                self._proc.kill()
                self._proc.join(5)
            self._proc = None
