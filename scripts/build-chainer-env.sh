#!/usr/bin/env bash
# Build the Chainer environment: bash scripts/build-chainer-env.sh VENV_DIR
#
# chainer 7.8.1 and chainercv 0.13.1 are sdists from 2019-2022. On Python 3.11 chainer
# needs numpy 1.x and pkg_resources (setuptools<81) to build, and chainercv's only C
# extension no longer compiles: it is rebuilt as a pure-Python wheel by
# scripts/chainercv/patch_sdist.py (see docs/chainer.md). Idempotent; only PyPI is used.
set -euo pipefail

venv=${1:?usage: build-chainer-env.sh VENV_DIR}
root=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-python3.11}
constraints="$root/constraints-chainer.txt"
pip_quiet=(--quiet --disable-pip-version-check)

[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
pip=("$venv/bin/python" -m pip)
pip_install=("${pip[@]}" install "${pip_quiet[@]}" -c "$constraints")

"${pip_install[@]}" pip setuptools wheel numpy
"${pip_install[@]}" --no-build-isolation chainer

if ! "$venv/bin/python" -c 'import chainercv.utils.bbox._nms_gpu_post' 2>/dev/null; then
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
    "${pip[@]}" download "${pip_quiet[@]}" -c "$constraints" --no-deps \
        --no-binary chainercv --no-build-isolation -d "$work" chainercv
    tar -xzf "$work"/chainercv-*.tar.gz -C "$work"
    "$venv/bin/python" "$root/scripts/chainercv/patch_sdist.py" "$work"/chainercv-*/
    "${pip[@]}" wheel "${pip_quiet[@]}" --no-deps --no-build-isolation \
        -w "$work/wheel" "$work"/chainercv-*/
    "${pip_install[@]}" "$work"/wheel/chainercv-*.whl
fi

"${pip_install[@]}" -e "$root/detector_service[chainer]" pytest pytest-timeout
"$venv/bin/python" -c 'import chainer, chainercv.links, detector_service' >/dev/null
echo "build-chainer-env: $venv ready (chainer $("$venv/bin/python" -c 'import chainer; print(chainer.__version__)'))"
