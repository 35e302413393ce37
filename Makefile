# The README's two commands are `make demo` and `make test`; both install what they need.
# Every path is anchored at this file's folder, so `make -C /path/to/repo <target>` and
# `make -f ../Makefile <target>` from a subfolder behave like `make <target>` at the root.
SHELL := /bin/bash
ROOT := $(patsubst %/,%,$(dir $(abspath $(lastword $(MAKEFILE_LIST)))))
PYTHON ?= python3
VENV := $(ROOT)/.venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PACKAGE_VENV := $(ROOT)/.venv-package
PACKAGE_STAMP := $(PACKAGE_VENV)/.installed
BUILD_VENV := $(ROOT)/.venv-build
BUILD_STAMP := $(BUILD_VENV)/.installed
# checkov and the AWS CLI v1 pin botocore versions of their own (checkov: boto3 1.35), so each gets a venv.
CHECKOV_VENV := $(ROOT)/.venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed
AWSCLI_VENV := $(ROOT)/.venv-awscli
AWSCLI_STAMP := $(AWSCLI_VENV)/.installed
# The CDK CLI, for the tests that run `cdk synth` as a user does: a project-local npm prefix, pinned.
CDK_CLI_VERSION := 2.1148.1
CDK_CLI_PREFIX := $(ROOT)/.node-cdk
CDK_CLI_STAMP := $(CDK_CLI_PREFIX)/.installed-$(CDK_CLI_VERSION)
DEMO_VENV := $(ROOT)/.venv-demo
DEMO_STAMP := $(DEMO_VENV)/.installed
PYTEST_WORKERS ?= auto
PIP := --quiet --disable-pip-version-check

# jsii (under aws-cdk-lib) prints a banner on every CDK import when Node is deprecated or end-of-life;
# @jsii/check-node honours these two variables (the second takes the silenced major versions).
NODE_MAJOR := $(shell node -p 'process.versions.node.split(".")[0]' 2>/dev/null)
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION := 1
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := $(NODE_MAJOR)

.PHONY: help install tools lint typecheck test loaded-test wheel-test unit model demo bench package dist pr clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(ROOT)/Makefile | sed -E 's/^([a-z-]+):.*## (.*)/make \1\t\2/' | expand -t 16

$(STAMP): $(ROOT)/pyproject.toml $(ROOT)/handler/requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install $(PIP) --upgrade pip
	cd $(ROOT) && $(PY) -m pip install $(PIP) -e '.[dev]'
	touch $@

install: $(STAMP) ## create .venv with the project (editable) and its [dev] toolchain
	@echo "$(VENV) is ready"

$(CHECKOV_STAMP):
	test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install $(PIP) "checkov>=3,<4"
	touch $@

$(AWSCLI_STAMP):
	test -x $(AWSCLI_VENV)/bin/python || $(PYTHON) -m venv $(AWSCLI_VENV)
	$(AWSCLI_VENV)/bin/python -m pip install $(PIP) "awscli>=1.38,<2"
	touch $@

$(CDK_CLI_STAMP):
	npm install --silent --no-audit --no-fund --prefix $(CDK_CLI_PREFIX) aws-cdk@$(CDK_CLI_VERSION)
	touch $@

tools: $(CHECKOV_STAMP) $(AWSCLI_STAMP) $(CDK_CLI_STAMP) ## checkov 3, the AWS CLI v1 and the CDK CLI for the template and CDK tests
	@echo "$(CHECKOV_VENV), $(AWSCLI_VENV) and $(CDK_CLI_PREFIX) are ready"

lint: $(STAMP) ## ruff check and ruff format --check
	cd $(ROOT) && $(PY) -m ruff check .
	cd $(ROOT) && $(PY) -m ruff format --check .

typecheck: $(STAMP) ## mypy --strict
	cd $(ROOT) && $(PY) -m mypy

test: lint typecheck tools ## lint, type-check and run every test (the wheel test has its own target)
	cd $(ROOT) && $(PY) -m pytest -n $(PYTEST_WORKERS) -q --ignore=tests/dist/test_wheel.py

loaded-test: $(STAMP) tools ## the tests with four CPU-bound processes running: outcomes must not change
	cd $(ROOT) && pids=(); for i in 1 2 3 4; do (while :; do :; done) & pids+=($$!); done; \
		$(PY) -m pytest -n 4 -q --ignore=tests/dist/test_wheel.py; status=$$?; kill $${pids[@]}; exit $$status

