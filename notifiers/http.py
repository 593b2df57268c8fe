"""The aiohttp session HTTP notifiers share: made on first use, closed by whoever made it."""

from __future__ import annotations

import aiohttp

__all__ = ["LazySession"]


class LazySession:
    def __init__(self, session: aiohttp.ClientSession | None = None) -> None:
        self._session = session
        self._owned = session is None  # a session we were given is the caller's to close

    def get(self) -> aiohttp.ClientSession:
        # Created on first use: a ClientSession must be made inside the running loop.
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
            self._owned = True
        return self._session

    async def close(self) -> None:
        if self._owned and self._session is not None and not self._session.closed:
            await self._session.close()
