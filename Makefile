# The two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha256sum | cut -c1-16)

.PHONY: run test lint typecheck pytest sandbox-image bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

## run: the service on its embedded defaults (SQLite and files in ./data, workers, the Docker sandbox)
run: $(STAMP) sandbox-image
	$(BIN)/grader serve

## test: ruff, mypy and the whole pytest suite
test: lint typecheck pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP) sandbox-image
	bash scripts/ensure-chromium
	bash scripts/ensure-compose-plugin
	$(BIN)/pytest -q

## sandbox-image: build (or find) the Docker image student code runs in; minutes the first time
sandbox-image: $(STAMP)
	$(BIN)/python -m grader.sandbox_client.images

## bench: grading latency against its floors (local and Docker), the pool, throughput with 2 workers; then a
##   deadline rush through the API of a running grader serve (200 submissions, 50 clients) against Grader.grade;
##   then a 500-student assignment's dashboard page against the home page
bench: $(STAMP) sandbox-image
	$(BIN)/python benchmarks/bench.py
	$(BIN)/python benchmarks/rush.py
	$(BIN)/python benchmarks/dashboard.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
