"""The reliability suite reuses the functional tests' helpers (REST sessions, site
set-up)."""

from pathlib import Path

import sys


sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "functional"))
