# Two commands for a fresh machine with only Python 3.11+:
#   make run    create .venv, install prmflow, run the lifecycle on the embedded default
#   make test   create .venv, install prmflow + pytest, run the test suite
# GPU machines: make run TORCH="torch --index-url https://download.pytorch.org/whl/cu128"
PYTHON ?= python3
VENV   ?= .venv
TORCH  ?= torch==2.13.0
PY     := $(VENV)/bin/python

export DO_NOT_TRACK := true
export MLFLOW_DISABLE_TELEMETRY := true
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export PYTHONUNBUFFERED := 1

.PHONY: setup run test bench clean
setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check $(TORCH)
	$(PY) -m pip install -q --disable-pip-version-check -e ".[test,ray]"
	touch $@

run: setup
	$(VENV)/bin/prmflow run

# Two pytest workers, a module each at a time (module fixtures are built once): the servers and
# end-to-end tests spend much of their time waiting, so the cores overlap them.
test: setup
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q -n 2 --dist loadscope --durations=15

# One table: stage times and peak memory (dvc repro first if metrics are missing), RL vs TRL,
# labelling cost per method, sampler vs generate; also logged to MLflow (experiment prmflow-bench).
bench: setup
	$(PY) -c "import trl" 2>/dev/null || $(PY) -m pip install -q --disable-pip-version-check -e ".[bench]"
	HF_HUB_OFFLINE=1 $(PY) benchmarks/run_all.py

clean:
	rm -rf data/curated data/rejects data/labels models metrics plots mlflow.db mlartifacts
