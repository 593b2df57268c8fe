"""Faust's Kafka transport, changed for latency and so that a rebalance loses nothing.

- The fetch wait comes from the config (below).
- :class:`_Consumer` forgets "last offset read"; never commits past an offset that no
  stream acknowledged, nor while a partition's committed offset is unknown; commits what is
  acknowledged when partitions are revoked, before they go; hands a stream partition's
  records to the streams only once it is sought, each offset once (streams/runtime/reads.py);
  sends a partition never committed back to its earliest offset; and re-reads, once, a
  partition whose commit is stuck below a message nobody is processing
  (the hole watch, streams/runtime/holes.py).
- :class:`_FlowControl` empties the stream buffers only when flow was suspended.

Each change to the consumer and the flow control answers a way the fault suite
(tests/reliability) saw Faust lose or double mentions around a rebalance, with no error
anywhere; the hole watch is the net under whatever way is still unknown.

Faust hard-codes ``fetch_max_wait_ms=1500`` for its consumer. A broker that answers a
waiting fetch only when that wait ends, rather than when data arrives, then adds up to 1.5 s
to every hop of a quiet topic, and an alert crosses four (raw → enriched → signals →
notifications). Tansu does this: measured on these machines, an idle topic's delivery took
p50 0.19 s / max 0.56 s with 1500 ms, and p50 0.02 s / max 0.05 s with 100 ms. On Kafka
proper a fetch wakes when data arrives, so a short wait only costs a few idle fetch requests
a second. ``kafka.fetch_max_wait_ms`` sets it (default 100).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from typing import Any, Literal, cast

import faust
from aiohttp import web as aioweb
from faust.streams import _current_event
from faust.transport.drivers import aiokafka as driver
from faust.types import TP
from faust.web import View
from faust.web.drivers.aiohttp import Web as _AiohttpWeb
from mode import Service
from mode.utils.objects import cached_property
from mode.utils.queues import FlowControlEvent

from streams.core.security import HTML_HEADERS, has_control
from streams.runtime.holes import Hole, HoleWatch, holes_in, mend_for
from streams.runtime.reads import ReadOnce

__all__ = ["Access", "App", "handling"]

log = logging.getLogger(__name__)
#: Where each stream partition is read from around rebalances (seeks, commits on revoke and
#: stop, held commits), at DEBUG: ``ESCUCHA_DEBUG_LOGGERS=streams.runtime.reads``. The
#: logger of streams/runtime/reads.py, so that one switch shows the whole story.
trace = logging.getLogger("streams.runtime.reads")

#: Every private name of Faust (and of aiokafka under it) this module relies on, as
#: (dotted owner, attribute). tests/unit/streams/runtime/test_faust_contract.py fails when
#: one is missing from the installed Faust, and checks that Faust's own code still reaches
#: each override; faust-streaming is pinned to the version it was checked against.
FAUST_NAMES: tuple[tuple[str, str], ...] = (
    ("faust.transport.drivers.aiokafka.AIOKafkaConsumerThread", "_create_worker_consumer"),
    ("aiokafka.AIOKafkaConsumer", "_fetch_max_wait_ms"),
    ("aiokafka.AIOKafkaConsumer", "_subscription"),  # the fetch position, for the trace
    ("faust.transport.drivers.aiokafka.Consumer", "_new_offset"),
    ("faust.transport.drivers.aiokafka.Consumer", "_new_consumer_thread"),
    ("faust.transport.drivers.aiokafka.Consumer", "getmany"),
    ("faust.transport.drivers.aiokafka.AIOKafkaConsumerThread", "seek_to_committed"),
    ("faust.transport.drivers.aiokafka.AIOKafkaConsumerThread", "call_thread"),
    ("faust.transport.drivers.aiokafka.Consumer", "_is_changelog_tp"),
    ("faust.transport.drivers.aiokafka.Consumer", "_read_offset"),
    ("faust.transport.drivers.aiokafka.Consumer", "_committed_offset"),
    ("faust.transport.drivers.aiokafka.Consumer", "_acked"),
    ("faust.transport.drivers.aiokafka.Consumer", "_acked_index"),
    ("faust.App", "_new_transport"),
    ("faust.App", "_new_web"),
    ("faust.streams", "_current_event"),
)
#: Shortest time a hole must last before the partition is read again (streams/runtime/holes.py).
HOLE_GRACE_S = 10.0
#: Longest a rebalance waits for the stages' before-revoke work and the commit that follows.
REVOKE_COMMIT_S = 10.0


class _ConsumerThread(driver.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        wait = getattr(transport.app, "fetch_max_wait_ms", None)
        if wait is not None:
            # Read when the consumer starts its fetcher: set before then, it is the setting.
            consumer._fetch_max_wait_ms = int(wait)
        return consumer

    async def seek_to_committed(self) -> Mapping[Any, Any]:
        return await self.call_thread(self._seek_to_committed)  # type: ignore[no-any-return]

    async def _seek_to_committed(self) -> Mapping[Any, Any]:
        """aiokafka's seek_to_committed, telling the consumer first where each stream
        partition's run must begin (streams/runtime/reads.py): what was fetched before can
        then be told from what the seek reads. Runs in the consumer's thread, so the mark
        precedes the seek and every fetch after it."""
        client, reads = self._ensure_consumer(), cast(_Consumer, self.consumer)._reads
        tps = client.assignment()
        committed = {tp: await client.committed(tp) for tp in tps}
        streams = [tp for tp in tps if not self.consumer._is_changelog_tp(tp)]
        earliest = await client.beginning_offsets(streams) if streams else {}
        for tp in streams:
            # Never committed: the earliest offset (_seek_never_committed goes there); one
            # below what retention kept: the earliest too, where the fetch will start.
            start = max(committed[tp] or 0, earliest.get(tp, 0))
            trace.debug("%s-%d gen %s: committed %s, earliest %s, position %s", tp.topic,
                        tp.partition, reads.generation, committed[tp], earliest.get(tp),
                        _position(client, tp))
            reads.seeking(TP(tp.topic, tp.partition), start)
        for tp, offset in committed.items():
            if offset and offset > 0:
                client.seek(tp, offset)
        return committed


def _position(client: Any, tp: Any) -> int | None:
    """The fetch position of ``tp``, for the trace (None: not known yet)."""
    try:
        state = client._subscription.subscription.assignment.state_value(tp)
        return state.position if state is not None and state.has_valid_position else None
    except Exception:  # the trace never breaks the seek
        return None


class _NothingReadYet(dict[Any, Any]):
    """Faust's per-partition "last offset read", always unknown (see :class:`_Consumer`)."""

    def __getitem__(self, key: Any) -> None:
        return None


