#!/usr/bin/env bash
# The buildout deployment: zc.buildout in its own virtualenv, then bin/buildout.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.venv-buildout
python=${PYTHON:-python3.11}
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
pins=$(grep -iE '^(zc\.buildout|setuptools|pip|wheel)==' constraints.txt)
"$venv/bin/pip" install --quiet --disable-pip-version-check $pins
"$venv/bin/buildout" -N "$@"
echo "buildout: done; run bin/instance fg"
