# The two commands every new user needs: `make run` and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test lint format migrate seed clean browsers bench chaos fuzz

install: $(STAMP)

# Locked versions first (every machine gets the same), then the project itself without deps.
$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet --require-virtualenv -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

migrate: install
	DEBUG=$${DEBUG:-1} $(BIN)/emailsync migrate --noinput

seed: migrate
	DEBUG=$${DEBUG:-1} $(BIN)/emailsync seed_demo

run: seed
	DEBUG=$${DEBUG:-1} $(BIN)/emailsync serve

test: install
	EMAILSYNC_TESTING=1 $(BIN)/pytest $(PYTEST_ARGS)

# The benchmark suite: every figure with its in-run baseline, ratio and target, in one table.
bench: install
	$(BIN)/python bench/suite.py $(BENCH_ARGS)

# Fault scenarios at full length (the fast versions run in `make test`).
chaos: install
	EMAILSYNC_TESTING=1 $(BIN)/python -m tests.chaos.run $(CHAOS_ARGS)

# The whole fuzz corpus (10,000+ messages) through a real listener (a subset runs in `make test`).
fuzz: install
	EMAILSYNC_TESTING=1 $(BIN)/python -m tests.fuzz.run $(FUZZ_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) var/*.sqlite3* var/static
