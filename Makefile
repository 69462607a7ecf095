# The two commands the README promises, plus the pieces they are made of.
#   make run   — set up libtorch (once) and open the TUI on configs/default.toml
#   make test  — set up libtorch (once) and run the whole test suite
SHELL := /bin/bash
DATA ?= $(if $(wildcard ../shared/data/cifar10/data_batch_1.bin),../shared/data/cifar10,)

.PHONY: setup build run test lint bench device

setup:
	bash scripts/setup.sh

build: setup
	cargo build --release

run: build
	$(if $(DATA),NASP_TUI_DATA=$${NASP_TUI_DATA:-$(DATA)},) ./target/release/nasp-tui

# No OMP_NUM_THREADS needed: each test thread that runs libtorch in a test process uses one
# libtorch thread (engine::one_libtorch_thread, tests/common), and the tests that compare a
# child's numbers bitwise or against the check's calibrated seeds fix the child's count themselves.
test: setup
	cargo test --release

lint: setup
	cargo fmt --all -- --check
	cargo clippy --all-targets -- -D warnings

bench: build
	./target/release/nasp-tui bench --config configs/bench.toml --algo nasp,darts1,darts2 --steps 10 --peer ../shared/bench/peer_step.py

# What scripts/gpu-check.sh needs on a GPU machine without Rust, in the git-ignored .device/:
# the stripped binary, the library's test binary (its GPU-only tests), one CIFAR-10 batch and the
# PyTorch peers (phase 7 runs them on the GPU).
# Then, there: NVML_TEST_BIN=.device/nasp_tui-tests scripts/gpu-check.sh .device/nasp-tui .device/cifar10
device: build
	mkdir -p .device/cifar10
	strip -o .device/nasp-tui target/release/nasp-tui
	cargo test --release --lib --no-run --message-format=json 2>/dev/null \
	  | python3 -c 'import json,sys; print([m["executable"] for m in map(json.loads, sys.stdin) if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["kind"] == ["lib"]][-1])' \
	  | xargs -I{} strip -o .device/nasp_tui-tests {}
	mkdir -p .device/peers
	$(if $(wildcard ../shared/bench/peer_step.py),cp ../shared/bench/peer_step.py ../shared/bench/peer_train.py .device/peers/,@echo "no peers in ../shared/bench: gpu-check skips phase 7")
	$(if $(DATA),cp $(DATA)/data_batch_1.bin .device/cifar10/,@echo "no CIFAR-10 found: copy data_batch_1.bin into .device/cifar10/")
