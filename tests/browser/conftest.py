"""The browser tests reuse the functional tests' helpers (site setup, REST sessions)."""

from pathlib import Path

import sys


sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "functional"))
