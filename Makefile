# convforge: `make demo` and `make test` work on a fresh machine.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
PYTEST := $(PY) -m pytest

.PHONY: demo test test-all bench lint clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(PY)
	$(PIP) install -q -e .
	@touch $@

$(VENV)/.dev-installed: pyproject.toml $(VENV)/.installed
	$(PIP) install -q -e '.[dev]'
	@touch $@

demo: $(VENV)/.installed
	$(VENV)/bin/convforge models 'simplenet*'
	$(VENV)/bin/convforge profile simplenet_cifar_5m --latency --per-module --depth 1
	$(VENV)/bin/convforge profile timm:resnet18 --input 3x224x224 --convention thop

test: $(VENV)/.dev-installed
	$(PYTEST) -q

test-all: $(VENV)/.dev-installed
	$(PYTEST) -q -m "slow or not slow"

bench: $(VENV)/.dev-installed
	$(PY) benchmarks/profile_speed.py

lint: $(VENV)/.dev-installed
	$(PY) -m ruff check src tests benchmarks
	$(PY) -m ruff format --check src tests benchmarks

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .ruff_cache
