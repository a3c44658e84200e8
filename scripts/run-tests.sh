#!/usr/bin/env bash
# Run every test: the main suite in VENV, then the Chainer suite in .venv-chainer.
# Fails when a suite fails or when it ran no test (pytest's exit code 5).
set -uo pipefail
venv=${1:-.venv}
chainer_venv=${CHAINER_VENV:-.venv-chainer}
status=0

run() {
    local name=$1; shift
    echo "== $name: $*"
    "$@"
    local rc=$?
    if [ "$rc" = 5 ]; then
        echo "run-tests: $name ran no test" >&2
        status=1
    elif [ "$rc" != 0 ]; then
        echo "run-tests: $name failed (exit $rc)" >&2
        status=1
    fi
}

run main "$venv/bin/pytest" tests --ignore=tests/chainer "${@:2}"
if [ -d tests/chainer ]; then
    run chainer "$chainer_venv/bin/python" -m pytest tests/chainer
fi
exit $status
