"""`escucha run`: one command brings up broker, worker, web and demo; Ctrl-C stops it all."""

from __future__ import annotations

import json
import os
import time
import urllib.request
from pathlib import Path

from tests.support.procs import EscuchaProcess, free_port, metric_value


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead for our purposes; it only waits for its parent to reap it.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def test_run_shows_demo_incident_then_stops_cleanly(tmp_path: Path) -> None:
    port = free_port()
    datadir = tmp_path / "var"
    # No config at all (the test runs from the repo, which has no escucha.yaml): the
    # newcomer's first run.
    env = {"ESCUCHA_WEB_PORT": str(port), "ESCUCHA_DATADIR": str(datadir)}
    proc = EscuchaProcess(["run"], env=env, log=tmp_path / "run.log")
    try:
        banner = proc.wait_for_output(r"embedded broker \(Tansu\) on 127\.0\.0\.1:(\d+)",
                                      timeout=60)
        broker_port = int(banner.group(1))
        broker_pid = int(json.loads((datadir / "broker.json").read_text())["pid"])
        # The web server comes up with the worker, after the broker banner: poll for it.
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as r:
                    assert r.status == 200
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        proc.wait_for_output(r"=== INCIDENT [\w.]+ \[(WARNING|CRITICAL)\] Acme", timeout=90)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
            metrics = r.read().decode()
        assert "escucha_incidents_opened_total" in metrics
        # Every signal so far left detection within 10 s of its trigger reaching it.
        path = {"path": "enriched_to_signal"}
        fired = metric_value(port, "escucha_end_to_end_latency_seconds_count", path)
        in_time = metric_value(port, "escucha_end_to_end_latency_seconds_bucket",
                               {**path, "le": "10.0"})
        assert fired and fired >= 1 and in_time == fired, (fired, in_time)
        # With no account configured, the console takes the generated token (whose path, not
        # value, the banner gives) and lists the demo incident.
        assert "console-token" in proc.output()
        token = (datadir / "console-token").read_text().strip()
        assert token not in proc.output()
        req = urllib.request.Request(f"http://127.0.0.1:{port}/console",
                                     headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(req, timeout=10) as r:
            assert "Acme" in r.read().decode()
        assert proc.interrupt(timeout=30) == 0, proc.output()[-3000:]
        assert not _alive(broker_pid), f"broker on port {broker_port} outlived escucha run"
        assert not (datadir / "broker.json").exists()
    finally:
        proc.close()
