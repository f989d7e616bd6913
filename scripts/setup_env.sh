#!/usr/bin/env bash
# Create (or reuse) the virtual environment .venv with sceneparse installed in it.
# Usage: scripts/setup_env.sh [EXTRAS]      e.g. scripts/setup_env.sh dev,demo
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"
PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
# The CPU build of PyTorch, pinned: an unpinned torch pulls a multi-GB CUDA build.
.venv/bin/python -m pip install -q "torch==2.13.0"
.venv/bin/python -m pip install -q -e ".${extras:+[$extras]}"
