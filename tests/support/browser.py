"""Debian's chromium, driven by Playwright (no browser is downloaded), for console tests."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from playwright.async_api import Browser, async_playwright

__all__ = ["CHROMIUM_ARGS", "chromium"]

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    path = shutil.which("chromium")
    if path is None:
        raise RuntimeError("chromium is not installed: run `make system-deps` (Debian's "
                           "chromium package)")
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=path, args=CHROMIUM_ARGS,
                                           headless=True)
        try:
            yield browser
        finally:
            await browser.close()
