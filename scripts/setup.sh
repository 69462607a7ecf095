#!/usr/bin/env bash
# Installs libtorch 2.11.0 (from the PyPI wheel torch==2.11.0, which pairs with tch 0.24) into a
# versioned virtual environment outside the checkout, then writes `.libtorch-env` in the checkout
# with the LIBTORCH variables the build needs. A second run finds the environment and skips the
# download. The same environment's python runs `../shared/bench/peer_step.py` for benchmarks.
#
# Usage: scripts/setup.sh            (prints the path of the environment on its last line)
set -euo pipefail

TORCH_VERSION=2.11.0
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache=${NASP_TUI_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/nasp-tui}
py=${PYTHON:-python3}
pyver=$("$py" -c 'import sys; print(f"{sys.version_info[0]}{sys.version_info[1]}")')
venv="$cache/torch-$TORCH_VERSION-py$pyver"
stamp="$venv/.nasp-tui-complete"

if [ -f "$stamp" ]; then
  echo "setup: libtorch $TORCH_VERSION already installed in $venv (skipping download)"
else
  echo "setup: installing torch==$TORCH_VERSION into $venv (a few GB, once)"
  mkdir -p "$cache"
  rm -rf "$venv"
  "$py" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "torch==$TORCH_VERSION"
  touch "$stamp"
fi

libtorch=$("$venv/bin/python" - <<'PY'
import importlib.util, os
spec = importlib.util.find_spec("torch")
print(os.path.dirname(spec.origin))
PY
)
# The CUDA graph shim (csrc/cuda_graph.cpp) compiles against CUDA's headers; the wheel's nvidia
# packages ship all but the small `crt/` set, which nvidia-cuda-crt (≈ 170 kB) adds. Matches the
# CUDA 13.0 runtime torch 2.11 comes with.
if [ -d "$libtorch/../nvidia/cu13/include" ] && [ ! -f "$libtorch/../nvidia/cu13/include/crt/host_config.h" ]; then
  echo "setup: adding CUDA's crt headers (nvidia-cuda-crt) for the CUDA graph shim"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps "nvidia-cuda-crt==13.0.88" ||
    echo "setup: warning: nvidia-cuda-crt not installed; the build goes on without CUDA graphs" >&2
fi
# NAS-Bench-201's own network (xautodl's TinyNetwork), for scripts/nb201-load.py and its test:
# pure Python on top of torch, so without its other dependencies.
if ! "$venv/bin/python" -c "import xautodl" 2>/dev/null; then
  echo "setup: adding NAS-Bench-201's network code (xautodl, no dependencies)"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps "xautodl==1.0.0"
fi
if [ ! -f "$libtorch/lib/libtorch_cpu.so" ]; then
  echo "setup: $libtorch/lib/libtorch_cpu.so is missing; remove $venv and run scripts/setup.sh again" >&2
  exit 1
fi

cat >"$root/.libtorch-env" <<ENV
export LIBTORCH="$libtorch"
export LIBTORCH_CXX11_ABI=1
export NASP_TUI_PYTHON="$venv/bin/python"
ENV
echo "setup: wrote .libtorch-env (LIBTORCH=$libtorch)"

# Plain `cargo build/test/clippy` read these through cargo's [env] table (the file is git-ignored
# because it holds this machine's path).
mkdir -p "$root/.cargo"
cat >"$root/.cargo/config.toml" <<CFG
# Written by scripts/setup.sh; not committed.
[env]
LIBTORCH = "$libtorch"
LIBTORCH_CXX11_ABI = "1"
NASP_TUI_PYTHON = "$venv/bin/python"
CFG
echo "setup: wrote .cargo/config.toml"
