#!/usr/bin/env bash
# The GPU benchmark in one command: bench/gpu/run.sh [--cpu-smoke] [--model hf:ID] ... (see bench/gpu/README.md)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PY="${PYTHON:-$ROOT/.venv/bin/python}"
[ -x "$PY" ] || { echo "no $PY: run \`make install\` first (or set PYTHON=...)" >&2; exit 2; }
exec "$PY" "$ROOT/bench/gpu/run.py" "$@"
