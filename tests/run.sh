#!/usr/bin/env bash
# The whole test suite, once per Keras backend (TensorFlow, then JAX).
# Usage: bash tests/run.sh [pytest args]   -- exits non-zero if either backend fails.
# Default args: -q -n 2 (two xdist workers) --durations=15.
set -u
cd "$(dirname "$0")/.."
args=("$@")
[ ${#args[@]} -eq 0 ] && args=(-q -n 2 --durations=15)
status=0
for backend in tensorflow jax; do
  echo "=== KERAS_BACKEND=$backend"
  KERAS_BACKEND=$backend python -m pytest -p no:cacheprovider "${args[@]}" || status=1
done
exit $status
