#!/usr/bin/env bash
# Create (or reuse) the virtual environment .venv with sceneparse installed in it, saying what it
# does at each step.
# Usage: scripts/setup_env.sh [EXTRAS]      e.g. scripts/setup_env.sh dev,demo
#
# PyTorch 2.13.0 comes from, in this order:
#   1. the sources pip is configured with, without any index (a local wheel folder named by
#      PIP_FIND_LINKS or `pip config`), if one holds torch 2.13.0;
#   2. on a machine without an NVIDIA GPU (no nvidia-smi), PyTorch's CPU index
#      (https://download.pytorch.org/whl/cpu): the CPU build, about 200 MB;
#   3. else, or if that index cannot be reached, PyPI, whose torch 2.13.0 for Linux is the CUDA
#      build (about 20 nvidia/cuda/triton packages, several GB).
# The script prints which one it used.
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"
PY="${PYTHON:-python3}"
TORCH="torch==2.13.0"
CPU_INDEX="https://download.pytorch.org/whl/cpu"
start=$SECONDS

step() { printf '[setup %3ds] %s\n' "$((SECONDS - start))" "$*"; }
# pip, without the warnings this machine's pip configuration prints for index folders that do
# not exist ("Location ... is ignored"): they say nothing about this project and drown the rest.
pip() { .venv/bin/python -m pip "$@" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2); }
# The installed version, read from its metadata (torch may not import yet: its dependencies come later).
torch_version() { .venv/bin/python -c "import importlib.metadata as m; print(m.version('torch'))" 2>/dev/null || true; }

# torch 2.13.0 has wheels for Python 3.10 and newer only: say so, not pip's "no matching distribution".
if [ ! -x .venv/bin/python ] && ! "$PY" -c "import sys; sys.exit(sys.version_info < (3, 10))" 2>/dev/null; then
    found="$("$PY" --version 2>/dev/null)" || found="not found"
    echo "setup_env.sh: sceneparse needs Python 3.10 or newer (torch 2.13.0); $PY: $found" >&2
    echo "  Give another one: PYTHON=python3.11 scripts/setup_env.sh ${extras}" >&2
    exit 1
fi
if [ ! -x .venv/bin/python ]; then
    step "creating .venv with $("$PY" --version 2>&1)"
    "$PY" -m venv .venv
fi
# Editable installs of a pyproject.toml project need pip 21.3 or newer.
if ! .venv/bin/python -c "import pip, sys; sys.exit(tuple(map(int, pip.__version__.split('.')[:2])) < (21, 3))"; then
    step "upgrading pip"
    pip install -q --upgrade pip
fi

# Nothing to do when this set of extras was installed from the same setup.py and torch is there.
stamp=".venv/.sceneparse-setup-${extras:-base}"
want="$(cat setup.py pyproject.toml | cksum) $TORCH"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ "$(torch_version | cut -d+ -f1)" = "2.13.0" ]; then
    step ".venv is up to date (sceneparse ${extras:+[$extras] }and torch $(torch_version)); rm $stamp to reinstall"
    exit 0
fi

have="$(torch_version)"
if [ "${have%%+*}" = "2.13.0" ]; then
    step "torch $have already in .venv"
else
    step "installing $TORCH: first from the configured local wheels (pip --no-index; find-links: ${PIP_FIND_LINKS:-$(pip config get global.find-links 2>/dev/null || echo none)})"
    if pip install -q --no-index --no-deps "$TORCH" >/dev/null 2>&1; then
        step "torch $(torch_version) installed from the local wheels"
    elif ! command -v nvidia-smi >/dev/null 2>&1; then
        step "no local wheel; no NVIDIA GPU (no nvidia-smi): the CPU build from $CPU_INDEX (about 200 MB)"
        if ! pip install --no-deps --index-url "$CPU_INDEX" --timeout 15 --retries 1 "$TORCH"; then
            step "$CPU_INDEX cannot be reached: falling back to PyPI, whose $TORCH is the CUDA build" \
                "(about 20 nvidia/cuda/triton packages, several GB)"
            pip install "$TORCH"
        fi
    else
        step "no local wheel; NVIDIA GPU found: the CUDA build from PyPI (about 20 nvidia/cuda/triton packages, several GB)"
        pip install "$TORCH"
    fi
fi

step "installing sceneparse (editable) with ${extras:-no extras} and the packages it needs"
# torch's own dependencies come with this step (the local wheel above was installed without them).
# pip's own lines, less the "Requirement already satisfied" ones; a failure still stops the script.
pip install -e ".${extras:+[$extras]}" "$TORCH" |
    { grep --line-buffered -E "^(Collecting|Downloading|Building|Installing collected|Successfully installed)" || true; }
.venv/bin/python -c "import sceneparse, torch; print('[setup] sceneparse', sceneparse.__version__, '| torch',
    torch.__version__, '| CUDA available:', torch.cuda.is_available())"
echo "$want" >"$stamp"
step "done: .venv is ready (use .venv/bin/sceneparse, or 'source .venv/bin/activate' and then sceneparse)"
