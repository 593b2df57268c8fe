"""Run escucha commands as real child processes, and always clean them up."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import yaml

__all__ = ["EscuchaProcess", "free_port", "metric_value", "write_config"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_config(path: Path, **sections: Any) -> Path:
    path.write_text(yaml.safe_dump(sections, sort_keys=False))
    return path


class EscuchaProcess:
    """``python -m streams.cli ARGS`` with its output in a file; killed on close."""

    def __init__(self, args: list[str], *, env: dict[str, str], log: Path) -> None:
        self.log = log
        self._fh = log.open("ab")
        full_env = {**os.environ, **env, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "streams.cli", *args], env=full_env,
            stdout=self._fh, stderr=subprocess.STDOUT, start_new_session=True,
        )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for_output(self, pattern: str, *, timeout: float) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        rx = re.compile(pattern)
        while time.monotonic() < deadline:
            found = rx.search(self.output())
            if found:
                return found
            if self.proc.poll() is not None:
                raise AssertionError(f"process exited ({self.proc.returncode}):\n"
                                     f"{self.output()[-4000:]}")
            time.sleep(0.25)
        raise AssertionError(f"no {pattern!r} within {timeout}s:\n{self.output()[-4000:]}")

    def wait_serving(self, port: int, *, path: str = "/healthz", timeout: float = 120) -> None:
        """Until the worker's web server answers ``path`` with 200 (or the process exits)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=1):
                    return
            except OSError:
                if self.proc.poll() is not None:
                    raise AssertionError(self.output()[-3000:]) from None
                time.sleep(0.5)
        raise AssertionError(f"the worker did not serve {path}:\n{self.output()[-3000:]}")

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def interrupt(self, *, timeout: float = 30) -> int:
        self.proc.send_signal(signal.SIGINT)
        return self.proc.wait(timeout)

    def close(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        self._fh.close()


def metric_value(port: int, name: str, labels: dict[str, str] | None = None) -> float | None:
    """One sample from a worker's /metrics, or None if absent or unreachable."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as resp:
            text = resp.read().decode()
    except OSError:
        return None
    for line in text.splitlines():
        if not line.startswith(name):
            continue
        head, _, value = line.rpartition(" ")
        if labels and not all(f'{k}="{v}"' in head for k, v in labels.items()):
            continue
        if head.split("{")[0] != name:
            continue
        return float(value)
    return None
