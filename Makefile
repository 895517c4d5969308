# The two commands a newcomer needs: `make dev` and `make test`. Both set up what they need.
# The deploy targets (synth, deploy, bootstrap) need only Python 3 and Node: no root, no test tools.
SHELL := /bin/bash
.DEFAULT_GOAL := help
# The pinned uv lives in the repository (scripts/get_uv.py installs it), so nothing is
# installed into the system Python and no uv elsewhere on PATH is used by mistake.
TOOLS_BIN := $(CURDIR)/.tools/bin
UV := $(TOOLS_BIN)/uv
export PATH := $(TOOLS_BIN):$(CURDIR)/node_modules/.bin:$(PATH)
export UV_FROZEN := 1
PYTHON3 ?= python3

DEBIAN_PACKAGES := chromium xmlsec1 slapd ldap-utils simplesamlphp php-cli php-xml php-mbstring

.PHONY: help setup system-packages uv python-env node-env deploy-env dev test lint unit integration e2e infra bench synth deploy bootstrap clean

help:
	@echo "make dev        set up and run the local stack on http://$${IDP_HOST:-127.0.0.1}:$${IDP_PORT:-8000}"
	@echo "make test       set up and run every test (lint, types, unit, integration, e2e, infra)"
	@echo "make unit       run the unit tests alone (also: make integration, make e2e, make infra)"
	@echo "make bench      run the benchmarks (BENCHMARKS.md) and write bench/results/latest.json"
	@echo "make bootstrap  cdk bootstrap the account and region of your current AWS credentials (once)"
	@echo "make synth      synthesise the CloudFormation template into cdk.out/"
	@echo "make deploy     cdk deploy into the AWS account of your current credentials"

setup: system-packages python-env node-env

# Debian packages the tests and the local stack use: Chromium for the browser tests,
# xmlsec1 for pysaml2, the service provider our assertions are checked against, and
# OpenLDAP's slapd (with ldap-utils) for the directory tests. Those start slapd processes
# of their own (tests/support/slapd.py); the package's system service is not used.
# SimpleSAMLphp (with PHP's CLI and its XML and mbstring extensions) is a SAML service provider
# for a browser test, served by PHP's built-in server (tests/support/simplesamlphp.py).
# npm (which brings Debian's Node) only when there is none: `npm ci` then installs the pinned
# Node 22, and a Node installed another way (NodeSource, nvm) is left alone.
system-packages:
	@missing=""; for p in $(DEBIAN_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	command -v npm >/dev/null 2>&1 || missing="$$missing npm"; \
	if [ -n "$$missing" ]; then \
		echo "Installing Debian packages:$$missing"; \
		if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi; \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

uv:
	@$(PYTHON3) scripts/get_uv.py

# The whole locked environment: run-time packages, the deploy group and the test tools, with
# their bytecode: where PYTHONDONTWRITEBYTECODE is set (CI) every Python process the suite
# starts (xdist workers, idp CLI and local-stack children) would otherwise compile boto3, moto
# and the CDK from source each time.
python-env: uv
	@$(UV) sync --quiet --compile-bytecode

# Node 22 and the pinned aws-cdk CLI, both from npm (package.json), into node_modules/.
node-env:
	@[ -x node_modules/.bin/cdk ] && [ -x node_modules/.bin/node ] || npm ci --no-audit --no-fund --loglevel=error

# What the CDK app needs and nothing more (scripts/cdk_app.py, which cdk.json runs, does the same).
deploy-env: node-env
	@$(PYTHON3) scripts/cdk_app.py --setup-only

dev: setup
	$(UV) run idp local

lint: python-env
	$(UV) run ruff check .
	$(UV) run ruff format --check .
	$(UV) run mypy layers/core src functions infra scripts
	$(UV) run mypy tests bench

# The suite runs in pytest-xdist workers, each with its own embedded AWS, slapd and ports
# (tests/conftest.py says what runs together), one per core: what the tests wait on (moto in
# the worker itself, slapd, Chromium, Node) needs the CPU too, so on this 2-core machine four
# workers were slower than two on the same tests, and starved the embedded AWS under load.
TEST_WORKERS ?= auto
PYTEST := $(UV) run pytest -n $(TEST_WORKERS)

# With a terminal summary of the branch coverage (pyproject.toml says what is measured).
test: setup lint
	$(PYTEST) --cov --cov-report=term:skip-covered

# One kind of test each, chosen by the marker tests/conftest.py gives every test of its
# directory; pytest's exit status 5 (nothing collected, e.g. a mistyped marker) fails them.
unit: python-env
	$(PYTEST) -m unit tests/unit
integration: python-env
	$(PYTEST) -m integration tests/integration
e2e: setup
	$(PYTEST) -m e2e tests/e2e
infra: python-env node-env
	$(PYTEST) -m infra tests/infra

bench: setup
	$(UV) run python -m bench

synth: deploy-env
	cdk synth --quiet $(CDK_ARGS)

deploy: deploy-env
	cdk deploy $(CDK_ARGS)

bootstrap: deploy-env
	cdk bootstrap $(CDK_ARGS)

clean:
	rm -rf build cdk.out .pytest_cache .mypy_cache .ruff_cache .idp

# The README's rendered diagrams (docs/images/*.svg, drawn by docs/diagrams): the architecture,
# and the CloudWatch dashboard's layout as the synthesised stack defines it.
.PHONY: diagrams
diagrams: synth python-env
	$(UV) run python -m docs.diagrams --template cdk.out/ServerlessIdp.template.json
