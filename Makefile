# The README's two commands are `make demo` and `make test`; both install what they need.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PYTEST_WORKERS ?= auto

.PHONY: help install test lint typecheck unit demo bench package synth pr clean

help:
	@echo "make demo     - restore a backup end to end in the offline world (emulated CloudHSM + CloudFormation)"
	@echo "make test     - lint, type-check and run every test"
	@echo "make bench    - measure latency, API calls, cold start and package size against the baselines"
	@echo "make package  - build dist/cloudhsm-backup-restore-lambda.zip and the ready-to-deploy provider template"

$(STAMP): pyproject.toml handler/requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $@

install: $(STAMP)

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

typecheck: $(STAMP)
	$(PY) -m mypy

test: lint typecheck
	$(PY) -m pytest -n $(PYTEST_WORKERS) -q

unit: $(STAMP)
	$(PY) -m pytest -q tests/unit

demo: $(STAMP)
	$(PY) -m cloudhsm_offline demo

bench: $(STAMP)
	$(PY) -m bench

package: $(STAMP)
	$(PY) -m cloudhsm_backup_restore_pipeline

pr: test

clean:
	rm -rf $(VENV) dist build cdk.out .mypy_cache .ruff_cache .pytest_cache .hypothesis
