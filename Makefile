# The two commands the README promises, plus the pieces they are made of.
#   make run   — set up libtorch (once) and open the TUI on configs/default.toml
#   make test  — set up libtorch (once) and run the whole test suite
SHELL := /bin/bash
DATA ?= $(if $(wildcard ../shared/data/cifar10/data_batch_1.bin),../shared/data/cifar10,)

.PHONY: setup build run test lint bench

setup:
	bash scripts/setup.sh

build: setup
	cargo build --release

run: build
	$(if $(DATA),NASP_TUI_DATA=$${NASP_TUI_DATA:-$(DATA)},) ./target/release/nasp-tui

# One libtorch thread per test thread: several OpenMP pools spinning on two cores stall each other.
test: setup
	OMP_NUM_THREADS=1 cargo test --release

lint: setup
	cargo fmt --all -- --check
	cargo clippy --all-targets -- -D warnings

bench: build
	./target/release/nasp-tui bench --config configs/bench.toml --algo nasp,darts1,darts2 --steps 10 --peer ../shared/bench/peer_step.py
