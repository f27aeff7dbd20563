# Set-up is two commands: `make demo` and `make test`. Both create .venv when it is missing.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.ehrmind-installed
export HF_HUB_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false

.PHONY: install test test-slow lint demo clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	@# Keep a torch the user installed first (e.g. a CUDA build); otherwise pin the CPU build.
	@if $(PY) -c "import torch" 2>/dev/null; then grep -v '^torch==' constraints.txt > $(VENV)/constraints.txt; \
	 else cp constraints.txt $(VENV)/constraints.txt; fi
	$(PY) -m pip install --quiet -c $(VENV)/constraints.txt -e '.[dev]'
	@touch $(STAMP)

lint: install
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench

test: lint
	$(VENV)/bin/pytest -q

# The slow-marked tests (miniature demo and study end to end, about 1 min); .ci/run runs them too.
test-slow: install
	$(VENV)/bin/pytest -q -m slow

demo: install
	$(VENV)/bin/ehrmind demo --out runs/demo

clean:
	rm -rf $(VENV) runs .pytest_cache
