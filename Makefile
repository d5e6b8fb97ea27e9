# Everything runs from .venv, created on first use.
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 4566
# The oldest versions pyproject.toml accepts, on the oldest Python it accepts, in a virtualenv of their own.
FLOOR_VENV ?= .venv-floor
FLOOR_PYTHON ?= $(firstword $(shell PYENV_VERSION=3.10 pyenv which python3.10 2>/dev/null) python3.10)
FLOOR_PINS := .ci/floor-constraints.txt
# The tests mostly wait on emulated jobs: pytest-xdist workers (each its own Airflow home and emulator), a test
# file's tests kept together and in order; TEST_WORKERS=0 runs them in this process. Six for make test, whose
# workers are idle most of the time (on 2 CPUs: 465 s against 580 s with four, the same CPU time); four for
# make test-floor, whose Airflow takes more CPU per test (six were slower there: 332 s against 312 s).
TEST_WORKERS ?= 6
FLOOR_TEST_WORKERS ?= 4
parallel = $(if $(filter 0,$(1)),,-n $(1) --dist loadfile)
PARALLEL := $(call parallel,$(TEST_WORKERS))
FLOOR_PARALLEL := $(call parallel,$(FLOOR_TEST_WORKERS))
# The tests start their own Airflow home (tests/conftest.py): none of the caller's.
NO_AIRFLOW_ENV := env -u AIRFLOW_HOME -u AIRFLOW__CORE__DAGS_FOLDER -u AIRFLOW__CORE__LOAD_EXAMPLES

# The peer side of two benchmarks (the Amazon provider's BatchJobTrigger, its async Logs reads) needs
# aiobotocore, which the package does not: installed beside the virtualenv, for the benchmarks only.
BENCH_DEPS := $(CURDIR)/build/bench-deps
BENCH := $(NO_AIRFLOW_ENV) PYTHONPATH=$(BENCH_DEPS) $(PY) -m

.PHONY: install install-uv install-floor install-bench install-docs install-browser lint test test-floor test-system dist-check demo emulator clean bench-smoke docs

# The virtualenvs are made by venv (so they hold pip, as a user's would) and filled by uv, which resolves the same
# versions from PyPI as pip but installs them several times faster (about 20 s against 100 s for the ~250 packages of
# .venv, on 2 CPUs). uv itself comes from PyPI, with pip, into build/uv. Every install byte-compiles: the machines
# here set PYTHONDONTWRITEBYTECODE, so a module not compiled at install is compiled again by every process that
# imports it.
UV_VERSION := 0.13.10
UV_DIR := $(CURDIR)/build/uv
UV := $(UV_DIR)/bin/uv
UV_INSTALL := $(UV) pip install -q --compile-bytecode

$(UV):
	python3 -m pip install -q --disable-pip-version-check --target $(UV_DIR) uv==$(UV_VERSION)

install-uv: $(UV)

$(VENV)/.installed: pyproject.toml | $(UV)
	test -x $(PY) || python3 -m venv $(VENV)
	$(UV_INSTALL) --python $(PY) --upgrade pip
	$(UV_INSTALL) --python $(PY) -e '.[test,openlineage]'
	$(PY) -m compileall -q airflow_batch_runner
	touch $@

install: $(VENV)/.installed

$(FLOOR_VENV)/.installed: pyproject.toml $(FLOOR_PINS) | $(UV)
	test -x $(FLOOR_VENV)/bin/python || $(FLOOR_PYTHON) -m venv $(FLOOR_VENV)
	$(UV_INSTALL) --python $(FLOOR_VENV)/bin/python --upgrade pip
	$(UV_INSTALL) --python $(FLOOR_VENV)/bin/python --constraint $(FLOOR_PINS) -e '.[test]'
	$(FLOOR_VENV)/bin/python -m compileall -q airflow_batch_runner
	touch $@

install-floor: $(FLOOR_VENV)/.installed

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy airflow_batch_runner tests bench scripts dags_examples docs

