"""The ONNX files the project's converters build from a model's verified files,
cached next to them by digest (darknet's and TF.js's converters alike).

A file is named ``<model>-<weights sha256[:12]>-c<converter version>.onnx``, so new
weights or a changed converter get a new file (and the older conversions of the
model go). It is used only if it matches the sha256 recorded at its conversion in
``<file>.sha256``; a damaged or unrecorded file is converted again from the
verified weights. A read-only model folder falls back to this user's own cache
(``~/.cache/detector-service/onnx``), never a folder other users can write.
"""

from __future__ import annotations

from collections.abc import Callable
from detector_service.models import ModelFiles
from detector_service.models import sha256_of
from detector_service.models import user_cache_dir
from pathlib import Path

import hashlib
import logging
import re
import tempfile


log = logging.getLogger("detector_service.onnx_cache")


def write_model(onnx_path: Path, data: bytes) -> Path:
    """Write a serialised ONNX model and its sha256 next to it, each atomically."""
    _write_atomically(onnx_path, data)
    _write_atomically(_checksum_path(onnx_path), hashlib.sha256(data).hexdigest())
    return onnx_path


def _write_atomically(path: Path, data: bytes | str) -> None:
    # A partial file of its own: several servers may convert at the same time.
    with tempfile.NamedTemporaryFile(
        dir=path.parent, prefix=path.name, suffix=".partial", delete=False
    ) as partial:
        partial.write(data.encode() if isinstance(data, str) else data)
    Path(partial.name).replace(path)


def _checksum_path(onnx_path: Path) -> Path:
    return onnx_path.with_name(onnx_path.name + ".sha256")


def is_verified(onnx_path: Path) -> bool:
    """Whether ``onnx_path`` is whole and the one a converter wrote: its sha256
    matches the one recorded when it was converted."""
    checksum = _checksum_path(onnx_path)
    if not onnx_path.is_file() or not checksum.is_file():
        return False
    return checksum.read_text().strip() == sha256_of(onnx_path)


def converted_model(
    files: ModelFiles, converter_version: int, build: Callable[[], bytes]
) -> Path:
    """The ONNX file of a located model, built by ``build`` (the serialised model)
    on first use, then reused while it matches its recorded checksum."""
    spec = files.spec
    filename = f"{spec.name}-{files.version}-c{converter_version}.onnx"
    stale = re.compile(rf"{re.escape(spec.name)}-[0-9a-f]{{12}}-c\d+\.onnx(\.sha256)?")
    for folder in (files.weights.parent, user_cache_dir() / "onnx"):
        path = folder / filename
        if is_verified(path):
            return path
        try:
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            if path.exists():
                log.warning(
                    "converting the model again: the cached ONNX file does not "
                    "match the checksum recorded at its conversion",
                    extra={"fields": {"path": str(path)}},
                )
            write_model(path, build())
        except PermissionError:
            continue
        for old in folder.glob(f"{spec.name}-*.onnx*"):
            if old.name not in (path.name, _checksum_path(path).name) and (
                stale.fullmatch(old.name)
            ):
                old.unlink(missing_ok=True)
        return path
    raise PermissionError(f"no writable folder for {filename}")
