# struct2prop — `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DATASETS ?=
S2P_DATA_MIRROR ?=
export S2P_DATA_MIRROR
PYTEST_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help install test test-lib test-notebooks lint reproduce benchmarks clean

help: ## Show this help
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN{FS=":.*?## "}{printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2}'

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip

install: $(BIN)/python ## Create .venv and install the package with dev, notebook and CPU TensorFlow extras
	$(BIN)/python -m pip install -e '.[tf-cpu,dev,notebooks]'
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (struct2prop)" >/dev/null

test: test-lib test-notebooks ## Run the unit tests and execute every notebook with nbval (smoke mode)

test-lib: ## Unit and integration tests (pytest)
	S2P_SMOKE=1 $(BIN)/python -m pytest -q $(PYTEST_ARGS)

test-notebooks: ## Run all notebooks under nbval in smoke mode
	S2P_SMOKE=1 $(BIN)/python -m pytest -q -p no:cacheprovider --nbval-lax --nbval-current-env notebooks/

lint: ## Ruff lint and format check
	$(BIN)/ruff check s2p_utils tests benchmarks notebooks/conftest.py
	$(BIN)/ruff format --check s2p_utils tests benchmarks notebooks/conftest.py

reproduce: ## Run the notebooks headless (papermill) and write results/README.md; DATASETS=e3nn_phdos runs one
	$(BIN)/s2p reproduce $(if $(DATASETS),--datasets $(DATASETS),)

benchmarks: ## Featurization and training-speed benchmarks (needs the data mirror)
	$(BIN)/python benchmarks/featurize.py
	$(BIN)/python benchmarks/predict_speed.py

clean: ## Remove caches and generated results (keeps .venv)
	rm -rf results .pytest_cache .ruff_cache build dist *.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
