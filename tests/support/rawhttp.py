"""A byte-exact HTTP/1.1 client for hostile requests: any header bytes, any body, any source
address on the loopback range (127.0.0.0/8 is all local on Linux)."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Answer", "answered", "request"]


@dataclass
class Answer:
    status: int
    headers: dict[str, str] = field(default_factory=dict)  # lower-case; repeats joined by \n
    body: bytes = b""


async def request(port: int, method: str, target: str | bytes, *,
                  headers: list[tuple[bytes | str, bytes | str]] | None = None,
                  body: bytes = b"", source: str = "127.0.0.1",
                  wait_s: float = 15.0) -> Answer | None:
    """Send one request to 127.0.0.1:``port`` from ``source``; None if the server closed the
    connection without answering (what a crash in a header write looks like)."""
    raw_target = target.encode("utf-8", "surrogateescape") if isinstance(target, str) else target
    lines = [method.encode() + b" " + raw_target + b" HTTP/1.1", b"Host: 127.0.0.1",
             b"Connection: close", b"Content-Length: " + str(len(body)).encode()]
    for name, value in headers or []:
        n = name.encode() if isinstance(name, str) else name
        v = value.encode("utf-8", "surrogateescape") if isinstance(value, str) else value
        lines.append(n + b": " + v)
    payload = b"\r\n".join(lines) + b"\r\n\r\n" + body
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0)), wait_s)
    try:
        writer.write(payload)
        await writer.drain()
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), wait_s)
        except asyncio.IncompleteReadError:
            return None
        rest = b""
        # A stream (server-sent events) never ends: keep what came in a moment.
        with contextlib.suppress(TimeoutError):
            rest = await asyncio.wait_for(reader.read(), 2.0)
    finally:
        writer.close()
    if not head.startswith(b"HTTP/1."):
        return None
    head = head[:-4]
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    found = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        key = name.strip().lower()
        found[key] = f"{found[key]}\n{value.strip()}" if key in found else value.strip()
    return Answer(status=int(status_line.split()[1]), headers=found, body=rest)


async def answered(port: int, method: str, target: str, **kwargs: Any) -> Answer:
    """:func:`request`, asserting an answer came and it is not a server error."""
    answer = await request(port, method, target, **kwargs)
    assert answer is not None, f"{method} {target}: connection dropped without an answer"
    assert answer.status < 500, (method, target, answer.status, answer.body[:300])
    return answer
