# The two commands: `make demo` runs the platform on embedded defaults, `make test` runs the checks.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Where the embedded PostgreSQL, tenant secrets and outputs of the demo live (git-ignored).
export SCOPE3_DATA_DIR ?= $(CURDIR)/.scope3

.PHONY: install demo test lint clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# The build backend's own notices (an editable install's caveat) are for packagers, not for whoever runs this.
	PYTHONWARNINGS=ignore $(BIN)/python -m pip install --quiet -e '.[dev]'
	# JupyterHub's proxy, the Node.js configurable-http-proxy, when npm is there (without it, and without a
	# global one, `scope3 hub start` says in one line what to install).
	-command -v npm >/dev/null && npm install --prefix $(VENV) --no-audit --no-fund --silent configurable-http-proxy@4
	touch $@

install: $(VENV)/.installed

demo: install
	$(BIN)/scope3 demo

lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy

test: lint
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) .scope3 .mypy_cache .ruff_cache .pytest_cache
