"""What every fake HTTP service shares: serving on 127.0.0.1, port 0, and stopping cleanly."""

from __future__ import annotations

from typing import Self

from aiohttp import web

__all__ = ["LocalServer", "serve"]


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
