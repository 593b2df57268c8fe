"""The bench's processes: ``escucha worker`` children, and their CPU and memory from /proc."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Worker", "batch_figures", "family", "family_cpu_s", "family_peak_rss_mb",
           "free_port", "proc_cpu_s", "proc_peak_rss_mb"]


def proc_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def family(pid: int) -> list[int]:
    """``pid`` and its descendants (a worker and its model process)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        for task in Path(f"/proc/{p}/task").glob("*/children"):
            try:
                todo += [int(c) for c in task.read_text().split()]
            except OSError:  # the task ended meanwhile
                continue
    return out


def family_cpu_s(pid: int) -> float:
    total = 0.0
    for p in family(pid):
        try:
            total += proc_cpu_s(p)
        except OSError:
            continue
    return total


def family_peak_rss_mb(pid: int) -> float:
    total = 0.0
    for p in family(pid):
        try:
            total += proc_peak_rss_mb(p)
        except OSError:
            continue
    return round(total, 1)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Worker:
    """``escucha worker`` as its own process, on the bench's broker."""

    config: Path
    bootstrap: str
    log: Path
    datadir: Path  # one each: tables, secrets and the console token are per worker
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0

    def start(self) -> None:
        env = {**os.environ, "ESCUCHA_KAFKA_BOOTSTRAP": self.bootstrap,
               "ESCUCHA_WEB_PORT": str(self.port), "ESCUCHA_DATADIR": str(self.datadir)}
        self.started_at = time.time()
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "streams.cli.main", "worker", "--config", str(self.config)],
                env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/readyz", timeout=2):
                return True
        except OSError:
            return False

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def tail(self) -> str:
        try:
            return self.log.read_text(errors="replace")[-2000:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


def batch_figures(port: int) -> dict[str, float]:
    """The worker's own classify counters: model calls, texts and seconds in them."""
    wanted = {"escucha_classify_batch_size_sum": "texts",
              "escucha_classify_batch_size_count": "calls",
              "escucha_classify_batch_seconds_sum": "seconds"}
    out = dict.fromkeys(wanted.values(), 0.0)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
            text = resp.read().decode()
    except OSError:
        return out
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name in wanted:
            out[wanted[name]] = float(value)
    return out
