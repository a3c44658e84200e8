"""The Zope instance as `make start` configures it: zope.conf and zope.ini written
by scripts/start.py from scripts/instance/*.in, and the storage zope.conf opens."""

from __future__ import annotations

from pathlib import Path
from unittest.mock import patch

import importlib.util
import os


ROOT = Path(__file__).resolve().parents[2]


def load_start(instance: Path, port: int = 8080):
    """scripts/start.py as a module, configured for ``instance`` and ``port``."""
    env = {"PLONE_INSTANCE_DIR": str(instance), "PLONE_PORT": str(port)}
    spec = importlib.util.spec_from_file_location(
        f"start_{id(instance)}", ROOT / "scripts" / "start.py"
    )
    module = importlib.util.module_from_spec(spec)
    with patch.dict(os.environ, env):
        spec.loader.exec_module(module)
    return module


def write_instance(instance: Path, port: int = 8080) -> Path:
    """Write the instance's configuration as `make start` does; its zope.conf."""
    load_start(instance, port).write_instance()
    return instance / "etc" / "zope.conf"


def open_main_storage(zope_conf: Path):
    """The main database's storage, opened from ``zope_conf`` by Zope's own schema."""
    from Zope2.Startup.options import ZopeWSGIOptions

    config = ZopeWSGIOptions(configfile=str(zope_conf))().configroot
    (main,) = [db for db in config.databases if db.name == "main"]
    return main.config.storage.open()
