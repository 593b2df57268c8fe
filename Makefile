# Two commands for a newcomer: `make run` and `make test`. Both bootstrap .venv first.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The CPU build of torch; an unpinned torch pulls several GB of CUDA wheels.
TORCH := torch==2.13.0

.PHONY: install run test test-slow lint clean system-deps dashboards

$(BIN)/python:
	$(PY) -m venv $(VENV)

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install --disable-pip-version-check -q $(TORCH)
	$(BIN)/pip install --disable-pip-version-check -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# Debian packages the test suite drives for real (none are needed by `make run`): chromium
# for the console's browser tests (Playwright drives it; no browser is downloaded);
# postgresql for the mention store's tests, which start their own server (tests/support).
system-deps:
	@bash .ci/system-deps.sh docker-compose prometheus chromium fonts-dejavu-core postgresql

run: install
	$(BIN)/escucha run

lint: install
	$(BIN)/ruff check streams agents models notifiers tests deploy
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache
	$(BIN)/python deploy/grafana/dashboards.py --check

# Parallel: most of the suite waits on worker processes, brokers and outages; the fault tests
# keep to one xdist worker (tests/conftest.py). TEST_JOBS=0 runs it all in one process.
TEST_JOBS ?= 3

# The tests' model cache (tests/conftest.py) gets the default runtime's ONNX export and the
# bfloat16 trace once, up front: otherwise the first worker or parity test that needs one
# makes it (the export: a minute) while it waits.
test: install system-deps lint
	ESCUCHA_MODEL__CACHE_DIR=var/test-models $(BIN)/escucha model prepare
	ESCUCHA_MODEL__CACHE_DIR=var/test-models ESCUCHA_MODEL__RUNTIME=torch-bf16 $(BIN)/escucha model prepare
	ESCUCHA_MODEL__CACHE_DIR=var/test-models ESCUCHA_MODEL__RUNTIME=onnx-checked $(BIN)/escucha model prepare
	$(BIN)/pytest -q -m "not slow" -n $(TEST_JOBS) --dist loadgroup --durations=25

test-slow: install system-deps
	$(BIN)/pytest -q -m slow

# Regenerate deploy/grafana/dashboards/*.json after changing deploy/grafana/dashboards.py or escucha_boards/.
dashboards: install
	$(BIN)/python deploy/grafana/dashboards.py

clean:
	rm -rf var .mypy_cache .ruff_cache
