"""bench/quality.py on a two-photo fixture whose AP is computed by hand.

Photo 1 has two people, A and B. The model reports a person where there is none
(score 0.9), then A with a box of IoU 0.72 (score 0.8), and misses B. Photo 2 has a
dog, found exactly (0.6), a crowd of people (ignored, as COCO does) with one person
found in it (0.7), and a cat that is not there at 0.1, below the add-on's minimum.

- person: ranked FP then TP, recall 1/2 at precision 1/2. COCO's 101-point
  interpolation gives precision 1/2 at the 51 recall points 0.00..0.50 and 0 after:
  AP = 51/202 at IoU 0.50..0.70 (five of the ten thresholds), 0 from 0.75 on.
- dog: AP 1 at every threshold; cat has no ground truth, so it is not averaged.
- AP@0.5 = (51/202 + 1) / 2; AP@[.5:.95] = (51/404 + 1) / 2.
- At score 0.3: A and the dog found of 3 objects (recall 2/3); one false positive
  (the crowd's person is ignored, the cat is below 0.3) over 2 photos: 0.5.
"""

from __future__ import annotations

from detector_service.types import Box
from detector_service.types import Detection
from detector_service.types import DetectionResult
from detector_service.types import ModelInfo
from pathlib import Path
from PIL import Image

import pytest
import sys


sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import quality


CATEGORIES = [
    {"id": 1, "name": "person"},
    {"id": 17, "name": "cat"},
    {"id": 18, "name": "dog"},
]
MODEL = ModelInfo("fixture", "0", "none", 100, 100)


def annotation(id_: int, image: int, category: int, box: list, crowd: int = 0):
    _, _, w, h = box
    return {
        "id": id_,
        "image_id": image,
        "category_id": category,
        "bbox": box,
        "area": w * h,
        "iscrowd": crowd,
    }


GROUND_TRUTH = {
    "images": [
        {"id": 1, "file_name": "one.png", "width": 100, "height": 100},
        {"id": 2, "file_name": "two.png", "width": 100, "height": 100},
    ],
    "annotations": [
        annotation(1, 1, 1, [10, 10, 30, 30]),  # A
        annotation(2, 1, 1, [60, 60, 30, 30]),  # B, missed
        annotation(3, 2, 18, [20, 20, 60, 60]),  # the dog
        annotation(4, 2, 1, [0, 85, 100, 15], crowd=1),  # a crowd
    ],
    "categories": CATEGORIES,
}

FOUND = {
    "one.png": [
        Detection("person", 0.9, Box(60, 10, 90, 40)),  # nobody there
        Detection("person", 0.8, Box(10, 10, 40, 31.6)),  # A: IoU 21.6/30 = 0.72
    ],
    "two.png": [
        Detection("dog", 0.6, Box(20, 20, 80, 80)),
        Detection("person", 0.7, Box(10, 86, 20, 99)),  # inside the crowd
        Detection("cat", 0.1, Box(0, 0, 10, 10)),
        Detection("giraffe-ish", 0.9, Box(0, 0, 5, 5)),  # no such class: left out
    ],
}


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    for name in FOUND:
        Image.new("RGB", (100, 100), (0, 0, 255 if name == "one.png" else 0)).save(
            tmp_path / name
        )
    return tmp_path


def fixture_detect(photos: Path):
    by_bytes = {(photos / name).read_bytes(): found for name, found in FOUND.items()}

    def detect(data: bytes) -> DetectionResult:
        return DetectionResult(tuple(by_bytes[data]), 100, 100, MODEL, elapsed_ms=5.0)

    return detect


def test_ap_recall_and_false_positives_match_the_hand_computation(photos):
    figures = quality.evaluate(fixture_detect(photos), GROUND_TRUTH, photos)

    assert figures["ap50"] == pytest.approx((51 / 202 + 1) / 2, abs=1e-6)
    assert figures["ap"] == pytest.approx((51 / 404 + 1) / 2, abs=1e-6)
    assert figures["recall"] == pytest.approx(2 / 3)
    assert figures["false_positives_per_image"] == pytest.approx(0.5)
    assert (figures["objects"], figures["images"]) == (3, 2)
    assert figures["latency_ms"] == 5.0


def test_the_minimum_score_decides_recall_and_false_positives(photos):
    detections = []
    ids = {c["name"]: c["id"] for c in CATEGORIES}
    for image in GROUND_TRUTH["images"]:
        detections += quality.coco_results(image["id"], FOUND[image["file_name"]], ids)

    above_all = quality.score(GROUND_TRUTH, detections, min_score=0.95)
    with_the_cat = quality.score(GROUND_TRUTH, detections, min_score=0.05)

    assert (above_all.recall, above_all.false_positives_per_image) == (0.0, 0.0)
    assert with_the_cat.recall == pytest.approx(2 / 3)
    assert with_the_cat.false_positives_per_image == pytest.approx(1.0)
    # AP does not depend on the minimum score: it ranks every detection.
    assert above_all.ap == with_the_cat.ap


def test_no_detections_score_zero():
    assert quality.score(GROUND_TRUTH, []).ap == 0.0


def test_default_is_the_best_ap_within_one_and_a_half_times_the_baseline_latency():
    results = {
        "yolov3-tiny": {"ap": 0.2, "ap50": 0.3, "latency_ms": 100.0},
        "fast-good": {"ap": 0.4, "ap50": 0.5, "latency_ms": 150.0},
        "slow-best": {"ap": 0.6, "ap50": 0.7, "latency_ms": 151.0},
    }

    assert quality.choose_default(results) == "fast-good"
    assert quality.choose_default({"other": results["fast-good"]}) is None
