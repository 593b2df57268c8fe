"""What every source connector shares: cursor, dedup, backoff, dead letters, health, metrics.

A connector (``streams/connectors/<source>.py``) is a long-running coroutine
``run(ctx)`` that fetches from its source and hands what it got to :class:`ConnectorContext`:

- ``await ctx.emit(mentions, cursor=...)`` publishes the mentions that are new (dedup by
  (source, id), remembered across restarts), waits until the broker has them, and only then
  stores the cursor. A crash between the two re-fetches a page whose mentions are already
  remembered, so a restart neither skips nor duplicates.
- ``await ctx.reject(reason, raw)`` sends a malformed payload to the dead-letter topic with
  its reason; the connector carries on.
- ``await ctx.failed(exc)`` counts a transport error and sleeps an exponential backoff with
  full jitter, at least what the source asked for (:class:`SourceError.retry_after`:
  Retry-After or rate-limit headers). ``ctx.ok()`` after a success resets it.

:class:`ConnectorRunner` supervises the connectors: one task each, restarted with the same
backoff if it crashes, health written to ``<datadir>/connectors/<name>.json`` beside the
cursor, so ``escucha connectors`` can show it from another process.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import random
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, field_validator

from streams.connectors.publish import RecentKeys
from streams.core.http import parse_retry_after
from streams.core.records import DeadLetter, Mention

#: Why a source connector failed: its metric label (escucha_connector_errors_total{kind}).
CONNECTOR_ERROR_KINDS = ("transport", "rate_limited", "server", "malformed", "crash")

__all__ = [
    "CONNECTOR_ERROR_KINDS",
    "Backoff",
    "Connector",
    "ConnectorContext",
    "ConnectorRunner",
    "Health",
    "HealthState",
    "Sink",
    "SourceError",
    "SourceSettings",
    "read_health",
    "retry_after_seconds",
]

log = logging.getLogger(__name__)

HealthState = Literal["starting", "ok", "backing_off", "failing", "stopped"]
_PAYLOAD_LIMIT = 4096
#: Consecutive failures after which a backing-off connector is reported as failing.
_FAILING_AFTER = 5


class SourceSettings(BaseModel):
    """Fields every connector has; each source's settings extend this."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    name: str = Field(description="Unique connector name: it names the cursor file and metrics.")
    enabled: bool = Field(default=True, description="false keeps the entry but does not run it.")
    initial_backoff_s: float = Field(default=1.0, gt=0, le=600,
                                     description="First wait after an error.")
    max_backoff_s: float = Field(default=300.0, gt=0, le=86400,
                                 description="Longest wait between retries.")

    @field_validator("name")
    @classmethod
    def _slug(cls, value: str) -> str:
        if not value or len(value) > 64 or not all(c.isalnum() or c in "-_" for c in value):
            raise ValueError("use letters, digits, '-' or '_' (max 64), e.g. 'acme-news'")
        return value


class SourceError(Exception):
    """A failed fetch the connector will retry: network, 5xx, 429, a dropped stream.

    ``kind`` is one of :data:`CONNECTOR_ERROR_KINDS`; ``retry_after`` (seconds) is the least
    wait the source asked for, if it said.
    """

    def __init__(self, message: str, *, kind: str = "transport",
                 retry_after: float | None = None) -> None:
        super().__init__(message)
        self.kind = kind if kind in CONNECTOR_ERROR_KINDS else "transport"
        self.retry_after = retry_after


