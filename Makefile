# Proliferate — the verbs. `make dev` runs the platform, `make test` runs every test.
SHELL := /bin/bash
.DEFAULT_GOAL := help

UV_VERSION := 0.13.9
TOOLS := $(CURDIR)/.tools
# Use the uv on PATH when there is one; otherwise install a pinned one into .tools/.
UV ?= $(shell command -v uv 2>/dev/null || echo $(TOOLS)/bin/uv)
PYTHON ?= python3

export UV_PYTHON_DOWNLOADS := never
export UV_PYTHON_PREFERENCE := only-system
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: help dev test lint typecheck unit e2e protos protos-check bench sync migrate clean

help:
	@echo "make dev     run the whole platform locally (embedded Postgres and NATS)"
	@echo "make test    lint, type-check, every service's tests, then tests-e2e"
	@echo "make e2e     only tests-e2e"
	@echo "make protos  regenerate Python from protos/"
	@echo "make bench   print the performance figures"

$(TOOLS)/bin/uv:
	@echo "▶ installing uv $(UV_VERSION) into .tools/"
	@$(PYTHON) -m venv $(TOOLS)
	@$(TOOLS)/bin/pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"

# The environment: every workspace member and the dev tools, exactly as uv.lock says.
sync: $(if $(findstring $(TOOLS),$(UV)),$(TOOLS)/bin/uv)
	@echo "▶ syncing the environment (uv sync --frozen)"
	@$(UV) sync --frozen --all-packages

dev: sync
	@$(UV) run --frozen --no-sync python -m proliferate.devkit.launcher

migrate: sync
	@$(UV) run --frozen --no-sync proliferate-migrate

lint: sync
	$(UV) run --frozen --no-sync ruff check .
	$(UV) run --frozen --no-sync ruff format --check .

typecheck: sync
	MYPYPATH=$$(ls -d libs/*/src services/*/src | paste -sd:) $(UV) run --frozen --no-sync mypy

unit: sync
	$(UV) run --frozen --no-sync pytest libs services

e2e: sync
	$(UV) run --frozen --no-sync pytest tests-e2e

test: lint typecheck unit e2e

protos: sync
	$(UV) run --frozen --no-sync python -m proliferate.devkit.protos

protos-check: sync
	$(UV) run --frozen --no-sync python -m proliferate.devkit.protos --check

bench: sync
	$(UV) run --frozen --no-sync python -m proliferate.devkit.bench

clean:
	rm -rf .venv .tools .cache .pytest_cache .mypy_cache .ruff_cache
