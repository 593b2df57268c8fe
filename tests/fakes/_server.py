"""What every fake HTTP service shares: serving on 127.0.0.1, port 0, and stopping cleanly."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Self

from aiohttp import web

__all__ = ["Failures", "LocalServer", "serve"]


async def serve(app: web.Application) -> tuple[web.AppRunner, str]:
    """Start ``app`` on a free loopback port; return its runner and base URL."""
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    return runner, f"http://{host}:{port}"


class LocalServer:
    """Lifecycle for a fake: subclasses implement ``start`` with :func:`serve`."""

    _runner: web.AppRunner | None = None

    async def start(self) -> None:
        raise NotImplementedError  # each fake builds its own routes

    async def stop(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()


@dataclass
class _Failure:
    status: int
    retry_after: int | None
    remaining: int
    kind: str | None


@dataclass
class Failures:
    """Answers a fake gives instead of serving, in order: ``add`` queues one (a status, an
    optional ``Retry-After``, how many requests it answers, and a ``kind`` the fake may put in
    its error body), ``take`` hands out the next."""

    _queue: list[_Failure] = field(default_factory=list)

    def add(self, status: int, *, retry_after: int | None = None, times: int = 1,
            kind: str | None = None) -> None:
        self._queue.append(_Failure(status, retry_after, times, kind))

    def take(self) -> tuple[int, dict[str, str] | None, str | None] | None:
        """The next failure's status, headers and kind, or None: serve this request
        normally."""
        if not self._queue:
            return None
        failure = self._queue[0]
        failure.remaining -= 1
        if failure.remaining <= 0:
            self._queue.pop(0)
        headers = ({"Retry-After": str(failure.retry_after)}
                   if failure.retry_after is not None else None)
        return failure.status, headers, failure.kind
