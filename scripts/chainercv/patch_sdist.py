"""Make an unpacked chainercv 0.13.1 sdist build on Python 3.11, in place.

Drops its only C extension (``_nms_gpu_post``, Cython 0.28 output that no longer
compiles) and the build-time numpy it needed, installs the pure-Python module beside
this script in its place, and marks the version ``0.13.1+pynms`` so the result is
recognisable. Usage: ``python patch_sdist.py UNPACKED_SDIST_DIR``.
"""

from pathlib import Path

import shutil
import sys


HERE = Path(__file__).resolve().parent
LOCAL_VERSION = "0.13.1+pynms"
EDITS = (
    (
        "ext_data = {\n"
        "    'utils.bbox._nms_gpu_post': {'pyxfile': 'utils/bbox/_nms_gpu_post'}\n"
        "}",
        "ext_data = {}",
    ),
    ("setup_requires = ['numpy']", "setup_requires = []"),
    ("version='0.13.1',", f"version='{LOCAL_VERSION}',"),
    # A one-line summary: setuptools warns about the newlines around it.
    ("description=description,", "description=description.strip(),"),
)


def patch(source: Path) -> None:
    setup_py = source / "setup.py"
    text = setup_py.read_text()
    for old, new in EDITS:
        if old not in text:
            raise SystemExit(f"{setup_py}: not the chainercv 0.13.1 setup.py ({old!r})")
        text = text.replace(old, new)
    setup_py.write_text(text)
    bbox = source / "chainercv" / "utils" / "bbox"
    (bbox / "_nms_gpu_post.c").unlink()
    shutil.copyfile(HERE / "_nms_gpu_post.py", bbox / "_nms_gpu_post.py")


if __name__ == "__main__":
    patch(Path(sys.argv[1]))
