# convforge: `make demo` and `make test` work on a fresh machine.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
PYTEST := $(PY) -m pytest

FASHION_MNIST := /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz

.PHONY: demo test test-all bench lint clean fashion-mnist

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(PY)
	$(PIP) install -q -e .
	@touch $@

$(VENV)/.dev-installed: pyproject.toml $(VENV)/.installed
	$(PIP) install -q -e '.[dev]'
	@touch $@

# Fashion-MNIST from Debian's dataset-fashion-mnist package (convforge finds it there).
fashion-mnist:
	@test -f $(FASHION_MNIST) || (apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist) \
		|| echo "could not install dataset-fashion-mnist; convforge will look for Fashion-MNIST elsewhere"

# The main job: train a SimpleNet and a ResNet-20 on Fashion-MNIST, then compare them.
demo: $(VENV)/.installed fashion-mnist
	$(VENV)/bin/convforge compare 'simplenet_cifar_310k[width=0.5,pool_drop=0,drop_rate=0]' 'resnet20[epochs=1]' \
		--recipe recipes/fashion-mnist-short.yaml --project runs/demo

test: $(VENV)/.dev-installed fashion-mnist
	$(PYTEST) -q

test-all: $(VENV)/.dev-installed fashion-mnist
	$(PYTEST) -q -m "slow or not slow"

bench: $(VENV)/.dev-installed
	$(PY) benchmarks/profile_speed.py

lint: $(VENV)/.dev-installed
	$(PY) -m ruff check src tests benchmarks
	$(PY) -m ruff format --check src tests benchmarks

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .ruff_cache
