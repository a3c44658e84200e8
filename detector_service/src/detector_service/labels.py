"""Label names, spelt the way COCO spells them, whatever the model's own list says.

Darknet's ``coco.names`` and the PASCAL VOC models (ChainerCV ``voc0712``) use VOC
spellings for a few classes (aeroplane, motorbike, sofa, tvmonitor, ...). Every
backend turns its class index into a name through this module, so a search for
"motorcycle" finds the same images whichever model found them.
"""

from __future__ import annotations


# The 80 COCO detection classes in the order darknet's COCO models number them.
COCO_LABELS: tuple[str, ...] = (
    "person",
    "bicycle",
    "car",
    "motorcycle",
    "airplane",
    "bus",
    "train",
    "truck",
    "boat",
    "traffic light",
    "fire hydrant",
    "stop sign",
    "parking meter",
    "bench",
    "bird",
    "cat",
    "dog",
    "horse",
    "sheep",
    "cow",
    "elephant",
    "bear",
    "zebra",
    "giraffe",
    "backpack",
    "umbrella",
    "handbag",
    "tie",
    "suitcase",
    "frisbee",
    "skis",
    "snowboard",
    "sports ball",
    "kite",
    "baseball bat",
    "baseball glove",
    "skateboard",
    "surfboard",
    "tennis racket",
    "bottle",
    "wine glass",
    "cup",
    "fork",
    "knife",
    "spoon",
    "bowl",
    "banana",
    "apple",
    "sandwich",
    "orange",
    "broccoli",
    "carrot",
    "hot dog",
    "pizza",
    "donut",
    "cake",
    "chair",
    "couch",
    "potted plant",
    "bed",
    "dining table",
    "toilet",
    "tv",
    "laptop",
    "mouse",
    "remote",
    "keyboard",
    "cell phone",
    "microwave",
    "oven",
    "toaster",
    "sink",
    "refrigerator",
    "book",
    "clock",
    "vase",
    "scissors",
    "teddy bear",
    "hair drier",
    "toothbrush",
)

# VOC spellings (darknet's coco.names, PASCAL VOC) of classes COCO spells otherwise.
VOC_TO_COCO: dict[str, str] = {
    "aeroplane": "airplane",
    "diningtable": "dining table",
    "motorbike": "motorcycle",
    "pottedplant": "potted plant",
    "sofa": "couch",
    "tvmonitor": "tv",
}


def coco_spelling(name: str) -> str:
    """The COCO spelling of a class name from any model's label list."""
    name = name.strip()
    return VOC_TO_COCO.get(name.lower(), name)


# The 20 PASCAL VOC classes in ChainerCV's order (``voc_bbox_label_names``), in COCO
# spelling; every one of them is also a COCO class.
VOC_LABELS: tuple[str, ...] = tuple(
    coco_spelling(name)
    for name in (
        "aeroplane",
        "bicycle",
        "bird",
        "boat",
        "bottle",
        "bus",
        "car",
        "cat",
        "chair",
        "cow",
        "diningtable",
        "dog",
        "horse",
        "motorbike",
        "person",
        "pottedplant",
        "sheep",
        "sofa",
        "train",
        "tvmonitor",
    )
)
