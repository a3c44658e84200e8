"""The Chainer suite runs in .venv-chainer only: ``.venv-chainer/bin/python -m pytest
tests/chainer`` (``make chainer`` builds it). Under any other interpreter nothing
here is collected, so the main suite's pytest never imports chainer.
"""

from __future__ import annotations

import importlib.util


# Not "chainer": pytest puts tests/ on sys.path, where this folder is a namespace
# package of that name.
if importlib.util.find_spec("chainercv") is None:
    collect_ignore_glob = ["test_*.py"]

# chainer.testing, which importing chainercv imports, marks its own decorators with
# these at import time; --strict-markers would refuse them.
CHAINER_MARKERS = ("gpu", "cudnn", "ideep", "chainerx", "slow")
# What importing chainer 7 and chainercv on Python 3.11 says each time, not our code.
IMPORT_WARNINGS = (
    "ignore:pkg_resources is deprecated:DeprecationWarning",
    "ignore:\\s*`numpy.distutils` is deprecated:DeprecationWarning",
    "ignore:msvccompiler is deprecated:DeprecationWarning",
    "ignore:Overriding method:DeprecationWarning",
)


def pytest_configure(config):
    for name in CHAINER_MARKERS:
        config.addinivalue_line("markers", f"{name}: used by chainer.testing")
    for line in IMPORT_WARNINGS:
        config.addinivalue_line("filterwarnings", line)
