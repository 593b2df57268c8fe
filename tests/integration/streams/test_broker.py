"""The embedded broker: real Tansu process, real Kafka protocol, nothing left behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from kafka.admin import KafkaAdminClient

from streams.core import topics
from streams.runtime.broker import BrokerError, EmbeddedBroker, read_address_file, wait_until_ready


def _gone(pid: int, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().split()[2]
        except OSError:
            return True
        if state == "Z":
            return True
        time.sleep(0.1)
    return False


def test_starts_on_loopback_creates_topics_and_stops(tmp_path: Path) -> None:
    broker = EmbeddedBroker(partitions=3, datadir=tmp_path)
    bootstrap = broker.start()
    pid = broker.pid
    assert pid is not None
    try:
        assert bootstrap.startswith("127.0.0.1:")
        assert read_address_file(tmp_path) == bootstrap
        admin = KafkaAdminClient(bootstrap_servers=bootstrap)
        try:
            described = {t.get("name") or t["topic"]: len(t["partitions"])
                         for t in admin.describe_topics([s.name for s in topics.ALL])}
        finally:
            admin.close()
        assert described == {s.name: 3 for s in topics.ALL}
    finally:
        broker.stop()
    assert _gone(pid)
    assert read_address_file(tmp_path) is None
    broker.stop()  # idempotent


def test_stale_address_file_is_ignored(tmp_path: Path) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    (tmp_path / "broker.json").write_text(json.dumps({"pid": dead.pid,
                                                      "bootstrap": "127.0.0.1:1"}))
    assert read_address_file(tmp_path) is None


def test_unreachable_cluster_gives_a_clear_error() -> None:
    with pytest.raises(BrokerError, match=r"no Kafka broker answered at 127\.0\.0\.1:1 .*"
                                          r"ESCUCHA_KAFKA_BOOTSTRAP"):
        wait_until_ready("127.0.0.1:1", timeout=1.5)


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM])
def test_broker_dies_with_its_parent(tmp_path: Path, how: signal.Signals) -> None:
    """Even kill -9 of the escucha process must not leave a broker running."""
    script = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from streams.runtime.broker import EmbeddedBroker\n"
        f"b = EmbeddedBroker(partitions=1, datadir=Path({str(tmp_path)!r}))\n"
        "b.start()\n"
        "print('ready', flush=True)\n"
        "time.sleep(120)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None
        assert parent.stdout.readline().strip() == "ready"
        broker_pid = json.loads((tmp_path / "broker.json").read_text())["pid"]
        os.kill(parent.pid, how)
        parent.wait(10)
        assert _gone(broker_pid), "the broker outlived its parent"
    finally:
        if parent.poll() is None:
            parent.kill()


def test_existing_topics_keep_their_partitions(tmp_path: Path,
                                               caplog: pytest.LogCaptureFixture) -> None:
    from streams.runtime.broker import ensure_topics

    with EmbeddedBroker(partitions=2) as broker:
        assert ensure_topics(broker.bootstrap, partitions=2) == []
        with caplog.at_level("WARNING", logger="streams.runtime.broker"):
            ensure_topics(broker.bootstrap, partitions=6)
        assert "has 2 partitions, config says 6" in caplog.text
