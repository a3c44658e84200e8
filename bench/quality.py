"""Detection quality of every model the service offers, side by side (``make eval``).

Each model runs through the service's own pipeline (safe decoding, the model, boxes
mapped back to the photo's pixels) over the photos of ``bench/eval/photos.json``,
keeping everything down to the service's score floor, as the add-on stores it. The
detections are scored against the hand-made boxes of ``bench/eval/annotations.json``
by pycocotools' COCOeval: AP@[.5:.95] and AP@0.5, and, from the same evaluator's
matches at IoU 0.5, recall and false positives per photo at the add-on's default
minimum score. Latency is the pipeline's own time per photo (median).

The default model is the one with the best AP@[.5:.95] among those whose latency
stays within 1.5 times YOLOv3-tiny's. Results go to bench/results/quality.{json,md}.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterable
from contextlib import redirect_stdout
from dataclasses import asdict
from dataclasses import dataclass
from datetime import datetime
from datetime import UTC
from pathlib import Path

import argparse
import io
import json
import os
import platform
import statistics
import sys


ROOT = Path(__file__).resolve().parent.parent
ANNOTATIONS = ROOT / "bench" / "eval" / "annotations.json"
RESULTS = ROOT / "bench" / "results"
# The add-on's default minimum score (collective.objectdetection settings).
ADDON_MIN_SCORE = 0.3
BASELINE = "yolov3-tiny"
LATENCY_FACTOR = 1.5


@dataclass(frozen=True)
class Scores:
    ap: float  # AP@[.5:.95], COCO's primary figure
    ap50: float
    recall: float  # at IoU 0.5 and score >= min_score
    false_positives_per_image: float  # at IoU 0.5 and score >= min_score
    objects: int
    images: int


def score(
    ground_truth: dict, detections: list[dict], min_score: float = ADDON_MIN_SCORE
) -> Scores:
    """COCOeval of ``detections`` (COCO result format) against ``ground_truth``
    (a COCO dataset dict); recall and false positives at ``min_score`` from the
    evaluator's own matches at IoU 0.5 (crowd regions ignored, as COCO does)."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    quiet = io.StringIO()
    with redirect_stdout(quiet):
        truth = COCO()
        truth.dataset = ground_truth
        truth.createIndex()
    objects = sum(1 for a in ground_truth["annotations"] if not a.get("iscrowd"))
    images = len(ground_truth["images"])
    if not detections:
        return Scores(0.0, 0.0, 0.0, 0.0, objects, images)
    with redirect_stdout(quiet):
        evaluation = COCOeval(truth, truth.loadRes(detections), "bbox")
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    every_area = evaluation.params.areaRng[0]
    at_50 = list(evaluation.params.iouThrs).index(0.5)
    found = false = 0
    for entry in evaluation.evalImgs:
        if entry is None or entry["aRng"] != every_area:
            continue
        for det, det_score in enumerate(entry["dtScores"]):
            if det_score < min_score or entry["dtIgnore"][at_50][det]:
                continue
            if entry["dtMatches"][at_50][det]:
                found += 1
            else:
                false += 1
    return Scores(
        ap=max(float(evaluation.stats[0]), 0.0),
        ap50=max(float(evaluation.stats[1]), 0.0),
        recall=found / objects if objects else 0.0,
        false_positives_per_image=false / images if images else 0.0,
        objects=objects,
        images=images,
    )


def coco_results(
    image_id: int, detections: Iterable, category_ids: dict[str, int]
) -> list[dict]:
    """The service's detections of one photo in COCO's result format; labels that
    are not COCO classes (a model of another label set) are left out."""
    results = []
    for found in detections:
        category = category_ids.get(found.label)
        if category is None:
            continue
        box = found.box
        results.append(
            {
                "image_id": image_id,
                "category_id": category,
                "bbox": [
                    box.x_min,
                    box.y_min,
                    box.x_max - box.x_min,
                    box.y_max - box.y_min,
                ],
                "score": float(found.score),
            }
        )
    return results


def evaluate(
    detect: Callable[[bytes], object],
    ground_truth: dict,
    photo_dir: Path,
    rounds: int = 1,
) -> dict:
    """Run ``detect`` (bytes -> DetectionResult) on every photo; score and time it."""
    category_ids = {c["name"]: c["id"] for c in ground_truth["categories"]}
    detections: list[dict] = []
    latencies: list[float] = []
    for round_number in range(rounds):
        for image in ground_truth["images"]:
            result = detect((photo_dir / image["file_name"]).read_bytes())
            latencies.append(result.elapsed_ms)
            if round_number == 0:
                detections += coco_results(image["id"], result.detections, category_ids)
    scores = score(ground_truth, detections)
    return {**asdict(scores), "latency_ms": statistics.median(latencies)}


def choose_default(
    results: dict[str, dict], baseline: str = BASELINE, factor: float = LATENCY_FACTOR
) -> str | None:
    """Best AP@[.5:.95] (then AP@0.5) among models within ``factor`` times the
    baseline's latency; None without the baseline's figures."""
    if baseline not in results:
        return None
    limit = results[baseline]["latency_ms"] * factor
    eligible = [name for name, r in results.items() if r["latency_ms"] <= limit]
    return max(eligible, key=lambda name: (results[name]["ap"], results[name]["ap50"]))


