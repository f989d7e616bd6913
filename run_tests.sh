#!/usr/bin/env bash
# Set up .venv with the test tools, then run the test suite. Tests read the datasets from the data
# root ($SCENEPARSE_DATA, else ../shared/data beside this checkout); a test whose dataset is not
# there is skipped with how to get it, unless SCENEPARSE_REQUIRE_DATA=1 (CI) makes that a failure.
set -euo pipefail
cd "$(dirname "$0")"
scripts/setup_env.sh dev,3d,onnx,serve,ros,ray  # 3d: open3d, for the robotics tests; onnx, serve: export and service tests; ros: bags; ray: label --ray
echo "[tests] .venv/bin/python -m pytest -q $*"
.venv/bin/python -m pytest -q "$@"
