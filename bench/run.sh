#!/usr/bin/env bash
# The benchmarks of docs/benchmarks.md: `make bench` runs this. Options go to
# bench/bench.py (--rounds, --chainer-rounds, --requests). Results: bench/results/.
set -euo pipefail
cd "$(dirname "$0")/.."
export DETECTOR_MODEL_DIR=${DETECTOR_MODEL_DIR:-$PWD/var/models}
export SAMPLES_DIR=${SAMPLES_DIR:-$PWD/var/samples}
exec .venv/bin/python bench/bench.py "$@"
