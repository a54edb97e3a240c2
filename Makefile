# struct2prop — `make help` lists the targets.
# Every target that runs the package depends on $(STAMP): the first run creates .venv and installs the
# package with the versions pinned in constraints.txt; later runs reinstall only when pyproject.toml or
# constraints.txt changed since (the stamp is older than either), otherwise they go straight to work.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
EXTRAS ?= tf-cpu,dev,notebooks,docs
CONSTRAINTS ?= constraints.txt
STAMP := $(VENV)/.s2p-installed
DATASETS ?=
S2P_DATA_MIRROR ?=
export S2P_DATA_MIRROR
PYTEST_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help install lock test test-lib test-notebooks lint reproduce docs benchmarks clean

help: ## Show this help
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN{FS=":.*?## "}{printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2}'

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Keyed on pyproject.toml and the pins; CONSTRAINTS= (empty) installs without pins (other Python versions).
$(STAMP): pyproject.toml $(CONSTRAINTS) | $(BIN)/python
	$(BIN)/python -m pip install --upgrade pip $(if $(CONSTRAINTS),-c $(CONSTRAINTS))
	$(BIN)/python -m pip install $(if $(CONSTRAINTS),-c $(CONSTRAINTS)) -e '.[$(EXTRAS)]'
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (struct2prop)" >/dev/null
	touch $@

install: $(STAMP) ## Create or update .venv alone (pinned versions; the targets below do it themselves when needed)

lock: ## Re-resolve the newest versions pyproject.toml allows in a scratch venv and pin them in constraints.txt
	@set -euo pipefail; tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	$(PYTHON) -m venv "$$tmp/venv"; \
	"$$tmp/venv/bin/python" -m pip install --quiet --upgrade pip; \
	"$$tmp/venv/bin/python" -m pip install --quiet '.[$(EXTRAS)]'; \
	{ echo "# Versions resolved and tested for struct2prop[$(EXTRAS)]: written by \`make lock\`, do not edit."; \
	  "$$tmp/venv/bin/python" -c 'import platform; print("# Python", platform.python_version(), platform.system(), platform.machine())'; \
	  "$$tmp/venv/bin/python" -m pip freeze --all --exclude struct2prop --exclude setuptools --exclude wheel; \
	} > "$$tmp/constraints.txt"; \
	if cmp -s "$$tmp/constraints.txt" constraints.txt; then echo "constraints.txt unchanged"; \
	else mv "$$tmp/constraints.txt" constraints.txt; \
	  echo "constraints.txt rewritten: run make test (it reinstalls .venv from the new pins), commit it if green"; fi

test: test-lib test-notebooks ## Run the unit tests and execute every notebook with nbval (smoke mode)

test-lib: $(STAMP) ## Unit and integration tests (pytest)
	S2P_SMOKE=1 $(BIN)/python -m pytest -q $(PYTEST_ARGS)

test-notebooks: $(STAMP) ## Run all notebooks under nbval in smoke mode
	S2P_SMOKE=1 $(BIN)/python -m pytest -q -p no:cacheprovider --nbval-lax --nbval-current-env notebooks/

lint: $(STAMP) ## Ruff lint and format check (the notebooks included)
	$(BIN)/ruff check s2p_utils tests benchmarks notebooks
	$(BIN)/ruff format --check s2p_utils tests benchmarks notebooks

reproduce: $(STAMP) ## Run the notebooks headless (papermill) and write results/README.md; DATASETS=e3nn_phdos runs one
	$(BIN)/s2p reproduce $(if $(DATASETS),--datasets $(DATASETS),)

docs: $(STAMP) ## Static site of the notebooks make reproduce executed: results/site/index.html (source in build/docs-src)
	$(BIN)/s2p docs

benchmarks: $(STAMP) ## Featurization and training-speed benchmarks (needs the data mirror)
	$(BIN)/python benchmarks/featurize.py
	$(BIN)/python benchmarks/predict_speed.py

clean: ## Remove caches and generated results (keeps .venv)
	rm -rf results .pytest_cache .ruff_cache build dist *.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
