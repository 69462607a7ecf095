#!/usr/bin/env bash
# The TUI's cost, measured: the same search (configs/bench.toml, N steps) once in the TUI inside a
# real terminal (tmux, 160×48) and once headless. Prints the UI thread's CPU time (from
# /proc/self/task/<tid>/stat, written by the TUI to log.txt at exit) and ms/step of both runs
# (from metrics.jsonl, steps 10..N, so start-up is left out).
#
#   scripts/bench-ui.sh [STEPS]        (default 60; needs tmux and a release build)
set -euo pipefail
cd "$(dirname "$0")/.."
steps=${1:-60}
bin=$PWD/target/release/nasp-tui
tmp=$(mktemp -d)
trap 'tmux kill-session -t nasp-bench-ui 2>/dev/null || true; rm -rf "$tmp"' EXIT
args=(search --config configs/bench.toml --set train.log_every=10 --max-steps "$steps")

ms_per_step() {  # metrics.jsonl → ms/step between step 10 and the last step line
  python3 - "$1" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if '"step"' in l]
rows = [r for r in rows if r.get("kind") == "step"]
a, b = rows[0], rows[-1]
print(f"{1000 * (b['elapsed_s'] - a['elapsed_s']) / (b['global_step'] - a['global_step']):.1f}")
PY
}

tmux new-session -d -s nasp-bench-ui -x 160 -y 48 "$bin ${args[*]} --run-dir $tmp/tui; echo \$? > $tmp/tui.exit; sleep 60"
# Wait for the run to reach its last step (FINISHED stays on screen until q).
until grep -q "\"global_step\":$steps" "$tmp/tui/metrics.jsonl" 2>/dev/null; do sleep 1; done
sleep 2
tmux send-keys -t nasp-bench-ui q
sleep 1
tmux send-keys -t nasp-bench-ui d 2>/dev/null || true
until [ -f "$tmp/tui.exit" ]; do sleep 1; done
"$bin" "${args[@]}" --headless --run-dir "$tmp/headless" >/dev/null
echo "steps: $steps on configs/bench.toml ($(nproc) cores)"
echo "TUI exit code: $(cat "$tmp/tui.exit")"
grep "ui thread cpu" "$tmp/tui/log.txt" | tail -1
tui=$(ms_per_step "$tmp/tui/metrics.jsonl")
headless=$(ms_per_step "$tmp/headless/metrics.jsonl")
echo "ms/step with the TUI: $tui, headless: $headless, ratio $(python3 -c "print(f'{$tui / $headless:.3f}')")"