def service_pipeline(backend_name: str, model: str, model_dir: Path):
    """The server's own pipeline for ``model``, floor at the service's lowest score."""
    from detector_service.backends import load_backend
    from detector_service.config import ServerConfig
    from detector_service.decoding import ImageDecoder
    from detector_service.pipeline import DetectionPipeline
    from detector_service.types import DetectOptions
    from detector_service.yolo import SCORE_FLOOR

    backend = load_backend(backend_name, model, model_dir)
    defaults = ServerConfig()
    decoder = ImageDecoder(
        defaults.max_message_bytes,
        defaults.max_pixels,
        (backend.info.input_width, backend.info.input_height),
    )
    pipeline = DetectionPipeline(backend, decoder, SCORE_FLOOR)
    return backend.info, lambda data: pipeline(data, DetectOptions())


def draw_ground_truth(ground_truth: dict, photo_dir: Path, out: Path) -> None:
    """Every photo with its boxes drawn (crowd regions in yellow), to check them."""
    from PIL import Image
    from PIL import ImageDraw

    names = {c["id"]: c["name"] for c in ground_truth["categories"]}
    out.mkdir(parents=True, exist_ok=True)
    for image in ground_truth["images"]:
        with Image.open(photo_dir / image["file_name"]) as photo:
            canvas = photo.convert("RGB")
        draw = ImageDraw.Draw(canvas)
        for item in ground_truth["annotations"]:
            if item["image_id"] != image["id"]:
                continue
            x, y, w, h = item["bbox"]
            colour = (255, 255, 0) if item["iscrowd"] else (255, 0, 255)
            draw.rectangle((x, y, x + w, y + h), outline=colour, width=2)
            draw.text((x + 3, y + 2), names[item["category_id"]], fill=colour)
        canvas.save(out / (Path(image["file_name"]).stem + ".png"))


def markdown(report: dict) -> str:
    lines = [
        f"Run {report['date']} with `{report['command']}` on {report['machine']}: "
        f"{report['images']} photos, {report['objects']} objects.",
        "",
        "| model | AP@[.5:.95] | AP@0.5 | recall @0.3 | false positives / photo @0.3 "
        "| pipeline latency (median) |",
        "|---|---|---|---|---|---|",
    ]
    for name, r in report["models"].items():
        if "error" in r:
            lines.append(f"| {name} | not run: {r['error']} | | | | |")
            continue
        lines.append(
            f"| {name} | {r['ap']:.3f} | {r['ap50']:.3f} | {r['recall']:.2f} "
            f"| {r['false_positives_per_image']:.2f} | {r['latency_ms']:.1f} ms |"
        )
    if report.get("default"):
        lines += [
            "",
            f"Best AP@[.5:.95] within {LATENCY_FACTOR}x {BASELINE}'s latency: "
            f"**{report['default']}**.",
        ]
    return "\n".join(lines) + "\n"


def main() -> int:
    from detector_service.errors import DetectorError
    from detector_service.models import MODELS

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=Path, default=ROOT / "var" / "eval")
    parser.add_argument("--annotations", type=Path, default=ANNOTATIONS)
    parser.add_argument("--backend", default="onnx")
    parser.add_argument("--models", nargs="*", default=list(MODELS), metavar="NAME")
    parser.add_argument("--rounds", type=int, default=3, help="passes for latency")
    parser.add_argument(
        "--draw", type=Path, metavar="DIR", help="only draw the boxes into DIR"
    )
    args = parser.parse_args()
    model_dir = Path(os.environ.get("DETECTOR_MODEL_DIR") or ROOT / "var" / "models")
    ground_truth = json.loads(args.annotations.read_text())
    if args.draw:
        draw_ground_truth(ground_truth, args.photos, args.draw)
        return 0
    report: dict = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": "make eval  (bench/quality.py " + " ".join(sys.argv[1:]) + ")",
        "machine": f"{os.cpu_count()} cores, Python {platform.python_version()}",
        "images": len(ground_truth["images"]),
        "objects": sum(1 for a in ground_truth["annotations"] if not a.get("iscrowd")),
        "models": {},
    }
    for name in args.models:
        print(f"eval: {name}", file=sys.stderr)
        try:
            info, detect = service_pipeline(args.backend, name, model_dir)
        except DetectorError as error:  # e.g. weights that need internet
            report["models"][name] = {"error": str(error).split(";")[0]}
            continue
        detect(next(args.photos.iterdir()).read_bytes())  # warm-up
        figures = evaluate(detect, ground_truth, args.photos, args.rounds)
        report["models"][name] = {"version": info.version, **figures}
    measured = {n: r for n, r in report["models"].items() if "error" not in r}
    report["default"] = choose_default(measured)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "quality.json").write_text(json.dumps(report, indent=2))
    text = markdown(report)
    (RESULTS / "quality.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
