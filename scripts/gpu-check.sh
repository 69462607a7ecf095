#!/usr/bin/env bash
# GPU check: run on a machine with an NVIDIA GPU and PyTorch 2.11 (its torch/lib is the libtorch
# the binary was linked against) but no Rust toolchain, with a nasp-tui binary built elsewhere.
#
#   scripts/gpu-check.sh [BINARY] [CIFAR_DIR]
#     BINARY     default: target/release/nasp-tui (or .device/nasp-tui when that exists)
#     CIFAR_DIR  a folder holding at least data_batch_1.bin (default .device/cifar10)
#
# Prints: CUDA detected and the device name; a headless NASP search of 300 steps on the paper's
# supernet (C=16, 8 cells, batch 64) with ms/step and the GPU memory the resources pane shows; two
# full epochs of the paper setting (25,000 training images, synthetic pixels; the first includes
# cuDNN's one-time tuning) in the 12-op NASP space, with the defaults and without the CUDA graph;
# `bench` for nasp/darts1/darts2 and for each speed switch; and the bf16 effect. Each phase has a
# time limit; "2 3 7 6 5" with the tests took 542 s on an H200 (BENCHMARKS.md, 2026-12-04), so
# pick PHASES to fit the device time at hand. With $OUT set, the log is also written to $OUT/gpu-check.log.
#
# PHASES selects phases (default "1 2 3 4 5 7"): 1 search, 2 full epochs (12-op space, with the
# defaults and with cuda_graphs=false), 3 bench, 4 bf16, 5 the TUI itself on the GPU (inside `script`, a
# pseudo-terminal), whose resources pane must show the GPU; 7 the PyTorch peers on the GPU beside
# bench (NASP, DARTS first order) and bench --train (PEERS names their folder, default
# .device/peers); 8 NAS-Bench-201 searches on the GPU (nasp and darts1, 2 seeds each, at once;
# NB201_EPOCHS, default 10, NB201_LIMIT seconds at most, default 420); not by default: 2d the full epochs in
# DARTS's 7 ops, 6 `bench --profile`, the device time per kernel of a NASP step.
# NVML_TEST_BIN may name the library's test binary to also run its GPU-only tests (NVML, CUDA
# graph, cuDNN batch norm). Phase 3 also benches the GPU speed switches against the defaults
# (cuda_graphs off, cudnn_batch_norm on, both); SWITCHES (';'-separated sets of overrides)
# replaces that list. SETS adds config overrides to the searches of phases 1 and 2 and the
# benches of phases 3, 4 and 6, e.g. SETS="cudnn_batch_norm=true".
set -uo pipefail
cd "$(dirname "$0")/.."
bin=${1:-}
if [ -z "$bin" ]; then
  if [ -x .device/nasp-tui ]; then bin=.device/nasp-tui; else bin=target/release/nasp-tui; fi
fi
data=${2:-.device/cifar10}
log=${OUT:+$OUT/gpu-check.log}
log=${log:-/dev/null}
say() { echo "$@" | tee -a "$log"; }
run() {  # run LIMIT_SECONDS CMD... : prints and logs the command and its output
  local limit=$1; shift
  say "\$ $*"
  timeout "$limit" "$@" 2>&1 | tee -a "$log"
  local rc=${PIPESTATUS[0]}
  [ "$rc" = 124 ] && say "(stopped after ${limit} s)"
  return 0
}

py=${PYTHON:-python3}
libtorch=$("$py" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))' 2>/dev/null) || {
  say "gpu-check: no PyTorch found for $py; set PYTHON to the python that has torch 2.11"; exit 1; }
export LD_LIBRARY_PATH="$libtorch${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export NASP_TUI_DATA="$data"
say "== gpu-check $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(hostname)"
say "torch: $("$py" -c 'import torch; print(torch.__version__, "cuda", torch.version.cuda)')  libtorch: $libtorch"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee -a "$log"

phases=" ${PHASES:-1 2 3 4 5 7} "
extra=()
for kv in ${SETS:-}; do extra+=(--set "$kv"); done
on() { [[ "$phases" == *" $1 "* ]]; }
run 20 "$bin" info
# The library's GPU-only tests: NVML, and each speed switch against plain eager steps (one at a
# time: the profiler test must see only its own kernels).
if [ -n "${NVML_TEST_BIN:-}" ]; then run 150 "$NVML_TEST_BIN" --ignored --test-threads=1 nvml_reads_the_gpu cuda_graph cudnn_batch_norm all_gpu_switches; fi
run1=$(mktemp -d)
on 1 && say "== 1. NASP, paper supernet (C=16, 8 cells, 12-op NASP space, batch 64), CIFAR-10 data_batch_1, 300 steps"
on 1 && run 140 "$bin" search --headless --config configs/cifar10-nasp.toml --data-dir "$data" --run-dir "$run1" \
  --set data.limit=10000 --set checkpoint.every_epochs=0 --max-steps 300 ${extra[@]+"${extra[@]}"}
