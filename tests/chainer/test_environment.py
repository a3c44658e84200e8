"""The Chainer environment is what constraints-chainer.txt says, and agrees with the
main environment's pins except where chainer needs older ones."""

from __future__ import annotations

from importlib import metadata
from packaging.utils import canonicalize_name
from packaging.version import Version
from pathlib import Path

import sysconfig


ROOT = Path(__file__).resolve().parents[2]
# chainer 7 fails to import with numpy 2; numpy.distutils, which it imports, fails
# with setuptools >= 74.
OLDER_THAN_MAIN = {"numpy", "setuptools"}


def pins(name: str) -> dict[str, str]:
    found = {}
    for line in (ROOT / name).read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            package, version = line.split("==")
            found[canonicalize_name(package)] = version
    return found


def test_every_installed_distribution_is_pinned_at_its_version():
    wanted = pins("constraints-chainer.txt")
    # Only site-packages: pkg_resources puts setuptools' vendored packages on sys.path.
    for dist in metadata.distributions(path=[sysconfig.get_path("purelib")]):
        name = canonicalize_name(dist.metadata["Name"])
        if name == "detector-service":  # this tree, installed editable
            continue
        assert name in wanted, f"{name} is installed but not pinned"
        # public: chainercv is our rebuild, 0.13.1+pynms (docs/chainer.md)
        assert Version(dist.version).public == wanted[name], name


def test_pins_shared_with_the_main_environment_agree():
    chainer_pins, main_pins = pins("constraints-chainer.txt"), pins("constraints.txt")
    shared = chainer_pins.keys() & main_pins.keys()
    assert {"grpcio", "protobuf", "pillow", "pytest"} <= shared
    for name in shared - OLDER_THAN_MAIN:
        assert chainer_pins[name] == main_pins[name], name
    for name in OLDER_THAN_MAIN:
        assert Version(chainer_pins[name]) < Version(main_pins[name]), name


def test_pins_are_sorted_like_constraints_txt():
    text = (ROOT / "constraints-chainer.txt").read_text()
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert lines == sorted(lines, key=str.lower)