wheel-test: $(STAMP) ## build the wheel, install it in a clean venv and run every entry point (minutes)
	cd $(ROOT) && $(PY) -m pytest -q tests/dist/test_wheel.py

unit: $(STAMP) ## the unit tests only (no I/O, seconds)
	cd $(ROOT) && $(PY) -m pytest -q tests/unit

# The model test's large budget (tests/model/README.md): MODEL_EXAMPLES examples of up to MODEL_STEPS steps, shrunk.
MODEL_EXAMPLES ?= 2000
MODEL_STEPS ?= 30
model: $(STAMP) ## the stateful model test (tests/model) with a large budget: MODEL_EXAMPLES=2000 MODEL_STEPS=30
	cd $(ROOT) && MODEL_EXAMPLES=$(MODEL_EXAMPLES) MODEL_STEPS=$(MODEL_STEPS) MODEL_SHRINK=1 \
		$(PY) -m pytest -q -p no:cacheprovider --runxfail tests/model/test_model.py

# The demo needs the project and its [offline] extra only, not the [dev] toolchain: its own small venv,
# unless `make install` already made the full one.
$(DEMO_STAMP): $(ROOT)/pyproject.toml
	@echo "make demo: installing the offline world (boto3, crhelper, moto, cfn-lint, ...) into $(DEMO_VENV), once"
	test -x $(DEMO_VENV)/bin/python || $(PYTHON) -m venv $(DEMO_VENV)
	set -o pipefail; cd $(ROOT) && $(DEMO_VENV)/bin/python -m pip install --disable-pip-version-check \
		-e '.[offline]' | grep --line-buffered -E '^(Collecting|Successfully installed)' | cut -c1-100
	touch $@

demo: ## restore a backup end to end in the offline world (emulated CloudHSM + CloudFormation)
	@if [ -f $(STAMP) ]; then python=$(PY); else $(MAKE) --no-print-directory -f $(ROOT)/Makefile $(DEMO_STAMP) \
		&& python=$(DEMO_VENV)/bin/python; fi; cd $(ROOT) && $$python -m cloudhsm_offline demo

bench: $(STAMP) ## measure latency, API calls, cold start and package size against the baselines
	cd $(ROOT) && $(PY) -m bench

# The Lambda zip needs only the handler, the pinned crhelper and the build code: a small venv with
# handler/requirements.txt, not the [dev] toolchain.
$(PACKAGE_STAMP): $(ROOT)/handler/requirements.txt
	test -x $(PACKAGE_VENV)/bin/python || $(PYTHON) -m venv $(PACKAGE_VENV)
	$(PACKAGE_VENV)/bin/python -m pip install $(PIP) -r $(ROOT)/handler/requirements.txt
	touch $@

package: $(PACKAGE_STAMP) ## dist/cloudhsm-backup-restore-lambda.zip + dist/provider.packaged.yaml (code key literal)
	cd $(ROOT) && PYTHONPATH=$(ROOT)/pipeline $(PACKAGE_VENV)/bin/python -m cloudhsm_backup_restore_pipeline --dist $(ROOT)/dist

# A wheel needs only the PyPA `build` front end (it fetches setuptools into its own isolated build env).
$(BUILD_STAMP):
	test -x $(BUILD_VENV)/bin/python || $(PYTHON) -m venv $(BUILD_VENV)
	$(BUILD_VENV)/bin/python -m pip install $(PIP) "build>=1.2"
	touch $@

dist: $(BUILD_STAMP) ## build the wheel and sdist into dist/ (then: pip install "dist/<wheel>[cdk,offline]")
	cd $(ROOT) && $(BUILD_VENV)/bin/python -m build --outdir $(ROOT)/dist $(ROOT)

pr: test ## everything a reviewer runs (same as make test)
	@echo "make pr: lint, typecheck and tests passed"

clean: ## remove the virtualenvs, dist/, build/ and caches
	rm -rf $(VENV) $(PACKAGE_VENV) $(BUILD_VENV) $(CHECKOV_VENV) $(AWSCLI_VENV) $(DEMO_VENV) $(ROOT)/dist $(ROOT)/build \
		$(ROOT)/cdk.out $(CDK_CLI_PREFIX) $(ROOT)/.mypy_cache \
		$(ROOT)/.ruff_cache $(ROOT)/.pytest_cache $(ROOT)/.hypothesis
