#!/usr/bin/env bash
# The GPU check (bench/gpu_check.py) from the repository root, on a machine with only python3
# (torch and the packages the check names) and the working tree: PYTHONPATH=src, nothing
# installed. Usage: bash bench/gpu_check.sh OUT [--only SECTION ...]. Bounded to 5 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:?usage: bash bench/gpu_check.sh OUT [--only SECTION ...]}"
shift
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
exec timeout 300 python3 bench/gpu_check.py --out "$out" "$@"
