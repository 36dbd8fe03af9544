# scalelab: `make run` trains and evaluates the default experiment; `make test` runs the tests.
# Both create .venv on first use. Targets run tools from .venv, so no activation is needed.
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export MLFLOW_DISABLE_TELEMETRY ?= true

.PHONY: help run test test-fast params lint bench ui mlflow-server mlflow-server-stop slurm-cluster slurm-cluster-stop clean

help:  ## list the targets
	@grep -E '^[a-z.-]+:.*## ' Makefile | sed -E 's/^([a-z.-]+):.*## /  make \1\t/' | expand -t 28

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch==2.13.0 is a local CPU wheel on our machines; an unpinned torch pulls CUDA (GBs).
	$(PY) -m pip install --quiet torch==2.13.0 -e '.[dev]'
	touch $@

params: $(STAMP)  ## regenerate params.yaml from conf/ (DVC's own Hydra composition)
	$(PY) -m scalelab.params_file $(if $(FORCE),--force)

run: params  ## the default study with DVC: prepare, train, evaluate, fit (cached: a second run does nothing)
	dvc repro

# pytest-xdist workers for the tests; each test file stays on one worker (its fixtures are shared)
TEST_WORKERS ?= 2

test: $(STAMP)  ## the whole suite, slow end-to-end tests included (TEST_WORKERS=2 processes)
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile --durations=10  # the slowest, to see what to trim

test-fast: $(STAMP)  ## everything but the slow end-to-end tests
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile -m "not slow"

bench: $(STAMP)  ## speed benchmarks (~16 min; need Fashion-MNIST, Tiny Shakespeare): results in benchmarks/results/
	$(PY) -m benchmarks.train_overhead
	$(PY) -m benchmarks.pipeline_overhead
	$(PY) -m benchmarks.sweep_parallel
	$(PY) -m benchmarks.lm_overhead
	$(PY) -m benchmarks.tracking_overhead

lint: $(STAMP)  ## ruff on src, pipelines, tests, benchmarks
	$(VENV)/bin/ruff check src pipelines tests benchmarks

ui: $(STAMP)  ## MLflow UI on the project's store (loopback); prints links to the latest sweep
	$(PY) -m scalelab.tracking.ui 5000

mlflow-server: $(STAMP)  ## a team tracking server: MLflow on PostgreSQL, loopback (scripts/mlflow-server)
	scripts/mlflow-server start

mlflow-server-stop:  ## stop it (its data stays in .mlflow-server/)
	scripts/mlflow-server stop

slurm-cluster: $(STAMP)  ## a real single-node SLURM cluster here, to try hydra/launcher=slurm (root)
	scripts/slurm-cluster start

slurm-cluster-stop:  ## stop it (logs and accounting stay in .slurm-cluster/)
	scripts/slurm-cluster stop

clean:  ## delete results (not the venv): data/prepared, models, checkpoints, reports, MLflow store
	rm -rf data/prepared models checkpoints reports mlflow.db mlruns
