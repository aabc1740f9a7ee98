# The README's two commands: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install demo test test-faults lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

## Run the whole system on embedded servers and verify the result.
demo: $(STAMP)
	$(BIN)/writebehind demo

## The default suite: unit tests and integration tests on real servers.
## Tests marked `slow` (longer fault and soak runs) stay out of it.
test: $(STAMP)
	$(BIN)/pytest -m "not slow" -q

## The full randomized fault suite (docs/reliability.md): WRITEBEHIND_FAULT_TRIALS per
## type (default 40), WRITEBEHIND_FAULT_SEED to reproduce, WRITEBEHIND_FAULT_REPORT=FILE for figures.
test-faults: $(STAMP)
	$(BIN)/pytest -m slow -q tests/faults

lint: $(STAMP)
	$(BIN)/ruff check writebehind tests scripts benchmarks examples
	$(BIN)/ruff format --check writebehind tests scripts benchmarks examples
	$(BIN)/mypy
	$(BIN)/hadolint Dockerfile

bench: $(STAMP)
	$(BIN)/python -m benchmarks $(if $(QUICK),--quick) $(if $(ONLY),--only $(ONLY))

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
