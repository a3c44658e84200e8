#!/usr/bin/env bash
# Put sample photos in DIR: darknet's classic YOLO photos (Debian package `darknet`,
# GPL-3+/MIT/WTFPL) and a few of scikit-image's (its PyPI wheel). Nothing else is
# downloaded: both come from the registries this project may use.
set -euo pipefail
dir=${1:?usage: fetch-samples.sh DIR}
mkdir -p "$dir"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

if [ ! -f "$dir/dog.jpg" ]; then
    if command -v apt-get >/dev/null; then
        # apt-get download needs package lists; a fresh machine may have none yet.
        if ! (cd "$tmp" && apt-get download -qq darknet 2>/dev/null); then
            if [ "$(id -u)" = 0 ]; then apt-get update -qq; fi
            (cd "$tmp" && apt-get download -qq darknet) || true
        fi
    fi
    if ls "$tmp"/darknet_*.deb >/dev/null 2>&1; then
        dpkg-deb -x "$tmp"/darknet_*.deb "$tmp/darknet"
        for f in dog person horses eagle giraffe kite scream; do
            cp "$tmp/darknet/usr/share/darknet/data/$f.jpg" "$dir/" 2>/dev/null || true
        done
    else
        echo "fetch-samples: Debian's darknet package is not available; no darknet photos" >&2
    fi
fi

if [ ! -f "$dir/chelsea.png" ]; then
    pip_bin=${PIP:-$(dirname "$0")/../.venv/bin/pip}
    [ -x "$pip_bin" ] || pip_bin="python3 -m pip"
    $pip_bin download --quiet --no-deps --only-binary :all: \
        "$(grep -i '^scikit-image==' "$(dirname "$0")/../constraints.txt" || echo scikit-image==0.26.0)" \
        -d "$tmp/wheel" 2>/dev/null
    python3 - "$tmp/wheel" "$dir" <<'PY'
import pathlib, sys, zipfile
wheel = next(pathlib.Path(sys.argv[1]).glob("scikit_image-*.whl"))
with zipfile.ZipFile(wheel) as zf:
    for name in ("chelsea.png", "astronaut.png", "coffee.png", "motorcycle_left.png"):
        (pathlib.Path(sys.argv[2]) / name).write_bytes(zf.read(f"skimage/data/{name}"))
PY
fi
ls "$dir"
