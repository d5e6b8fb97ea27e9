# Everything runs from .venv, created on first use.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
PORT ?= 4566

.PHONY: install lint test test-system demo emulator clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e '.[test]'
	touch $@

install: $(VENV)/.installed

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy airflow_batch_runner tests bench scripts dags_examples

test: lint
	$(VENV)/bin/pytest -m "not system"

# A running Airflow (API server, scheduler, DAG processor, triggerer), a real browser, a wheel install.
test-system: install
	command -v chromium >/dev/null || (apt-get update -q && apt-get install -y -q chromium)
	$(VENV)/bin/pytest -m system tests/system

emulator: install
	$(PY) -m airflow_batch_runner.emulator --port $(PORT)

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache

demo: install
	$(PY) scripts/demo.py