def retry_after_seconds(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """Seconds to wait from ``Retry-After`` (delta or HTTP date) or the rate-limit headers.

    Understands ``Retry-After``, ``x-ratelimit-reset`` as epoch seconds (X, Mastodon's ISO
    date too) and Reddit's ``x-ratelimit-reset`` as seconds left when ``remaining`` is 0.
    """
    now = time.time() if now is None else now
    lower = {k.lower(): v for k, v in headers.items()}
    if lower.get("retry-after") is not None:
        seconds = parse_retry_after(lower["retry-after"],
                                    now=datetime.fromtimestamp(now, UTC))
        if seconds is not None:
            return seconds
    remaining = lower.get("x-ratelimit-remaining") or lower.get("x-rate-limit-remaining")
    reset = lower.get("x-ratelimit-reset") or lower.get("x-rate-limit-reset")
    if reset is None or remaining is None:
        return None
    try:
        if float(remaining) >= 1:
            return None
    except ValueError:
        return None
    try:
        number = float(reset)
    except ValueError:  # Mastodon: an ISO 8601 time
        try:
            return max(0.0, datetime.fromisoformat(reset.replace("Z", "+00:00")).timestamp()
                       - now)
        except ValueError:
            return None
    # Epoch seconds (X) are large; Reddit sends seconds until the window resets.
    return max(0.0, number - now) if number > 1e9 else max(0.0, number)


class Backoff:
    """Exponential backoff with full jitter (AWS architecture blog), floored by the source.

    ``next_delay(retry_after)`` -> uniform(0, min(cap, base * 2**attempt)), but never less
    than what the source asked for; ``reset()`` after a success.
    """

    def __init__(self, *, base: float = 1.0, cap: float = 300.0,
                 rng: random.Random | None = None) -> None:
        self.base, self.cap = base, cap
        self.attempt = 0
        self._rng = rng or random.Random()

    def next_delay(self, retry_after: float | None = None) -> float:
        ceiling = min(self.cap, self.base * 2 ** min(self.attempt, 32))
        self.attempt += 1
        delay = self._rng.uniform(0, ceiling)
        if retry_after is not None:
            # The source's own word wins, even over the cap: hammering it earlier only
            # extends the ban. A day at most, so a garbage header cannot park us forever.
            delay = max(delay, min(retry_after, 86400.0))
        return delay

    def reset(self) -> None:
        self.attempt = 0


@dataclass
class Health:
    """What ``escucha connectors`` shows for one connector."""

    name: str
    source: str
    state: HealthState = "starting"
    events: int = 0
    errors: int = 0
    dead_letters: int = 0
    duplicates: int = 0
    consecutive_failures: int = 0
    last_event_at: float | None = None
    last_error: str | None = None
    last_error_at: float | None = None
    updated_at: float = field(default_factory=time.time)

    def seconds_since_last_event(self, now: float | None = None) -> float | None:
        if self.last_event_at is None:
            return None
        return max(0.0, (time.time() if now is None else now) - self.last_event_at)


class Sink(Protocol):
    """Where mentions go: :class:`streams.connectors.publish.Publisher` in production."""

    async def mention(self, mention: Mention) -> bool: ...

    async def dead_letter(self, record: DeadLetter) -> None: ...

    async def flush(self) -> None: ...


class _Metrics(Protocol):
    """The connector series of :class:`streams.runtime.metrics.Metrics` (kept narrow for tests)."""

    connector_events: Any
    connector_errors: Any
    connector_up: Any
    connector_last_event: Any
    dead_letters: Any


class _State:
    """Cursor and recently seen ids of one connector, in one JSON file, replaced atomically."""

    def __init__(self, path: Path, *, seen_size: int) -> None:
        self.path = path
        self.cursor: Any = None
        self.seen = RecentKeys(seen_size)
        self.health: dict[str, Any] = {}
        if path.exists():
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                # A corrupt state file must not stop ingestion; say so and start over.
                log.error("connector state %s unreadable (%s); starting without a cursor",
                          path, exc)
                data = {}
            self.cursor = data.get("cursor")
            self.seen = RecentKeys(seen_size, (str(k) for k in data.get("seen", [])))
            self.health = data.get("health") or {}

    def known(self, key: str) -> bool:
        return key in self.seen

    def remember(self, key: str) -> bool:
        """True if ``key`` is new (and now remembered)."""
        return self.seen.add(key)

    def save(self, health: Health) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        data = {"cursor": self.cursor, "seen": list(self.seen), "health": asdict(health)}
        with tmp.open("w", encoding="utf-8") as out:
            json.dump(data, out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, self.path)


_UNCHANGED: Any = object()


class ConnectorContext:
    """One connector's handle on the pipeline; see the module docstring."""

    def __init__(self, *, name: str, source: str, sink: Sink, datadir: Path,
                 metrics: _Metrics | None = None, backoff: Backoff | None = None,
                 seen_size: int = 20_000, terms: Sequence[str] = (),
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self.name = name
        self.source = source
        self.terms = list(terms)
        """Every positive term of every watch: a prefilter or search query for the source."""
        self._sink = sink
        self._metrics = metrics
        self._state = _State(datadir / "connectors" / f"{name}.json", seen_size=seen_size)
        self.backoff = backoff or Backoff()
        self.health = Health(name=name, source=source)
        for key in ("events", "errors", "dead_letters", "duplicates", "last_event_at"):
            if key in self._state.health:
                setattr(self.health, key, self._state.health[key])
        self._sleep = sleep
        self._last_save = 0.0

    @property
    def cursor(self) -> Any:
        """The cursor stored by the last successful :meth:`emit`, or None on a first run."""
        return self._state.cursor

    async def emit(self, mentions: Iterable[Mention], *, cursor: Any = _UNCHANGED) -> int:
        """Publish the new ones, wait for the broker, then store ``cursor``; count published."""
        fresh: dict[str, Mention] = {}
        for mention in mentions:
            if mention.key in fresh or self._state.known(mention.key):
                self.health.duplicates += 1
            else:
                fresh[mention.key] = mention
        sent = 0
        for mention in fresh.values():
            if await self._sink.mention(mention):
                sent += 1
            else:
                self.health.duplicates += 1
        if sent:
            await self._sink.flush()
        # Remembered only once the broker has them: a failed flush must not turn the
        # re-fetch after a restart into "duplicates" that were never published.
        for key in fresh:
            self._state.remember(key)
        if sent:
            now = time.time()
            self.health.events += sent
            self.health.last_event_at = now
            if self._metrics is not None:
                self._metrics.connector_events.labels(self.name).inc(sent)
                self._metrics.connector_last_event.labels(self.name).set(now)
        if cursor is not _UNCHANGED:
            self._state.cursor = cursor
        if sent or cursor is not _UNCHANGED:
            self._save()
        return sent

    async def reject(self, reason: str, raw: bytes | str, *, origin: str = "") -> None:
        """Send a payload the connector cannot use to the dead-letter topic, with why."""
        payload = raw[:_PAYLOAD_LIMIT].decode("utf-8", "backslashreplace") \
            if isinstance(raw, bytes) else raw[:_PAYLOAD_LIMIT]
        record = DeadLetter(stage="ingest", reason=f"{self.name}: {reason}"[:2000],
                            payload=payload, origin=origin or self.name, at=datetime.now(UTC))
        log.warning("dead letter from connector %s: %s", self.name, reason)
        self.health.dead_letters += 1
        if self._metrics is not None:
            self._metrics.connector_errors.labels(self.name, "malformed").inc()
            self._metrics.dead_letters.labels("ingest").inc()
        await self._sink.dead_letter(record)
        await self._sink.flush()

    def ok(self) -> None:
        """A fetch succeeded: reset the backoff and report healthy."""
        self.backoff.reset()
        self.health.consecutive_failures = 0
        self._set_state("ok")

    async def failed(self, exc: BaseException) -> float:
        """Count the error, sleep the backoff (at least the source's Retry-After); the wait."""
        kind = exc.kind if isinstance(exc, SourceError) else "transport"
        retry_after = exc.retry_after if isinstance(exc, SourceError) else None
        delay = self.backoff.next_delay(retry_after)
        self.health.errors += 1
        self.health.consecutive_failures += 1
        self.health.last_error = f"{type(exc).__name__}: {exc}"[:500]
        self.health.last_error_at = time.time()
        if self._metrics is not None:
            self._metrics.connector_errors.labels(self.name, kind).inc()
        self._set_state("failing" if self.health.consecutive_failures >= _FAILING_AFTER
                        else "backing_off")
        log.warning("connector %s: %s; retrying in %.1fs", self.name, self.health.last_error,
                    delay)
        self._save()
        await self._sleep(delay)
        return delay

    def _set_state(self, state: HealthState) -> None:
        self.health.state = state
        if self._metrics is not None:
            self._metrics.connector_up.labels(self.name).set(1 if state == "ok" else 0)

    def _save(self) -> None:
        self.health.updated_at = time.time()
        self._last_save = self.health.updated_at
        try:
            self._state.save(self.health)
        except OSError as exc:
            log.error("connector %s: cannot write %s: %s", self.name, self._state.path, exc)

    def heartbeat(self) -> None:
        """Write health now and then even when nothing arrives (quiet sources are not dead)."""
        if time.time() - self._last_save >= 5.0:
            self._save()


class Connector(Protocol):
    """One configured source. ``run`` returns only when cancelled (or the source is finite)."""

    name: str
    source: str

    @property
    def settings(self) -> SourceSettings:
        """Read-only here, so a connector may declare its own settings subclass."""
        ...

    async def run(self, ctx: ConnectorContext) -> None: ...


class ConnectorRunner:
    """Runs connectors as supervised tasks: a crash is logged, counted and retried."""

    def __init__(self, connectors: Sequence[Connector], *, sink: Sink, datadir: Path,
                 metrics: _Metrics | None = None, terms: Sequence[str] = ()) -> None:
        self.contexts = {
            c.name: ConnectorContext(
                name=c.name, source=c.source, sink=sink, datadir=datadir, metrics=metrics,
                terms=terms, backoff=Backoff(base=c.settings.initial_backoff_s,
                                             cap=c.settings.max_backoff_s))
            for c in connectors
        }
        self.connectors = list(connectors)
        self._tasks: list[asyncio.Task[None]] = []

    async def run(self) -> None:
        """Run every connector until cancelled."""
        self._tasks = [asyncio.create_task(self._supervise(c), name=f"connector:{c.name}")
                       for c in self.connectors]
        try:
            await asyncio.gather(*self._tasks)
        finally:
            for task in self._tasks:
                task.cancel()
            for task in self._tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    async def _supervise(self, connector: Connector) -> None:
        ctx = self.contexts[connector.name]
        beat = asyncio.create_task(self._beat(ctx))
        try:
            while True:
                try:
                    await connector.run(ctx)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # a connector's bug must not stop the others
                    log.exception("connector %s crashed; restarting", connector.name)
                    err = SourceError(f"crashed: {exc}", kind="crash")
                    await ctx.failed(err)
                    continue
                log.info("connector %s finished", connector.name)
                ctx.health.state = "stopped"
                ctx.heartbeat()
                return
        finally:
            beat.cancel()
            ctx.health.state = "stopped"
            ctx._save()

    @staticmethod
    async def _beat(ctx: ConnectorContext) -> None:
        while True:
            await asyncio.sleep(5.0)
            ctx.heartbeat()


def read_health(datadir: Path, name: str) -> Health | None:
    """The health a connector last wrote, or None if it never ran here."""
    path = datadir / "connectors" / f"{name}.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8")).get("health") or {}
    except (OSError, ValueError):
        return None
    known = {f for f in Health.__dataclass_fields__}
    try:
        return Health(**{k: v for k, v in data.items() if k in known})
    except TypeError:
        return None
