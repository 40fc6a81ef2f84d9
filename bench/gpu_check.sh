#!/usr/bin/env bash
# The GPU check of bench/gpu_check.py (issue #20), bounded to 8 minutes: run on one GPU from any
# folder, with the project installed (pip install -e ".[test]") and BIV_DATA_DIR set (the Bike
# pack section reads BIV_DATA_DIR/bike-sharing).
set -euo pipefail
cd "$(dirname "$0")/.."
exec timeout 480 python bench/gpu_check.py "$@"
