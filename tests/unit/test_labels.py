"""Label names come out in COCO spelling, whatever list the model was trained with."""

from __future__ import annotations

from detector_service.labels import COCO_LABELS
from detector_service.labels import coco_spelling
from detector_service.labels import VOC_LABELS
from detector_service.labels import VOC_TO_COCO

import pytest


# The six lines of darknet's coco.names that differ from COCO's spelling.
DARKNET_SPELLINGS = {
    3: "motorbike",
    4: "aeroplane",
    57: "sofa",
    58: "pottedplant",
    60: "diningtable",
    62: "tvmonitor",
}


def test_coco_has_80_distinct_labels_in_coco_spelling():
    assert len(COCO_LABELS) == 80
    assert len(set(COCO_LABELS)) == 80
    assert not set(VOC_TO_COCO) & set(COCO_LABELS)
    for name in (
        "motorcycle",
        "airplane",
        "couch",
        "tv",
        "dining table",
        "potted plant",
    ):
        assert name in COCO_LABELS


def test_darknet_coco_names_map_onto_the_coco_labels_in_order():
    for index, darknet_name in DARKNET_SPELLINGS.items():
        assert coco_spelling(darknet_name) == COCO_LABELS[index]
    assert COCO_LABELS[0] == "person"
    assert COCO_LABELS[16] == "dog"
    assert COCO_LABELS[79] == "toothbrush"


def test_voc_labels_are_the_20_voc_classes_in_coco_spelling():
    assert len(VOC_LABELS) == 20
    assert set(VOC_LABELS) <= set(COCO_LABELS)
    assert VOC_LABELS[0] == "airplane"
    assert VOC_LABELS[13] == "motorcycle"
    assert VOC_LABELS[19] == "tv"


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("tvmonitor", "tv"),
        ("Aeroplane", "airplane"),
        ("sofa\n", "couch"),
        ("dog", "dog"),
        ("hair drier", "hair drier"),
    ],
)
def test_coco_spelling(given, expected):
    assert coco_spelling(given) == expected
