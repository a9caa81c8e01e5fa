# Proliferate — the verbs. `make dev` runs the platform, `make test` runs every test.
SHELL := /bin/bash
.DEFAULT_GOAL := help

UV_VERSION := 0.13.9
TOOLS := $(CURDIR)/.tools
# Use the uv on PATH when there is one; otherwise install a pinned one into .tools/.
UV ?= $(shell command -v uv 2>/dev/null || echo $(TOOLS)/bin/uv)
PYTHON ?= python3

# The agent: the real OpenCode binary from npm, pinned, installed into .cache/ (never by hand).
OPENCODE_VERSION := 1.18.33
OPENCODE_DIR := $(CURDIR)/.cache/opencode
OPENCODE_BIN := $(OPENCODE_DIR)/node_modules/.bin/opencode
export OPENCODE_BIN
# The agent's base layer (agent-contract.md §2.4): the pinned @opencode-ai/plugin that the generated
# tool modules import, copied into every sandbox's ~/.config/opencode/node_modules.
OPENCODE_BASE_DIR := $(CURDIR)/.cache/opencode-base/$(OPENCODE_VERSION)
OPENCODE_BASE_STAMP := $(OPENCODE_BASE_DIR)/node_modules/@opencode-ai/plugin/package.json
export OPENCODE_BASE_DIR
# esbuild syntax-checks the generated tool modules in the agent-contract tests.
ESBUILD_VERSION := 0.25.9
ESBUILD_DIR := $(CURDIR)/.cache/esbuild/$(ESBUILD_VERSION)
ESBUILD_BIN := $(ESBUILD_DIR)/node_modules/.bin/esbuild
export ESBUILD_BIN

export UV_PYTHON_DOWNLOADS := never
export UV_PYTHON_PREFERENCE := only-system
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: help dev test lint typecheck unit e2e protos protos-check bench sync migrate clean tools opencode opencode-base esbuild system-deps

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

$(OPENCODE_BIN):
	@echo "▶ installing OpenCode $(OPENCODE_VERSION) into .cache/opencode"
	@command -v npm >/dev/null || { echo "npm is needed to install OpenCode (Node.js 20+)"; exit 1; }
	@npm install --silent --no-audit --no-fund --prefix $(OPENCODE_DIR) opencode-ai@$(OPENCODE_VERSION)
	@$(OPENCODE_BIN) --version >/dev/null

opencode: $(OPENCODE_BIN)

$(OPENCODE_BASE_STAMP):
	@echo "▶ installing @opencode-ai/plugin $(OPENCODE_VERSION) (the agent's base layer) into .cache/opencode-base"
	@command -v npm >/dev/null || { echo "npm is needed to install the agent's base layer (Node.js 20+)"; exit 1; }
	@npm install --silent --no-audit --no-fund --save-exact --prefix $(OPENCODE_BASE_DIR) @opencode-ai/plugin@$(OPENCODE_VERSION)

opencode-base: $(OPENCODE_BASE_STAMP)

$(ESBUILD_BIN):
	@echo "▶ installing esbuild $(ESBUILD_VERSION) into .cache/esbuild"
	@command -v npm >/dev/null || { echo "npm is needed to install esbuild (Node.js 20+)"; exit 1; }
	@npm install --silent --no-audit --no-fund --save-exact --prefix $(ESBUILD_DIR) esbuild@$(ESBUILD_VERSION)

esbuild: $(ESBUILD_BIN)

# bubblewrap isolates local sandboxes; installed when this machine lets us (root + apt).
system-deps:
	@command -v bwrap >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "▶ installing bubblewrap"; \
	    apt-get install -y -qq bubblewrap >/dev/null 2>&1 || \
	      { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq bubblewrap >/dev/null 2>&1; } || \
	      echo "bubblewrap could not be installed: local sandboxes run in process isolation only"; \
	  else echo "bubblewrap not installed (needs root and apt): local sandboxes run in process isolation only"; fi; }

tools: sync opencode opencode-base esbuild system-deps

dev: tools
	@$(UV) run --frozen --no-sync python -m proliferate.devkit.launcher

migrate: sync
	@$(UV) run --frozen --no-sync proliferate-migrate

lint: sync
	$(UV) run --frozen --no-sync ruff check .
	$(UV) run --frozen --no-sync ruff format --check .

typecheck: sync
	MYPYPATH=$$(ls -d libs/*/src services/*/src | paste -sd:) $(UV) run --frozen --no-sync mypy

unit: tools
	$(UV) run --frozen --no-sync pytest libs services

e2e: tools
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
