# The two commands a newcomer needs: `make dev` and `make test`. Both set up what they need.
SHELL := /bin/bash
.DEFAULT_GOAL := help
export PATH := $(CURDIR)/node_modules/.bin:$(PATH)
export UV_FROZEN := 1

DEBIAN_PACKAGES := chromium xmlsec1 slapd ldap-utils
UV := $(shell command -v uv 2>/dev/null || echo $(HOME)/.local/bin/uv)

.PHONY: help setup system-packages python-env node-env dev test lint unit integration e2e infra bench synth deploy clean

help:
	@echo "make dev     set up and run the local stack on http://$${IDP_HOST:-127.0.0.1}:$${IDP_PORT:-8000}"
	@echo "make test    set up and run every test (lint, types, unit, integration, e2e, infra)"
	@echo "make bench   run the benchmarks (BENCHMARKS.md) and write bench/results/latest.json"
	@echo "make deploy  cdk deploy into the AWS account of your current credentials"

setup: system-packages python-env node-env

# Debian packages the tests and the local stack use: Chromium for the browser tests,
# xmlsec1 for pysaml2, the service provider our assertions are checked against, and
# OpenLDAP's slapd (with ldap-utils) for the directory tests. Those start slapd processes
# of their own (tests/support/slapd.py); the package's system service is not used.
system-packages:
	@missing=""; for p in $(DEBIAN_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "Installing Debian packages:$$missing"; \
		if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi; \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

python-env:
	@command -v uv >/dev/null 2>&1 || [ -x "$(UV)" ] || python3 -m pip install --quiet uv
	@$(UV) sync --frozen --quiet

node-env:
	@[ -x node_modules/.bin/cdk ] && [ -x node_modules/.bin/node ] || npm ci --no-audit --no-fund --loglevel=error

dev: setup
	$(UV) run idp local

lint: python-env
	$(UV) run ruff check .
	$(UV) run ruff format --check .
	$(UV) run mypy layers/core src functions infra

test: setup lint
	$(UV) run pytest

unit: python-env
	$(UV) run pytest tests/unit
integration: python-env
	$(UV) run pytest tests/integration
e2e: setup
	$(UV) run pytest tests/e2e
infra: setup
	$(UV) run pytest tests/infra

bench: setup
	$(UV) run python -m bench

synth: setup
	cdk synth --quiet $(CDK_ARGS)

deploy: setup
	cdk deploy $(CDK_ARGS)

clean:
	rm -rf build cdk.out .pytest_cache .mypy_cache .ruff_cache .idp
