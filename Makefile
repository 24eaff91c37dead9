# `make demo` and `make test` set up everything they need in .venv on first use.
#
# The environment is rebuilt only when pyproject.toml (or the torch spec) changes: each
# install leaves a stamp file named after their hash. Variables:
#   PYTHON  interpreter that creates .venv (Python >= 3.10; default python3)
#   TORCH   pip spec of PyTorch (default: the CPU build torch==2.13.0), e.g.
#           make test TORCH="torch --index-url https://download.pytorch.org/whl/cu124"
#   ARGS    extra arguments for `epimpute demo` or pytest, e.g. make test ARGS="-x -k store"

PYTHON ?= python3
TORCH ?= torch==2.13.0
ARGS ?=
VENV := .venv
BIN := $(VENV)/bin
KEY := $(shell { cat pyproject.toml; echo '$(TORCH)'; } | cksum | cut -d' ' -f1)
BASE := $(VENV)/.installed-$(KEY)
TEST := $(VENV)/.installed-test-$(KEY)

.PHONY: demo test lint clean

demo: $(BASE)
	$(BIN)/epimpute demo $(ARGS)

test: $(TEST)
	$(BIN)/python -m pytest -q $(ARGS)

lint: $(TEST)
	$(BIN)/ruff check src tests benchmarks

clean:
	rm -rf $(VENV)

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 10))' || \
		{ echo "epimpute needs Python >= 3.10; run make PYTHON=/path/to/python3.x" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)

$(BASE): $(BIN)/python
	rm -f $(VENV)/.installed-*
	$(BIN)/python -m pip install --quiet --upgrade pip
	@echo "installing $(TORCH) and epimpute into $(VENV) (first run only)"
	$(BIN)/python -m pip install $(TORCH)
	$(BIN)/python -m pip install -e .
	touch $@

$(TEST): $(BASE)
	$(BIN)/python -m pip install -e ".[test]"
	$(BIN)/python -m pip install --quiet macs3 || \
		echo "macs3 did not install; the MACS3 comparison test will skip"
	touch $@
