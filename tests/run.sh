#!/usr/bin/env bash
# The whole test suite, once per Keras backend (TensorFlow, then JAX).
# Usage: bash tests/run.sh [extra pytest args]   -- exits non-zero if either backend fails.
set -u
cd "$(dirname "$0")/.."
status=0
for backend in tensorflow jax; do
  echo "=== KERAS_BACKEND=$backend"
  KERAS_BACKEND=$backend python -m pytest -p no:cacheprovider "$@" || status=1
done
exit $status
