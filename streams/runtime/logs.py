"""Logging that ops can read during an outage.

When the broker goes away, the Kafka client logs the same few errors for every node, fetch
and heartbeat: measured ~200 lines a second, which buries the one line that says what is
wrong and fills disks. :class:`RepeatFilter` lets the first of each kind through, then one
per window with a count of what it held back; escucha's own broker probe says once that the
broker is gone and once that it is back (streams/runtime/pipeline.py).
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Callable

__all__ = ["MalformedRequestFilter", "RepeatFilter", "setup_logging"]

#: Loggers whose messages repeat per node and per retry while a broker is unreachable, and
#: the web server's, which a client can make repeat as fast as it can send requests.
_CHATTY = ("aiokafka", "kafka", "aiohttp.server")


class MalformedRequestFilter(logging.Filter):
    """aiohttp answers a request it cannot parse (a control character in a header, a broken
    request line) with 400 itself, then logs it at ERROR with a traceback: a client's
    mistake, or an attacker's way to fill the disk. Such a record becomes one INFO line
    saying what was refused; a real error in a handler is left as it is."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if record.name == "aiohttp.server" and _is_bad_message(exc):
            first = str(getattr(exc, "message", "") or exc).strip().splitlines()
            record.msg = "refused a malformed HTTP request (400): %s"
            record.args = (first[0][:120] if first else type(exc).__name__,)
            record.exc_info, record.exc_text = None, None
            record.levelno, record.levelname = logging.INFO, "INFO"
        return True


def _is_bad_message(exc: BaseException | None) -> bool:
    try:
        from aiohttp.http_exceptions import BadHttpMessage
    except ImportError:  # pragma: no cover - aiohttp is a dependency
        return False
    return isinstance(exc, BadHttpMessage)


class RepeatFilter(logging.Filter):
    """Per (logger, level, message template): the first record passes, then at most one per
    ``window_s``, carrying how many like it were dropped since the last one."""

    def __init__(self, *, window_s: float = 30.0, prefixes: tuple[str, ...] = _CHATTY,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.window_s, self.prefixes, self._clock = window_s, prefixes, clock
        self._seen: dict[tuple[str, int, str], tuple[float, int]] = {}
        self._lock = threading.Lock()  # handlers may be called from the Kafka probe's thread

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith(self.prefixes):
            return True
        key = (record.name, record.levelno, str(record.msg))
        now = self._clock()
        with self._lock:
            last, dropped = self._seen.get(key, (-float("inf"), 0))
            if now - last < self.window_s:
                self._seen[key] = (last, dropped + 1)
                return False
            self._seen[key] = (now, 0)
            if len(self._seen) > 1000:  # templates are few; this only bounds a pathology
                self._seen = {key: (now, 0)}
        if dropped:
            record.msg = f"{record.msg} [and {dropped} more like it in the last " \
                         f"{self.window_s:.0f}s]"
        return True


def setup_logging(level: str) -> None:
    """escucha's log format on stderr, the Kafka and Faust libraries at WARNING or above, and
    their repeats held back."""
    logging.basicConfig(
        level=level.upper(), format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # streams.runtime.faust holds Faust's own services (App, Consumer): their start/stop chatter.
    for noisy in ("kafka", "aiokafka", "faust", "mode", "urllib3", "httpx",
                  "streams.runtime.faust"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))
    # Named loggers at DEBUG without the rest: ESCUCHA_DEBUG_LOGGERS=streams.runtime.reads
    # traces where every partition is read from around rebalances (README "Delivery
    # guarantees").
    for name in os.environ.get("ESCUCHA_DEBUG_LOGGERS", "").split(","):
        if name.strip():
            logging.getLogger(name.strip()).setLevel(logging.DEBUG)
    quiet = RepeatFilter()
    for handler in logging.getLogger().handlers:
        handler.addFilter(MalformedRequestFilter())  # before the repeats are counted
        handler.addFilter(quiet)
