"""Ops' view of a running worker: /readyz, /metrics, a real Prometheus, the shipped rules.

Real parts: the embedded broker, `escucha worker` and `escucha simulate` as processes, and
Debian's `prometheus` binary scraping the worker on loopback (installed by the bootstrap).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import yaml

from streams.runtime.broker import EmbeddedBroker
from tests.support.procs import EscuchaProcess, free_port

ROOT = Path(__file__).resolve().parents[3]
RULES = ROOT / "deploy" / "prometheus" / "rules" / "escucha.yml"
DASHBOARDS = ROOT / "deploy" / "grafana" / "dashboards"
_NAME = re.compile(r"\bescucha_[a-z0-9_]+")


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError:
        return 0, ""


def _wait(predicate: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def _used_names() -> dict[str, set[str]]:
    """Every escucha metric name the shipped rules and dashboards query, by file."""
    used: dict[str, set[str]] = {}
    rules = yaml.safe_load(RULES.read_text())
    used[RULES.name] = {n for g in rules["groups"] for r in g["rules"]
                        for n in _NAME.findall(r["expr"])}
    for path in sorted(DASHBOARDS.glob("*.json")):
        text = json.dumps([p.get("targets") for p in _panels(json.loads(path.read_text()))])
        used[path.name] = set(_NAME.findall(text))
    return used


def _panels(dashboard: dict) -> list[dict]:  # type: ignore[type-arg]
    out = []
    for panel in dashboard.get("panels", []):
        out.append(panel)
        out.extend(panel.get("panels", []))
    for row in dashboard.get("rows", []):
        out.extend(row.get("panels", []))
    return out


def test_readiness_metrics_and_a_real_prometheus(tmp_path: Path, broker: EmbeddedBroker) -> None:
    prometheus_bin = shutil.which("prometheus")
    assert prometheus_bin, "Debian's prometheus is missing: run `make system-deps`"
    port = free_port()
    env = {"ESCUCHA_KAFKA_BOOTSTRAP": broker.bootstrap, "ESCUCHA_WEB_PORT": str(port),
           "ESCUCHA_DATADIR": str(tmp_path / "var")}
    worker = EscuchaProcess(["worker", "--config", str(ROOT / "escucha.example.yaml")],
                            env=env, log=tmp_path / "worker.log")
    prometheus: subprocess.Popen[bytes] | None = None
    try:
        # Not ready until partitions and model are there, then ready.
        statuses: list[int] = []

        def ready() -> bool:
            status, _ = _get(f"http://127.0.0.1:{port}/readyz")
            if status:
                statuses.append(status)
            return status == 200

        _wait(ready, 90, "/readyz to pass")
        assert statuses[0] == 503, statuses[:5]

        prom_port = free_port()
        rules_dir = tmp_path / "rules"
        shutil.copytree(RULES.parent, rules_dir)
        config = tmp_path / "prometheus.yml"
        config.write_text(yaml.safe_dump({
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(rules_dir / "*.yml")],
            "scrape_configs": [{"job_name": "escucha",
                                "static_configs": [{"targets": [f"127.0.0.1:{port}"]}]}],
        }))
        prometheus = subprocess.Popen(
            [prometheus_bin, f"--config.file={config}",
             f"--storage.tsdb.path={tmp_path / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{prom_port}"],
            stdout=(tmp_path / "prometheus.log").open("wb"), stderr=subprocess.STDOUT)

        burst = subprocess.run(
            [sys.executable, "-m", "streams.cli", "simulate", "--minutes", "4", "--rate", "30",
             "--config", str(ROOT / "escucha.example.yaml")],
            env={**os.environ, **env}, capture_output=True, text=True,
            timeout=120)
        assert burst.returncode == 0, burst.stderr[-2000:]

        def scraped() -> bool:
            q = urllib.parse.quote("sum(escucha_mentions_in_total) > 100")
            status, body = _get(f"http://127.0.0.1:{prom_port}/api/v1/query?query={q}")
            return status == 200 and bool(json.loads(body)["data"]["result"])

        _wait(scraped, 120, "Prometheus to see the burst")
        _, body = _get(f"http://127.0.0.1:{prom_port}/api/v1/rules")
        names = {r["name"] for g in json.loads(body)["data"]["groups"] for r in g["rules"]}
        assert {"EscuchaPipelineStalled", "EscuchaNotifierFailing",
                "EscuchaIncidentUnacknowledged"} <= names

        # Every metric the rules and dashboards query is one the worker really exposes.
        _, text = _get(f"http://127.0.0.1:{port}/metrics")
        exposed = {line.split("{")[0].split(" ")[0] for line in text.splitlines()
                   if line.startswith("escucha_")}
        used = _used_names()
        assert len(used) >= 7, f"expected the rules and six dashboards, found {sorted(used)}"
        missing = {f: sorted(n - exposed) for f, n in used.items() if n - exposed}
        assert not missing, f"queried but never exposed: {missing}"

        # The broker goes away: not ready any more.
        broker.stop()
        _wait(lambda: _get(f"http://127.0.0.1:{port}/readyz")[0] == 503, 30,
              "/readyz to fail without a broker")
    finally:
        if prometheus is not None:
            prometheus.terminate()
            try:
                prometheus.wait(10)
            except subprocess.TimeoutExpired:
                prometheus.kill()
        worker.close()


@pytest.mark.parametrize("args", [["check", "rules", str(RULES)],
                                  ["check", "config", str(RULES.parents[1] / "prometheus.yml")],
                                  # The alerts evaluated on series (escucha.test.yml).
                                  ["test", "rules",
                                   str(RULES.parents[1] / "tests" / "escucha.test.yml")]])
def test_promtool_accepts_the_shipped_files(args: list[str]) -> None:
    promtool = shutil.which("promtool")
    assert promtool, "Debian's prometheus (promtool) is missing: run `make system-deps`"
    result = subprocess.run([promtool, *args], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
