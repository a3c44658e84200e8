#!/usr/bin/env bash
# Debian's chromium for the browser test. The test drives it with Playwright's Python
# package; Playwright never downloads a browser of its own here.
set -euo pipefail
packages="chromium fonts-noto-cjk"  # the CJK fonts render Japanese labels
if dpkg -s $packages >/dev/null 2>&1; then exit 0; fi
sudo=""
if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null || { echo "install-chromium: run as root or install Debian's chromium" >&2; exit 1; }
    sudo=sudo
fi
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $packages >/dev/null
/usr/bin/chromium --version
