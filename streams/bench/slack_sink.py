"""A local endpoint that answers Slack's Web API the way Slack does, and notes when each
alert arrived: where the bench measures "critical mention → Slack notification".

It speaks only what escucha's Slack notifier calls (``chat.postMessage``, ``chat.update``,
``conversations.history`` and ``conversations.list``), with Slack's response shapes, on
127.0.0.1 and a free port. Alerts carry their incident in the message metadata
(``event_payload.incident_id`` = ``<watch>.<hash>``), so arrivals are kept by watch.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

__all__ = ["Arrival", "SlackSink"]

_CHANNEL = "CBENCH0001"


@dataclass(frozen=True)
class Arrival:
    at: float  # wall time (time.time()) the post reached the endpoint
    watch: str
    incident_id: str


@dataclass
class SlackSink:
    arrivals: list[Arrival] = field(default_factory=list)
    _runner: web.AppRunner | None = None
    _port: int = 0
    _seq: int = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._port}/api/"

    def first_post(self, watch: str) -> float | None:
        times = [a.at for a in self.arrivals if a.watch == watch]
        return min(times) if times else None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._handle)  # reads are GETs
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None and server.sockets  # type: ignore[attr-defined]
        self._port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _handle(self, request: web.Request) -> web.Response:
        at = time.time()
        raw = await request.read()
        try:
            if request.method == "GET":
                params: dict[str, Any] = dict(request.query)
            elif request.content_type == "application/json":
                params = json.loads(raw or b"{}")
            else:
                params = dict(parse_qsl(raw.decode()))
        except (ValueError, UnicodeDecodeError):
            return web.json_response({"ok": False, "error": "invalid_form_data"})
        method = request.match_info["method"]
        if method == "chat.postMessage":
            self._seq += 1
            ts = f"{int(at)}.{self._seq:06d}"
            metadata = params.get("metadata")
            if isinstance(metadata, str):
                metadata = json.loads(metadata)
            payload = (metadata or {}).get("event_payload") or {}
            incident = str(payload.get("incident_id") or "")
            if incident and not params.get("thread_ts"):
                self.arrivals.append(Arrival(at=at, watch=incident.split(".", 1)[0],
                                             incident_id=incident))
            return web.json_response({"ok": True, "channel": _CHANNEL, "ts": ts,
                                      "message": {"text": params.get("text", ""), "ts": ts}})
        if method == "chat.update":
            return web.json_response({"ok": True, "channel": _CHANNEL,
                                      "ts": params.get("ts", ""), "text": params.get("text")})
        if method == "conversations.history":
            return web.json_response({"ok": True, "messages": [], "has_more": False})
        if method == "conversations.list":
            return web.json_response({"ok": True, "channels": [
                {"id": _CHANNEL, "name": "bench", "is_channel": True}],
                "response_metadata": {"next_cursor": ""}})
        return web.json_response({"ok": False, "error": "unknown_method"})
