"""A worker that runs only the deliver agent, its rate limit's clock shifted.

``python -m tests.support.deliver_worker CONFIG SHIFT_S`` (the broker from
``ESCUCHA_KAFKA_BOOTSTRAP``, the web port from ``ESCUCHA_WEB_PORT``)

The rate limit counts sends per 60 s of wall clock; a test that restarts a worker inside that
minute starts the next one with its clock ``SHIFT_S`` ahead, so the window it recovered frees
up seconds later instead of a minute later. Digests are tried every second.
"""

from __future__ import annotations

import sys
import time

import faust

from agents.deliver import agent as deliver
from streams.config.settings import load_settings
from streams.runtime.logs import setup_logging
from streams.wiring import build_worker


def main(config: str, shift_s: float) -> None:
    setup_logging("warning")
    settings = load_settings(config)
    assert settings.kafka.bootstrap, "set ESCUCHA_KAFKA_BOOTSTRAP"
    pipeline = build_worker(settings, bootstrap=settings.kafka.bootstrap, install_agents=False)
    deliver.install(pipeline, clock=lambda: time.time() + shift_s, digest_every_s=1.0)
    print("deliver worker starting", flush=True)
    faust.Worker(pipeline.app, loglevel="warning", quiet=True,
                 override_logging=False).execute_from_commandline()


if __name__ == "__main__":
    main(sys.argv[1], float(sys.argv[2]))
