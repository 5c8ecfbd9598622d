# One command to set up and run the paper, one to run the tests.
#   make paper   # venv + install + the whole paper (config.yaml)
#   make quick   # venv + install + the reduced grid (config/quick.yaml)
#   make test    # venv + install + the test suite
#   make report  # HTML report of TARGETS already built (default: all) -> results/report.html;
#                # it builds nothing: run the targets first (make paper, make quick, snakemake ...)
#   make test-slurm  # as root: a real local SLURM (apt) and the workflow on it (docs/cluster.md)
#   make gpu-check   # on a CUDA machine: one report, docs/gpu/report.md (scripts/gpu_check.py)
# MIRROR=DIR copies raw data from DIR (laid out like <dataset>/<file>) instead of
# downloading; it defaults to ../shared/data/raw when that folder exists (MIRROR= for none).
# CONFIG="key=value ..." sets more config keys (as snakemake's --config);
# SNAKEFLAGS="..." passes more snakemake options, e.g. SNAKEFLAGS=-n for a dry run;
# PYTESTFLAGS="..." passes more pytest options to make test.

VENV ?= .venv
PYTHON ?= python3
TORCH ?= torch==2.13.0
CORES ?= all
MIRROR ?= $(wildcard $(abspath ../shared/data/raw))
CONFIG ?=
SNAKEFLAGS ?=
PYTESTFLAGS ?=
SNAKEMAKE = $(VENV)/bin/snakemake
SNAKEOPTS = --cores $(CORES) --keep-going $(SNAKEFLAGS)
# --config takes every word after it, so it ends every command line (targets go first).
CONFIG_ARGS = $(if $(strip $(MIRROR) $(CONFIG)),--config $(if $(MIRROR),mirror=$(MIRROR)) $(CONFIG))

TARGETS ?= all

.PHONY: setup paper quick report test test-slurm bench gpu-check
setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet "$(TORCH)"
	$(VENV)/bin/pip install --quiet -e '.[test]'
	touch $@

paper: setup
	$(SNAKEMAKE) $(SNAKEOPTS) $(CONFIG_ARGS)

quick: setup
	$(SNAKEMAKE) $(SNAKEOPTS) --configfile config/quick.yaml $(CONFIG_ARGS)

report: setup
	$(SNAKEMAKE) $(TARGETS) --report results/report.html $(SNAKEOPTS) $(CONFIG_ARGS)

test: setup
	SPATTACK_MIRROR=$${SPATTACK_MIRROR:-$(MIRROR)} $(VENV)/bin/pytest -q $(PYTESTFLAGS)

test-slurm: $(VENV)/.installed-slurm
	SPATTACK_MIRROR=$${SPATTACK_MIRROR:-$(MIRROR)} $(VENV)/bin/pytest -q -m slurm --durations=0 tests/test_slurm.py

$(VENV)/.installed-slurm: $(VENV)/.installed
	$(VENV)/bin/pip install --quiet -e '.[test,slurm]'
	touch $@

bench: setup
	$(VENV)/bin/python benchmarks/bench_epoch.py --dataset ml-100k --split results/data/ml-100k

# Needs the splits (results/data, e.g. from `snakemake table2`) and torch, numpy, pandas, tqdm;
# installs nothing, so it runs in a CUDA machine's own Python.
gpu-check:
	PYTHONPATH=src $(PYTHON) scripts/gpu_check.py --device cuda --out docs/gpu/report.md
