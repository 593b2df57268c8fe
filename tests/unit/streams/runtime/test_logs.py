"""The Kafka client's repeated errors are held back; everything else passes untouched."""

from __future__ import annotations

import logging

from streams.runtime.logs import RepeatFilter


def _record(name: str, msg: str, *args: object, level: int = logging.ERROR) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, msg, args, None)


def test_the_first_passes_then_one_per_window_with_a_count() -> None:
    now = [0.0]
    quiet = RepeatFilter(window_s=30, clock=lambda: now[0])
    template = "Unable connect to node with id %s: %s"
    first = _record("aiokafka", template, 111, "refused")
    assert quiet.filter(first) and first.getMessage() == \
        "Unable connect to node with id 111: refused"
    for i in range(199):
        now[0] = 0.05 * (i + 1)
        assert not quiet.filter(_record("aiokafka", template, 112, "refused"))
    # Another kind of message is not held back by the first one.
    assert quiet.filter(_record("aiokafka.consumer.fetcher", "Failed fetch messages from %s", 1))
    now[0] = 30.0
    later = _record("aiokafka", template, 111, "refused")
    assert quiet.filter(later)
    assert later.getMessage() == ("Unable connect to node with id 111: refused "
                                  "[and 199 more like it in the last 30s]")
    now[0] = 31.0
    assert not quiet.filter(_record("aiokafka", template, 111, "refused"))


def test_escuchas_own_and_other_libraries_lines_are_never_dropped() -> None:
    quiet = RepeatFilter(window_s=30, clock=lambda: 0.0)
    for _ in range(5):
        assert quiet.filter(_record("agents.detect.agent", "signal %s", "x", level=logging.INFO))
        assert quiet.filter(_record("streams.runtime.pipeline", "lost the Kafka broker at %s", "b"))
        assert quiet.filter(_record("faust.worker", "something", level=logging.WARNING))


def test_a_malformed_request_is_one_info_line_and_a_handler_error_stays() -> None:
    from aiohttp.http_exceptions import BadHttpMessage

    from streams.runtime.logs import MalformedRequestFilter

    bad = BadHttpMessage("Invalid header value char:\n\n    b'Cookie: \\x01'")
    record = logging.LogRecord("aiohttp.server", logging.ERROR, __file__, 1,
                               "Error handling request from %s", ("127.0.0.9",),
                               (BadHttpMessage, bad, None))
    assert MalformedRequestFilter().filter(record)
    assert record.levelno == logging.INFO and record.exc_info is None
    assert record.getMessage() == ("refused a malformed HTTP request (400): "
                                   "Invalid header value char:")
    # A bug in a handler is still an error with its traceback.
    try:
        raise KeyError("x")
    except KeyError as exc:
        real = logging.LogRecord("aiohttp.server", logging.ERROR, __file__, 1,
                                 "Error handling request from %s", ("127.0.0.9",),
                                 (KeyError, exc, exc.__traceback__))
    assert MalformedRequestFilter().filter(real)
    assert real.levelno == logging.ERROR and real.exc_info is not None