class _Consumer(driver.Consumer):
    """Faust's consumer, made to re-read rather than lose around a rebalance.

    Faust remembers the last offset it read per partition and, after that, (1) drops any
    message at a lower offset as already read, and (2) treats a jump to a higher offset as a
    "gap" that it commits as if processed (right only for compacted or transactional
    topics). Around a rebalance both lose data: a message fetched before the seek back to the
    committed offset can arrive after it, move "last read" ahead, and then the re-fetched
    messages below it are dropped, or the jump to it is committed. Seen in the aggregate
    test: 3 to 49 mentions never classified in 4 runs of 5, when a worker started while
    another had just left, with no error anywhere. escucha's topics are neither compacted
    nor transactional and every stage deduplicates, so "last read" is kept unknown: that
    case becomes reading a message twice.

    It also never commits past an offset that no stream acknowledged. Faust lets a commit
    step over a one-message hole at the committed offset (``min(acked) - committed > 1``:
    an off-by-one), so a message dropped there is lost for good, even to a restart.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._read_offset = _NothingReadYet()
        self._reads: ReadOnce[TP] = ReadOnce()
        self._unsought = 0  # records fetched before their partition's seek, for the log
        self._held: dict[TP, int] = {}  # per partition, the commit last traced as held

    def _new_offset(self, tp: TP) -> int | None:
        acked, committed = self._acked[tp], self._committed_offset[tp]
        if committed is None:
            # Unknown from revoke until the seek that ends recovery: Faust would commit
            # whatever run of acks comes first, past any message still unacked below it
            # (upstream issue #606). The seek sets it for every stream partition (never
            # committed ones included, _seek_never_committed), so nothing waits for long.
            return None
        if acked and min(acked) > committed:
            if trace.isEnabledFor(logging.DEBUG) and self._held.get(tp) != committed:
                self._held[tp] = committed
                trace.debug("%s-%d gen %s: commit held at %d, acked %d-%d", tp.topic,
                            tp.partition, self._reads.generation, committed, min(acked), max(acked))
            return None  # the message at `committed` is still owed an ack
        new: int | None = super()._new_offset(tp)
        return new

    def _commit_state(self, tps: set[TP]) -> str:
        """Per partition: committed offset and acked range, for the trace."""
        out = []
        for tp in sorted(tps):
            acked = self._acked.get(tp) or []
            span = f"{min(acked)}-{max(acked)} ({len(acked)})" if acked else "none"
            out.append(f"{tp.topic}-{tp.partition} committed "
                       f"{self._committed_offset.get(tp)} acked {span}")
        return "; ".join(out)

    async def on_partitions_assigned(self, assigned: set[TP], generation_id: int = 0) -> None:
        self._reads.generation = generation_id
        trace.debug("gen %s: assigned %s", generation_id,
                    sorted(f"{tp.topic}-{tp.partition}" for tp in assigned
                           if not self._is_changelog_tp(tp)))
        await super().on_partitions_assigned(assigned, generation_id)

    async def on_stop(self) -> None:
        streams = {tp for tp in self._acked if not self._is_changelog_tp(tp)}
        trace.debug("gen %s: stopping; %s", self._reads.generation, self._commit_state(streams))
        await super().on_stop()
        trace.debug("gen %s: stopped; %s", self._reads.generation, self._commit_state(streams))

    async def on_partitions_revoked(self, revoked: set[TP]) -> None:
        # Faust forgets the acks of revoked partitions first thing, and with
        # stream_wait_empty off commits nothing on revoke: every rebalance re-read up to a
        # commit interval. The stages' own before-revoke work (the aggregate snapshots and
        # their acks) runs first, then what is acknowledged is committed, then Faust goes on.
        self._reads.forget(revoked)
        streams = {tp for tp in revoked if not self._is_changelog_tp(tp)}
        trace.debug("gen %s: revoking; %s", self._reads.generation, self._commit_state(streams))
        try:
            await asyncio.wait_for(self._commit_before_revoke(revoked), REVOKE_COMMIT_S)
            trace.debug("gen %s: committed before revoke; %s", self._reads.generation,
                        self._commit_state(streams))
        except Exception as exc:  # a broker gone: the next owner re-reads a little more
            log.warning("could not commit before the rebalance (%r); the next owner of "
                        "those partitions reads again from the last commit", exc)
        await super().on_partitions_revoked(revoked)

    async def _commit_before_revoke(self, revoked: set[TP]) -> None:
        for hook in list(getattr(self.app, "before_revoke", ())):
            await hook()
        await self.commit(revoked)

    async def perform_seek(self) -> None:
        # Faust's recovery resumes the stream partitions before it seeks them to their
        # committed offsets, and they are fetched during the whole table recovery: what
        # arrives before the seek would be read, then read again from the committed offset.
        # Nothing of a stream partition reaches the streams until it is sought, and then
        # each offset once (streams/runtime/reads.py, applied in getmany).
        # (_ConsumerThread._seek_to_committed tells it where each partition goes.)
        streams = {tp for tp in self.assignment() if not self._is_changelog_tp(tp)}
        # Faust seeks from two places: the end of its recovery, and a fetch that returns
        # while the flow is stopped (Consumer.getmany), which can come first.
        trace.debug("gen %s: seeking the stream partitions to their commits (flow %s, "
                    "table recovery %s)", self._reads.generation,
                    "active" if self.flow_active else "stopped",
                    "running" if self.app.in_recovery else "not running")
        try:
            await super().perform_seek()
            # Every stream partition assigned, not only those active now: one paused for a
            # full buffer was skipped, and kept a position past what it had dropped.
            await self._seek_never_committed(streams)
        except BaseException:
            for tp in streams:  # better read twice than not at all
                self._reads.seeking(tp, None)
            raise
        if self._unsought:
            log.info("%d records fetched before their partitions were sought were left for "
                     "the seek to read once", self._unsought)
            self._unsought = 0

    async def getmany(self, timeout: float) -> AsyncIterator[tuple[TP, Any]]:  # noqa: ASYNC109 (Faust's signature)
        first_time, is_changelog = self._reads.first_time, self._is_changelog_tp
        async for tp, message in super().getmany(timeout):
            if first_time(tp, message.offset) or is_changelog(tp):
                yield tp, message
            elif not self._reads.is_sought(tp):
                self._unsought += 1

    async def _seek_never_committed(self, tps: set[TP]) -> None:
        """Faust seeks only partitions with a committed offset; one never committed keeps
        its position, past whatever was fetched and dropped before (lost, seen with an
        incident's notifications in the hand-over test). It goes back to its earliest
        offset instead, which also becomes its "committed" one so that the commit cannot
        step over a hole there (:meth:`_new_offset`) and the hole watch sees one."""
        never = [tp for tp in tps if self._committed_offset[tp] is None]
        if not never:
            return
        earliest = await self.earliest_offsets(*never)
        starts = {tp: earliest[tp] for tp in never if tp in earliest}
        for tp, offset in starts.items():
            self._committed_offset[tp] = offset
        trace.debug("gen %s: never committed, sought to the earliest: %s", self._reads.generation,
                    {f"{tp.topic}-{tp.partition}": o for tp, o in starts.items()})
        await self.seek_wait(starts)

    @Service.task
    async def _mend_holes(self) -> None:
        """Reads a partition again from a hole nobody is working on (streams/runtime/holes.py):
        whatever dropped the message, at-least-once holds without waiting for a restart."""
        watch = HoleWatch(grace_s=max(HOLE_GRACE_S, 3 * self.commit_interval))
        async for _ in self.itertimer(self.commit_interval, name="mend-holes"):
            if self.app.rebalancing or not self.flow_active:
                watch.forget()  # the rebalance seeks every partition to its commit anyway
                continue
            holes = holes_in(
                acked=self._acked, committed=self._committed_offset,
                in_flight=[(m.tp, m.offset) for m in list(self._unacked_messages)],
                assigned=self.assignment())
            for tp, hole in watch.overdue(holes).items():
                try:
                    await self._mend(tp, hole, watch)
                except Exception as exc:  # a broker gone or a rebalance begun: next round
                    log.warning("%s[%d]: could not mend offsets %d-%d yet: %r", tp.topic,
                                tp.partition, hole.start, hole.end - 1, exc)

    async def _mend(self, tp: Any, hole: Hole, watch: HoleWatch) -> None:
        earliest = (await self.earliest_offsets(tp)).get(tp, 0)
        action, offset = mend_for(hole, earliest=earliest,
                                  read_again=watch.was_read_again(tp, hole))
        count = hole.size
        if action == "expired":
            count = min(offset, hole.end) - hole.start
            log.warning("%s[%d]: offsets %d-%d were deleted by retention before they were "
                        "processed (%d lost); going on from %d", tp.topic, tp.partition,
                        hole.start, offset - 1, count, offset)
        elif action == "stuck":
            log.error("%s[%d]: offsets %d-%d are still unprocessed after being read again; "
                      "not reading them a third time (a compacted or transactional topic "
                      "leaves such gaps; otherwise a bug: `escucha replay` can feed them "
                      "again). Going on from %d", tp.topic, tp.partition, hole.start,
                      hole.end - 1, offset)
        else:
            log.warning("%s[%d]: offsets %d-%d were fetched but never processed; reading "
                        "them again", tp.topic, tp.partition, hole.start, hole.end - 1)
            watch.read_again(tp, hole)
        if action != "reread":
            self._committed_offset[tp] = offset
            self._acked[tp][:] = [o for o in self._acked[tp] if o >= offset]
            self._acked_index[tp].intersection_update(self._acked[tp])
        if action != "stuck" and offset < hole.end:
            self._reads.open(tp)  # the re-read must reach the streams
            await self.seek_wait({tp: offset})
        on_hole = getattr(self.app, "on_hole", None)  # any faust.App, not only ours
        if on_hole is not None:
            on_hole(tp.topic, action, count)

    def _new_consumer_thread(self) -> driver.AIOKafkaConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)


class _FlowControl(FlowControlEvent):
    """Faust's flow control, emptying the stream buffers only when flow was suspended.

    ``resume()`` empties every stream buffer: right when flow comes back after a rebalance
    suspended it (what is buffered is from before, and is read again from the committed
    offsets). But Faust's recovery calls it again once flow is already running: after it
    has resumed the stream partitions and sought them to their committed offsets. What
    the consumer fetched in between, up to a few hundred messages per partition, is in the
    buffers with the fetch position past it; the second ``resume()`` dropped it unacked.
    The commit then stalled below the hole (or stepped over a one-message hole, see
    :class:`_Consumer`) and the mentions were never classified: the hand-over skip that
    scenario 2 of the fault suite showed in half its runs.
    """

    def resume(self) -> None:
        if not self.is_active():
            super().resume()


class _Transport(driver.Transport):
    Consumer = _Consumer


#: How a route is protected. "public": nothing (health, metrics, the sign-in form, static
#: assets); "signed": the request proves itself (a signed link, Slack's signature); "token":
#: a bearer token; "session": a console session or a console bearer token.
Access = Literal["public", "signed", "token", "session"]


class _Web(_AiohttpWeb):
    """Faust's aiohttp web server without Faust's own views.

    Faust serves ``/table/…`` (every table's keys and values: incidents with sample mentions,
    authors, who acknowledged), ``/router/…``, statistics and an index, none of them behind
    any login. escucha serves only the routes it registers with :meth:`App.serve`."""

    default_blueprints = ()
    production_blueprints = ()
    debug_blueprints = ()
    optional_blueprints = ()


_Handler = Callable[[aioweb.Request], Awaitable[aioweb.StreamResponse]]


class App(faust.App):
    """``faust.App`` with the transport and flow control above, and a web server that
    serves only the routes escucha decided to serve (:meth:`serve`)."""

    def __init__(self, id: str, *, fetch_max_wait_ms: int | None = None,
                 **options: Any) -> None:
        self.fetch_max_wait_ms = fetch_max_wait_ms
        #: Told (topic, "reread" or "expired", messages) when the consumer mends a hole:
        #: streams/runtime/pipeline.py counts it in a metric.
        self.on_hole: Callable[[str, str, int], None] | None = None
        #: Run (in order) when partitions are about to be revoked, before what is
        #: acknowledged is committed: a stage acks there what it has stored.
        self.before_revoke: list[Callable[[], Awaitable[None]]] = []
        #: Every route path served, with how it is protected; the guard answers 404 for any
        #: other route the web server may hold.
        self.routes: dict[str, Access] = {}
        self._guarded = False
        super().__init__(id, **options)

    def serve(self, path: str, *, access: Access) -> Callable[[Any], type[View]]:
        """``app.page(path)``, with how the route is protected said where it is declared."""
        if path in self.routes:
            raise ValueError(f"route {path} is registered twice")
        self.routes[path] = access
        decorate: Callable[[Any], type[View]] = self.page(path)
        return decorate

    def _new_transport(self) -> Any:
        return _Transport(self.conf.broker_consumer, self)

    def _new_web(self) -> Any:
        return _Web(self)

    def on_webserver_init(self, web: Any) -> None:
        # Called by Faust when its web server initialises (once per start, maybe twice).
        if self._guarded:
            return
        self._guarded = True
        web.web_app.middlewares.append(self._guard)
        web.web_app.on_response_prepare.append(_security_headers)

    @aioweb.middleware
    async def _guard(self, request: aioweb.Request, handler: _Handler
                     ) -> aioweb.StreamResponse:
        # A decoded %0A in the path would otherwise reach ids, logs and Location headers.
        if has_control(request.path):
            return aioweb.json_response({"error": "control characters in the path"},
                                        status=400)
        info = request.match_info
        resource = info.route.resource if info.http_exception is None else None
        if resource is not None and resource.canonical not in self.routes:
            return aioweb.json_response({"error": "not found"}, status=404)
        return await handler(request)

    @cached_property
    def flow_control(self) -> FlowControlEvent:
        return _FlowControl(loop=self.loop)


async def _security_headers(request: aioweb.Request, response: aioweb.StreamResponse) -> None:
    """Every answer: no content sniffing. Every HTML page: a strict policy (no script, no
    framing, forms only to this server), unless the page set a stricter one itself."""
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    if (response.content_type or "").startswith("text/html"):
        for name, value in HTML_HEADERS.items():
            response.headers.setdefault(name, value)


@contextlib.contextmanager
def handling(event: Any) -> Iterator[None]:
    """Make ``event`` the one being handled, outside the stream's own loop.

    Table writes go to the changelog partition of the event being handled; Faust finds it
    through a context variable (``faust.streams._current_event``) that only its stream
    iterator sets. A task that handles events it took from a stream (deliver's lanes) sets
    it here.
    """
    token = _current_event.set(weakref.ref(event))
    try:
        yield
    finally:
        _current_event.reset(token)
