#!/usr/bin/env bash
# Build the Chainer environment: bash scripts/build-chainer-env.sh VENV_DIR
#
# chainer 7.8.1 and chainercv 0.13.1 are the last releases, sdists only. On Python 3.11
# chainer needs numpy 1.x, pkg_resources to build and numpy.distutils (setuptools<74)
# to import; chainercv's only C extension no longer compiles, so its sdist is rebuilt
# as a pure-Python wheel by scripts/chainercv/patch_sdist.py. See docs/chainer.md.
# Idempotent; needs python3.11 (or $PYTHON) and PyPI only.
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

# Rebuilt whenever the installed replacement differs from ours (or is missing).
replacement="$root/scripts/chainercv/_nms_gpu_post.py"
installed=$("$venv/bin/python" -c 'import chainercv.utils.bbox._nms_gpu_post as m
print(m.__file__)' 2>/dev/null || true)
if [ -z "$installed" ] || ! cmp -s "$installed" "$replacement"; then
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
    "${pip[@]}" download "${pip_quiet[@]}" -c "$constraints" --no-deps \
        --no-binary chainercv --no-build-isolation -d "$work" chainercv
    tar -xzf "$work"/chainercv-*.tar.gz -C "$work"
    "$venv/bin/python" "$root/scripts/chainercv/patch_sdist.py" "$work"/chainercv-*/
    "${pip[@]}" wheel "${pip_quiet[@]}" --no-deps --no-build-isolation \
        -w "$work/wheel" "$work"/chainercv-*/
    # --force-reinstall: the version stays 0.13.1+pynms when only our module changed.
    "${pip_install[@]}" --force-reinstall --no-deps "$work"/wheel/chainercv-*.whl
fi

"${pip_install[@]}" -e "$root/detector_service[chainer]" pytest pytest-timeout
"${pip[@]}" check --disable-pip-version-check
"$venv/bin/python" -c 'import detector_service.backends.chainer as backend
print("build-chainer-env: ready,", backend.FRAMEWORK)'

