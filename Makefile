# The two commands of the README: `make run` (main job, embedded default) and `make test` (everything).
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test unit lint services clean

$(STAMP): pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

## run: the main job on the embedded default (SQLite, built-in GitHub emulator without GITHUB_TOKEN)
run: $(STAMP)
	$(VENV)/bin/cipulse up

## services: fetch or build the real test services into ~/.cache/cipulse (cached; fast when present)
services: $(STAMP)
	bash scripts/provision/all.sh

## lint: ruff, formatting, mypy, and the offline pre-commit hooks over every file
lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench
	$(VENV)/bin/mypy
	$(VENV)/bin/pre-commit run --all-files

## test: install everything, provision services, lint, then the whole suite (unit + integration)
test: $(STAMP) services lint
	$(VENV)/bin/pytest tests

## unit: the quick tests that need no service
unit: $(STAMP)
	$(VENV)/bin/pytest tests -m "not integration"

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
