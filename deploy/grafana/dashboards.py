"""escucha's Grafana dashboards, generated from code and committed as JSON.

    python deploy/grafana/dashboards.py          # (re)write deploy/grafana/dashboards/*.json
    python deploy/grafana/dashboards.py --check  # exit 1, listing stale files, if any differ

The committed JSON is what Grafana provisions (see provisioning/dashboards/escucha.yaml); the
code is the source of truth, so edit it and regenerate. The boards live in escucha_boards/
(promql.py and panels.py the helpers, one module per group of boards); this script builds and
writes them. Every query uses only the series a worker exposes on /metrics
(streams/runtime/metrics.py and Faust's Prometheus sensor).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

# deploy/ is not an installed package: run as a script or loaded by path (the tests), this
# file finds its boards beside it.
_HERE = Path(__file__).resolve().parent
if str(_HERE) not in sys.path:
    sys.path.insert(0, str(_HERE))

from escucha_boards import flow, incidents, store  # noqa: E402

__all__ = ["OUT_DIR", "UIDS", "build_all", "metric_names", "render", "main"]

OUT_DIR = _HERE / "dashboards"
UIDS = ("escucha-pipeline", "escucha-connectors", "escucha-model", "escucha-incidents",
        "escucha-kafka", "escucha-store")
_METRIC = re.compile(r"escucha_[a-z0-9_]+")


# Public surface -------------------------------------------------------------------------------

def build_all() -> dict[str, dict[str, Any]]:
    """Every dashboard, uid → Grafana dashboard JSON (as plain dicts)."""
    built = [flow.pipeline(), flow.connectors(), flow.model(), incidents.incidents(),
             flow.kafka(), store.store()]
    return {d["uid"]: d for d in built}


def _walk(panels: Sequence[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _walk(panel.get("panels") or [])


def metric_names(dashboard_json: dict[str, Any]) -> set[str]:
    """Every `escucha_*` series named in the dashboard's panel queries, suffixes as written."""
    names: set[str] = set()
    for panel in _walk(dashboard_json.get("panels") or []):
        for target in panel.get("targets") or []:
            names.update(_METRIC.findall(target.get("expr") or ""))
    return names


def render(dashboard_json: dict[str, Any]) -> str:
    """The committed form: sorted keys, two-space indent, trailing newline."""
    return json.dumps(dashboard_json, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def _stale(out_dir: Path, rendered: dict[Path, str]) -> list[Path]:
    differ = [p for p, text in rendered.items()
              if not p.is_file() or p.read_text(encoding="utf-8") != text]
    extra = [p for p in out_dir.glob("*.json") if p not in rendered] if out_dir.is_dir() else []
    return sorted(differ + extra)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 listing files that differ from the code")
    parser.add_argument("--out", type=Path, default=OUT_DIR, help="output folder")
    args = parser.parse_args(argv)
    out_dir: Path = args.out
    rendered = {out_dir / f"{uid}.json": render(d) for uid, d in build_all().items()}
    if args.check:
        stale = _stale(out_dir, rendered)
        for path in stale:
            print(f"stale: {path} (run: python deploy/grafana/dashboards.py)", file=sys.stderr)
        return 1 if stale else 0
    out_dir.mkdir(parents=True, exist_ok=True)
    for path, text in rendered.items():
        path.write_text(text, encoding="utf-8")
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
