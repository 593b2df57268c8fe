"""A recording receiver of escucha's signed webhooks: a real aiohttp server on 127.0.0.1, port 0.

It does what a careful receiver does: checks the signature and age with
:func:`notifiers.webhook.verify_webhook` and answers 401 when they fail. Like many hook
services it puts a token in the URL path (``url`` includes it), and like Express it answers
unknown paths with ``404 Cannot POST <path>``, echoing that path, so tests can prove the token
never leaks through an error.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from notifiers.webhook import WebhookSignatureError, verify_webhook
from tests.fakes._server import LocalServer, serve

__all__ = ["FakeWebhookReceiver", "WebhookRequest"]


@dataclass
class WebhookRequest:
    """One request the receiver answered, refused ones included."""

    path: str
    headers: dict[str, str]
    body: bytes
    status: int
    at: float
    verified: bool
    refusal: str | None = None  # why the signature check failed

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    def header(self, name: str) -> str | None:
        wanted = name.lower()
        return next((v for k, v in self.headers.items() if k.lower() == wanted), None)


@dataclass
class _Failure:
    status: int
    retry_after: int | None
    remaining: int


class FakeWebhookReceiver(LocalServer):
    """Accepts signed POSTs at ``path`` (which may embed a token); ``url`` is the full URL."""

    def __init__(
        self,
        *,
        secret: str,
        path: str = "/hooks/escucha",
        tolerance_s: int = 300,
        ok_status: int = 200,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not path.startswith("/"):
            raise ValueError("path must start with '/'")
        self.secret = secret
        self.path = path
        self.tolerance_s = tolerance_s
        self.ok_status = ok_status
        self.requests: list[WebhookRequest] = []
        self.delay_s = 0.0  # seconds to stall before answering, to drive client timeouts
        self._clock = clock
        self._failures: list[_Failure] = []
        self._down = False
        self._runner: web.AppRunner | None = None
        self._base: str | None = None

    # -- lifecycle -------------------------------------------------------------------------
    async def start(self) -> None:
        if self._runner is not None:
            raise RuntimeError("FakeWebhookReceiver is already started")
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner, base = await serve(app)
        self._base = base

    @property
    def base_url(self) -> str:
        if self._base is None:
            raise RuntimeError("no URL yet: await start() or use 'async with'")
        return self._base

    @property
    def url(self) -> str:
        return self.base_url + self.path

    # -- scripting and inspection ---------------------------------------------------------
    def fail_next(self, status: int, retry_after: int | None = None, times: int = 1) -> None:
        """Answer the next ``times`` requests with ``status`` (and ``Retry-After`` if given)."""
        if times < 1 or not 300 <= status <= 599:
            raise ValueError("fail_next needs times >= 1 and an HTTP status in 300..599")
        self._failures.append(_Failure(status, retry_after, times))

    def go_down(self) -> None:
        """Every request gets HTTP 503 until come_up()."""
        self._down = True

    def come_up(self) -> None:
        self._down = False

    @property
    def received(self) -> list[WebhookRequest]:
        """Requests that were verified and accepted."""
        return [r for r in self.requests if r.verified and 200 <= r.status < 300]

    # -- the endpoint ---------------------------------------------------------------------
    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        headers = dict(request.headers)
        if self.delay_s:
            await asyncio.sleep(self.delay_s)

        def record(status: int, *, verified: bool = False, refusal: str | None = None) -> None:
            self.requests.append(WebhookRequest(
                path=request.path, headers=headers, body=body, status=status,
                at=self._clock(), verified=verified, refusal=refusal))

        if request.method != "POST" or request.path != self.path:
            record(404)
            return web.Response(status=404, text=f"Cannot {request.method} {request.path}")
        if self._down:
            record(503)
            return web.Response(status=503, text="Service Unavailable")
        if self._failures:
            failure = self._failures[0]
            failure.remaining -= 1
            if failure.remaining == 0:
                self._failures.pop(0)
            record(failure.status)
            extra = ({"Retry-After": str(failure.retry_after)}
                     if failure.retry_after is not None else None)
            if 300 <= failure.status < 400:
                extra = {**(extra or {}), "Location": self.url + "/moved"}
            # Echo the path like many frameworks do, so leaks through bodies would show.
            return web.Response(status=failure.status, headers=extra,
                                text=f"failure at {request.path}")
        try:
            verify_webhook(body, request.headers, secret=self.secret,
                           tolerance_s=self.tolerance_s, now=self._clock())
        except WebhookSignatureError as exc:
            record(401, refusal=str(exc))
            return web.json_response({"error": str(exc)}, status=401)
        record(self.ok_status, verified=True)
        if self.ok_status == 204:
            return web.Response(status=204)
        return web.json_response({"ok": True}, status=self.ok_status)