test: lint
	$(NO_AIRFLOW_ENV) $(VENV)/bin/pytest -m "not system" $(PARALLEL) --durations=25

$(BENCH_DEPS)/.installed: $(VENV)/.installed
	$(UV_INSTALL) --python $(PY) --no-deps --target $(BENCH_DEPS) aiobotocore==3.10.0 aioitertools
	touch $@

install-bench: $(BENCH_DEPS)/.installed

# Every benchmark under bench/ at a small N, so that none rots unseen: it must run to its end and pass its own
# checks (the figures' targets are for large N and are not checked here). About 4 minutes on 2 CPUs.
bench-smoke: $(VENV)/.installed $(BENCH_DEPS)/.installed
	$(BENCH) bench.emulator_capacity --jobs 50 --sleep 60 --describe-calls 20 --idle-seconds 1
	$(BENCH) bench.array_fanout --size 10
	$(BENCH) bench.task_overhead --runs 1
	$(BENCH) bench.triggerer_scale --jobs 20 --interval 1 --sleep 3 --events-faults none duplicate
	$(BENCH) bench.triggerer_scale --jobs 20 --interval 1 --sleep 10 --impl events --events-faults drop --events-sweep 3
	$(BENCH) bench.log_scale --jobs 3 --duration 3 --interval 1
	$(BENCH) bench.fan_out --sizes 3

# The unit tests, and the end-to-end modules that go through a surface of Airflow or the Amazon provider, on the floor
# versions (tests of newer Airflow behaviour skip). Left out: the "scale" sizes and the "own_logic" modules, which test
# our own code on surfaces no Airflow version changes (tests/e2e/conftest.py says which and why), and the emulator
# tests, which talk to the emulator alone (the end-to-end tests run it on the floor Python too).
test-floor: install-floor
	$(FLOOR_VENV)/bin/python -m pip list --format=freeze | grep -iE '^(apache-airflow|apache-airflow-providers-amazon)=='
	$(NO_AIRFLOW_ENV) $(FLOOR_VENV)/bin/pytest -m "not system and not scale and not own_logic" -p no:cacheprovider $(FLOOR_PARALLEL) --durations=25 tests/unit tests/e2e

# A running Airflow (API server, scheduler, DAG processor, triggerer), a real browser, a wheel install; the docs site
# in that browser. The site is built first, unless SITE_BUILT=1 says it already was (.ci/run builds it earlier).
install-browser:
	command -v chromium >/dev/null || (apt-get update -q && apt-get install -y -q chromium)

test-system: install $(if $(filter 1,$(SITE_BUILT)),,docs) install-browser
	$(VENV)/bin/pytest -m system --durations=15 tests/system

# The docs site, into build/site: strict (any warning fails it: a broken link or anchor, a missing included example,
# an unknown generated block). The reference tables and the job diagrams are generated from the code on each build;
# Mermaid's script comes from npm, so the diagrams render with no network.
MERMAID := 11.9.0
docs/javascripts/mermaid.min.js:
	mkdir -p build/mermaid docs/javascripts
	cd build/mermaid && npm pack --silent mermaid@$(MERMAID) >/dev/null && tar xzf mermaid-$(MERMAID).tgz package/dist/mermaid.min.js
	cp build/mermaid/package/dist/mermaid.min.js $@

$(VENV)/.docs-installed: $(VENV)/.installed
	$(UV_INSTALL) --python $(PY) -e '.[docs]'
	touch $@

install-docs: $(VENV)/.docs-installed docs/javascripts/mermaid.min.js

docs: install-docs
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict

# What would be uploaded: the sdist and the wheel, their metadata and the README as PyPI renders it.
dist-check: install
	rm -rf dist
	$(PY) -m build --outdir dist .
	$(VENV)/bin/twine check --strict dist/*

emulator: install
	$(PY) -m airflow_batch_runner.emulator --port $(PORT)

clean:
	rm -rf $(VENV) $(FLOOR_VENV) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache

demo: install
	$(PY) scripts/demo.py
