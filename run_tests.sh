#!/usr/bin/env bash
# Set up .venv with the test tools, then run the test suite (reads ../shared/data or $SCENEPARSE_DATA).
set -euo pipefail
cd "$(dirname "$0")"
scripts/setup_env.sh dev
.venv/bin/python -m pytest -q "$@"
