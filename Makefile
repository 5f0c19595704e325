# kubelab: two commands on a fresh machine.
#   make run   installs what is missing, then starts kubelab and prints the URL
#   make test  installs what tests need, then runs lint, type checks and the whole suite
# Every target depends on an idempotent `make install`; a second run reuses what is there.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
LABEXT := server/kubelab/server/labextension
HUB_DIR := .hub
CHP := $(HUB_DIR)/chp/node_modules/.bin/configurable-http-proxy

export PATH := $(BIN):$(PATH)
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD := 1
export PIP_DISABLE_PIP_VERSION_CHECK := 1

TS_SOURCES := $(shell find extension/src extension/style extension/schema -type f 2>/dev/null)

.PHONY: help install run run-lab test lint test-deps k8s-bin clean

help:
	@echo "make run    install (if needed) and start JupyterHub + kubelab on http://127.0.0.1:8000"
	@echo "make run-lab  JupyterLab alone with kubelab (no hub), on http://127.0.0.1:8888"
	@echo "make test   install test dependencies and run lint + the whole test suite"
	@echo "make lint   ruff, prettier, eslint and tsc only"
	@echo "make k8s-bin  build kube-apiserver and etcd for the tests (once; part of make test)"
	@echo "make clean  remove the venv, node_modules and build output"

install: $(VENV)/.kubelab-installed

# 1. A venv with the tools that build the front end (jlpm ships with jupyterlab).
#    torch goes first, pinned: an unpinned torch pulls GBs of CUDA wheels.
$(VENV)/.bootstrapped:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -U pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q "jupyterlab>=4.6,<5" "hatchling>=1.5" "hatch-jupyter-builder>=0.9"
	touch $@

# 2. Node dependencies, exactly as yarn.lock says.
node_modules/.yarn-state.yml: package.json yarn.lock .yarnrc.yml $(VENV)/.bootstrapped
	jlpm install
	touch $@

# 3. The labextension (TypeScript -> prebuilt federated extension).
$(LABEXT)/package.json: node_modules/.yarn-state.yml tsconfig.json $(TS_SOURCES)
	jlpm build

# 4. kubelab itself, editable, with its Python dependencies; the labextension is
#    linked so that a rebuild shows up on reload.
$(VENV)/.kubelab-installed: pyproject.toml $(VENV)/.bootstrapped $(LABEXT)/package.json
	@# pip must not write its copy through an old link into the build output
	rm -rf $(VENV)/share/jupyter/labextensions/kubelab $(LABEXT)/install.json
	$(BIN)/pip install -q --no-build-isolation -e ".[ml,serving,test,hub]"
	rm -rf $(VENV)/share/jupyter/labextensions/kubelab
	ln -s $(CURDIR)/$(LABEXT) $(VENV)/share/jupyter/labextensions/kubelab
	jupyter server extension list 2>&1 | grep "kubelab.server.*enabled" >/dev/null
	touch $@

# The real kfp SDK, in a venv of its own (it pins kubernetes<31): the compiler tests
# compare kubelab's IR with kfp's, and benchmarks/ race kfp.local.
.venv-kfp/.installed:
	$(PYTHON) -m venv .venv-kfp
	.venv-kfp/bin/pip install -q kfp kfp-kubernetes
	touch $@

# A real kube-apiserver and etcd for the tests (tests/k8s_fixtures.py), built with Go from
# the module proxy at the versions pinned in tests/k8s/go.mod. The stamp names both
# versions and a digest of the module's files (not their times, which a fresh clone
# resets): a second run, or a restored .k8s/ cache, reuses the binaries; a change rebuilds.
K8S_MOD := tests/k8s
K8S_VERSION := $(shell awk '$$1 == "k8s.io/kubernetes" {print $$2}' $(K8S_MOD)/go.mod)
ETCD_VERSION := $(shell awk '$$1 == "go.etcd.io/etcd/server/v3" {print $$2}' $(K8S_MOD)/go.mod)
K8S_BIN := .k8s/bin
K8S_SOURCES := $(K8S_MOD)/go.mod $(K8S_MOD)/go.sum $(sort $(wildcard $(K8S_MOD)/cmd/*/main.go))
K8S_DIGEST := $(shell cat $(K8S_SOURCES) | sha256sum | cut -c1-12)
K8S_STAMP := $(K8S_BIN)/.built-kube-apiserver-$(K8S_VERSION)-etcd-$(ETCD_VERSION)-$(K8S_DIGEST)
K8S_MINOR := $(word 2,$(subst ., ,$(K8S_VERSION)))
K8S_LDFLAGS := -s -w -X k8s.io/component-base/version.gitVersion=$(K8S_VERSION) \
	-X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$(K8S_MINOR) \
	-X k8s.io/component-base/version.gitTreeState=clean

k8s-bin: $(K8S_STAMP)

$(K8S_STAMP):
	@command -v go >/dev/null || { echo "Go is needed to build kube-apiserver and etcd for the tests"; exit 1; }
	cd $(K8S_MOD) && go build -trimpath -buildvcs=false -ldflags "$(K8S_LDFLAGS)" \
		-o $(CURDIR)/$(K8S_BIN)/ ./cmd/kube-apiserver ./cmd/etcd
	rm -f $(K8S_BIN)/.built-*
	touch $@

# Things only the tests need: Debian's Chromium (never a Playwright browser download),
# configurable-http-proxy for the JupyterHub tests, the reference kfp SDK and the
# Kubernetes API server.
# The Go build is CPU-bound and the installs mostly wait on the network: run them side by side.
test-deps:
	@$(MAKE) --no-print-directory -j3 install .venv-kfp/.installed k8s-bin
	@command -v chromium >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }
	@test -x $(CHP) || npm install --silent --no-audit --no-fund --prefix $(HUB_DIR)/chp configurable-http-proxy >/dev/null

lint: install
	ruff check .
	ruff format --check .
	jlpm run lint:check

# Two pytest processes: Playwright's sync API and pytest-jupyter each own an event loop.
# pytest exits 5 when it collects no test, which fails the target as it should.
test: test-deps lint
	pytest tests
	pytest ui-tests

# JupyterHub on http://127.0.0.1:8000 with the local spawner, a local OIDC provider with
# demo users and the example profiles; it prints the URL and the demo logins.
run: install
	@test -x $(CHP) || npm install --silent --no-audit --no-fund --prefix $(HUB_DIR)/chp configurable-http-proxy >/dev/null
	$(BIN)/python deploy/local/run_hub.py --port 8000

# JupyterLab alone (no hub, no login), for working on the extension.
run-lab: install
	@mkdir -p .run/work
	@cp -n examples/*.ipynb .run/work/ 2>/dev/null || true
	jupyter lab --no-browser --ip=127.0.0.1 --port=8888 --ServerApp.root_dir=.run/work \
		$$( [ "$$(id -u)" = 0 ] && echo --allow-root )

clean:
	rm -rf $(VENV) node_modules extension/lib tsconfig.tsbuildinfo $(LABEXT) $(HUB_DIR) .run .k8s