# The GPU speed switches (same results, different kernels): phase 2 runs the epochs with the
# defaults (cuda_graphs on) and with the graph off, phase 3 benches each against the defaults.
epochs() {  # epochs CONFIG [KEY=VALUE...]: two full epochs of the paper setting
  local cfg=$1; shift
  local sets=(); for kv in "$@"; do sets+=(--set "$kv"); done
  say "== 2. two full epochs of the paper setting, configs/$cfg.toml: 50,000 images (25,000 train / 25,000 valid), NASP${*:+, with $*}"
  run 170 "$bin" search --headless --config "configs/$cfg.toml" --run-dir "$(mktemp -d)" \
    --set data.dataset='"synthetic"' --set data.limit=50000 --set checkpoint.every_epochs=0 --max-steps 782 \
    ${sets[@]+"${sets[@]}"} ${extra[@]+"${extra[@]}"}
}
on 2 && epochs cifar10-nasp
on 2 && epochs cifar10-nasp cuda_graphs=false
on 2d && epochs cifar10-nasp-darts
on 3 && say "== 3. bench nasp / darts1 / darts2 on one supernet (C=16, 8 cells, DARTS's 7 ops without none, batch 64)"
on 3 && run 130 "$bin" bench --config configs/cifar10-nasp-darts.toml --algo nasp,darts1,darts2 --steps 10 --warmup 3 ${extra[@]+"${extra[@]}"}
on 3 && run 60 "$bin" bench --config configs/cifar10-nasp.toml --algo nasp --steps 20 --warmup 5 ${extra[@]+"${extra[@]}"}
IFS=';' read -ra variants <<< "${SWITCHES:-cuda_graphs=false;cudnn_batch_norm=true;cuda_graphs=false cudnn_batch_norm=true}"
for sw in "${variants[@]}"; do
  on 3 && say "== 3b. the same with $sw"
  sets=(); for kv in $sw; do sets+=(--set "$kv"); done
  on 3 && run 60 "$bin" bench --config configs/cifar10-nasp.toml ${sets[@]+"${sets[@]}"} --algo nasp --steps 20 --warmup 5
done
# The PyTorch peers on the GPU (scripts/peer-cuda.py runs them with CUDA as the default device and
# a synchronising clock): NASP and DARTS first order on the same 7-op supernet, and the
# evaluation network's training step (bench --train).
peers=${PEERS:-.device/peers}
if on 7 && [ -f "$peers/peer_step.py" ]; then
  say "== 7. beside the PyTorch peers on the GPU (7-op supernet; the evaluation network, bench --train)"
  run 150 env PEER="$peers/peer_step.py" "$bin" bench --config configs/cifar10-nasp-darts.toml --algo nasp,darts1 \
    --steps 10 --warmup 3 --peer scripts/peer-cuda.py ${extra[@]+"${extra[@]}"}
  run 120 env PEER="$peers/peer_train.py" "$bin" bench --train --steps 10 --warmup 3 --peer scripts/peer-cuda.py
elif on 7; then
  say "== 7. skipped: no peers in $peers (make device copies them there)"
fi
# NAS-Bench-201 on the GPU: NASP and DARTS first order, 2 seeds each, all four at once (one GPU
# holds them), on the carried data_batch_1 (10,000 images: 5,000 / 5,000; the whole training set
# does not fit the device's carry limit), NB201_EPOCHS epochs (default 10), then the report with
# the benchmark's accuracies of the found cells.
if on 8; then
  say "== 8. NB201 search on the GPU: nasp and darts1, seeds 1-2, ${NB201_EPOCHS:-10} epochs, data_batch_1"
  sweep8=$(mktemp -d)/nb201
  run 20 "$bin" sweep --config configs/nb201-nasp.toml --seeds 2 --grid 'algorithm="nasp","darts1"' \
    --set data.dir="\"$data\"" --set data.limit=10000 --set train.epochs="${NB201_EPOCHS:-10}" \
    --set checkpoint.every_epochs=0 --parallel 4 --dir "$sweep8"
  t0=$(date +%s)
  while [ -f "$sweep8/launcher.json" ] && [ $(( $(date +%s) - t0 )) -lt "${NB201_LIMIT:-420}" ]; do sleep 5; done
  run 20 "$bin" ls "$sweep8"
  run 20 "$bin" report "$sweep8"
  [ -n "${OUT:-}" ] && "$bin" report "$sweep8" --format json > "$OUT/nb201-report.json" 2>/dev/null
fi
on 6 && say "== 6. where the device time of a NASP step goes (libtorch profiler, 12-op space)"
on 6 && run 60 "$bin" bench --config configs/cifar10-nasp.toml --algo nasp --steps 5 --warmup 6 --profile ${extra[@]+"${extra[@]}"}
on 4 && say "== 4. bf16 autocast (precision = bf16), same supernet"
on 4 && run 60 "$bin" bench --config configs/cifar10-nasp-darts.toml --set precision='"bf16"' --algo nasp,darts1 --steps 10 --warmup 3 ${extra[@]+"${extra[@]}"}
if on 5; then
  say "== 5. the TUI on the GPU for 40 s (160×48 pseudo-terminal), then SIGTERM"
  run5=$(mktemp -d)
  TERM=xterm-256color timeout 90 script -qfec "stty cols 160 rows 48; $bin search --config ${TUI_CONFIG:-configs/cifar10-nasp.toml} --data-dir $data --run-dir $run5 --set data.limit=10000; echo TUI_EXIT=\$?" "$run5/screen" >/dev/null 2>&1 &
  sleep 40
  pkill -TERM -f "^$bin search .*--run-dir $run5" || true
  sleep 15
  # Whatever is still there after the checkpoint window (a very slow step) does not outlive us.
  pkill -KILL -f "^$bin search .*--run-dir $run5" || true
  # The screen stream without escape sequences: what the resources pane and status showed.
  sed -e 's/\x1b\[[0-9;?]*[A-Za-z]//g' "$run5/screen" | tr -s ' ' > "$run5/screen.txt"
  grep -o 'GPU[0-9] [^│]*\|proc [^│]*\|[0-9.]* ms/step\|TUI_EXIT=[0-9]*\|cuda:0' "$run5/screen.txt" | sort | uniq -c | sort -rn | head -12 | tee -a "$log"
  grep "ui thread cpu" "$run5/log.txt" | tee -a "$log"
  [ -n "${OUT:-}" ] && cp "$run5/screen.txt" "$OUT/tui-screen.txt"
fi
say "== done $(date -u +%H:%M:%SZ)"
