"""Every route the web server holds was decided by escucha, and each non-public one refuses a
request without credentials. Built in-process: the real app's aiohttp server on port 0."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest_asyncio
from aiohttp.test_utils import TestServer

from streams.config.settings import Settings
from streams.wiring import build_worker
from tests.fakes.pagerduty import sign_webhook, webhook_event
from tests.support.secured import PAGERDUTY_SECRET, secured_sections

#: The only routes anyone may call without a credential. Adding one is a decision: say it here.
PUBLIC = {"/healthz", "/readyz", "/metrics", "/console/login", "/console/static/{name}"}
#: Public in the sense of "no login", each proving itself: a signed link, Slack's or
#: PagerDuty's signature.
SIGNED = {"/a/{token}", "/slack/actions", "/pagerduty/webhook"}
_SAMPLE = {"incident_id": "acme.0123456789abcdef", "action": "ack", "token": "x.y",
           "silence_id": "s-0123456789abcdef", "name": "console.css", "key": "x:1"}


@pytest_asyncio.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[str, set[tuple[str, str]], dict]]:
    settings = Settings(**secured_sections(tmp_path, port=6066, bootstrap="127.0.0.1:9"))
    pipeline = build_worker(settings, bootstrap="127.0.0.1:9")
    web = pipeline.app.web
    web.init_server()  # what the worker does before it serves: blueprints, our guard
    routes = {(r.method, r.resource.canonical) for r in web.web_app.router.routes()
              if r.resource is not None}
    server = TestServer(web.web_app, host="127.0.0.1", port=0)
    await server.start_server()
    try:
        yield f"http://127.0.0.1:{server.port}", routes, dict(pipeline.app.routes)
    finally:
        await server.close()


def _url(template: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: _SAMPLE[m.group(1)], template)


async def test_every_route_is_decided_and_refuses_without_credentials(
        served: tuple[str, set[tuple[str, str]], dict]) -> None:
    base, routes, decided = served
    paths = {path for _, path in routes}
    # Nothing is served that escucha did not register with its access (Faust's /table/,
    # /router/, /stats/ and index served incidents and per-author counts to anyone).
    assert paths - set(decided) == set(), "served without a decision"
    assert {p for p, a in decided.items() if a == "public"} == PUBLIC
    assert {p for p, a in decided.items() if a == "signed"} == SIGNED
    assert paths == set(decided)
    async with aiohttp.ClientSession() as http:
        for method, path in sorted(routes):
            if decided[path] == "public":
                continue
            async with http.request(method, base + _url(path), allow_redirects=False,
                                    data=b"{}" if method == "POST" else None) as resp:
                status, location = resp.status, resp.headers.get("Location", "")
            if method == "HEAD" and status == 405:
                continue  # Faust adds HEAD to every view; on a POST-only one it is refused
            elif decided[path] == "session" and method in ("GET", "HEAD") \
                    and path != "/console/events":
                assert status == 303 and location.startswith("/console/login"), (method, path)
            else:
                assert status in (401, 403), (method, path, status)


async def test_faust_views_are_not_served(served: tuple[str, set[tuple[str, str]], dict]
                                          ) -> None:
    base, _, _ = served
    async with aiohttp.ClientSession() as http:
        for path in ("/table/", "/table/escucha.incidents/acme.0123456789abcdef/",
                     "/table/escucha.detect-state/acme/", "/router/", "/stats/", "/",
                     "/graph/", "/performance/"):
            async with http.get(base + path) as resp:
                assert resp.status == 404, path


async def test_every_answer_carries_security_headers(
        served: tuple[str, set[tuple[str, str]], dict]) -> None:
    base, _, _ = served
    async with aiohttp.ClientSession() as http:
        for path in ("/console/login", "/a/not.valid", "/healthz", "/nothing-here"):
            async with http.get(base + path) as resp:
                assert resp.headers["X-Content-Type-Options"] == "nosniff", path
                if resp.content_type == "text/html":
                    csp = resp.headers["Content-Security-Policy"]
                    assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp
                    assert "unsafe-inline" not in csp
        async with http.get(base + "/api/incidents/acme.0123456789abcdef%0A/ack") as resp:
            assert resp.status == 400  # a control character never reaches a handler



async def test_pagerduty_webhooks_are_refused_until_a_secret_is_set(tmp_path: Path) -> None:
    sections = secured_sections(tmp_path, port=6066, bootstrap="127.0.0.1:9")
    sections["notifiers"] = {"pagerduty": {"services": {}}}  # paging out, nothing coming in
    web = build_worker(Settings(**sections), bootstrap="127.0.0.1:9").app.web
    web.init_server()
    server = TestServer(web.web_app, host="127.0.0.1", port=0)
    await server.start_server()
    body = json.dumps(webhook_event("incident.acknowledged",
                                    incident_key="acme.0123456789abcdef")).encode()
    try:
        async with aiohttp.ClientSession() as http, http.post(
                f"http://127.0.0.1:{server.port}/pagerduty/webhook", data=body,
                headers=sign_webhook(body, [PAGERDUTY_SECRET])) as resp:
            assert (resp.status, await resp.json()) == (401, {"error": "not configured"})
    finally:
        await server.close()


async def test_signed_out_pages_speak_the_browsers_language(
        served: tuple[str, set[tuple[str, str]], dict]) -> None:
    base, _, _ = served
    spanish = {"Accept-Language": "es-MX,es;q=0.9,en;q=0.8"}
    async with aiohttp.ClientSession() as http:
        async with http.get(base + "/console/login", headers=spanish) as resp:
            assert "<h1>Iniciar sesión</h1>" in await resp.text()
        async with http.get(base + "/console/login",
                            headers={"Accept-Language": "en-GB,es;q=0.5"}) as resp:
            assert "<h1>Sign in</h1>" in await resp.text()
        # A sign-in without its form's nonce: refused, in the browser's language.
        async with http.post(base + "/console/login", data={"token": "x"},
                             headers=spanish) as resp:
            assert resp.status == 403
            assert "El formulario ha caducado; vuelve a intentarlo." in await resp.text()
