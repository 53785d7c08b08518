# Two commands on a fresh machine:
#   make run    creates .venv, installs photofind and runs it (ARGS="search 'a dog'")
#   make test   creates .venv with the test tools and runs every check
#   make package  builds this system's installer into dist/ and smoke-tests it
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The pinned torch installs from the local mirror; a newer one would download gigabytes.
TORCH := torch==2.14.1 torchvision==0.29.1

.PHONY: run test check lint package system-deps clean

$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH)
	$(BIN)/python -m pip install --quiet -e '.[dev,torch,ocr,cluster]'
	touch $@

run: $(BIN)/.installed
	$(BIN)/photofind $(ARGS)

test: system-deps check

system-deps:
	sh scripts/system-deps

check: lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(BIN)/.installed
	$(BIN)/ruff check photofind tests benchmarks packaging resources scripts/screenshots
	$(BIN)/mypy
	$(BIN)/lint-imports

package: $(BIN)/.installed
	$(BIN)/python packaging/build.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
