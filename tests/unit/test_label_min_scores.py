"""Minimum scores per label: parsing the control panel's lines, applying them."""

from collective.objectdetection.storage import DetectionRecord
from collective.objectdetection.thresholds import min_score_for
from collective.objectdetection.thresholds import parse_label_min_score
from collective.objectdetection.thresholds import parse_label_min_scores

import pytest


def test_lines_become_a_mapping_with_normalised_labels():
    lines = ["person=0.4", " Sports  Ball = 0.25 ", "", "tie=0.6"]
    assert parse_label_min_scores(lines) == {
        "person": 0.4,
        "sports ball": 0.25,
        "tie": 0.6,
    }


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("person 0.4", "write label=score"),
        ("=0.4", "write label=score"),
        ("person=high", "'high' is not a number"),
        ("person=1.5", "between 0 and 1"),
        ("person=-0.1", "between 0 and 1"),
    ],
)
def test_bad_lines_say_what_is_wrong(line, message):
    with pytest.raises(ValueError, match=message):
        parse_label_min_score(line)


def test_a_listed_label_uses_its_own_minimum_in_either_direction():
    per_label = {"person": 0.2, "tie": 0.6}
    assert min_score_for("person", 0.3, per_label) == 0.2
    assert min_score_for("tie", 0.3, per_label) == 0.6
    assert min_score_for("dog", 0.3, per_label) == 0.3


def record_with(scores: dict[str, float]) -> DetectionRecord:
    record = DetectionRecord()
    box = {"x_min": 0.0, "y_min": 0.0, "x_max": 1.0, "y_max": 1.0}
    record.detections = tuple(
        {"label": label, "score": score, "box": box} for label, score in scores.items()
    )
    return record


def test_indexed_labels_follow_the_per_label_minimums():
    # The portrait of issue 11: "tie" above 0.3, "person" only at 0.2.
    record = record_with({"tie": 0.45, "person": 0.2, "dog": 0.35})
    assert record.effective_labels(0.3) == ("dog", "tie")
    assert record.effective_labels(0.3, {"person": 0.15, "tie": 0.6}) == (
        "dog",
        "person",
    )


def test_corrections_still_apply_on_top():
    record = record_with({"tie": 0.45, "person": 0.2})
    record.set_corrections(hidden_labels=["person"], added_labels=["hat"])
    assert record.effective_labels(0.3, {"person": 0.1}) == ("hat", "tie")
