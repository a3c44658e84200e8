"""Hostile and odd inputs against the real server: each is refused with
INVALID_ARGUMENT or answered correctly, and the server answers the next request."""

from __future__ import annotations

from collections.abc import Iterator
from detector_service.client import DetectorClient
from detector_service.errors import InvalidImage
from detector_service.types import DetectionResult
from hostile_corpus import corpus
from hostile_corpus import orientation_exif
from io import BytesIO
from pathlib import Path
from PIL import Image

import pytest


CORPUS = corpus()


@pytest.fixture(scope="module")
def dog(samples_dir: Path) -> bytes:
    return (samples_dir / "dog.jpg").read_bytes()


@pytest.fixture
def client(detector) -> Iterator[DetectorClient]:
    with DetectorClient(detector.address, timeout=60, retries=0) as client:
        yield client


def test_the_corpus_has_at_least_20_kinds():
    assert len(CORPUS) >= 20
    assert sum(expected is None for _, expected in CORPUS.values()) >= 10


@pytest.fixture
def streaming(detector) -> Iterator[DetectorClient]:
    """A client that sends everything above 1 KiB through DetectStream."""
    with DetectorClient(detector.address, timeout=60, chunk_bytes=1024) as client:
        yield client


@pytest.mark.parametrize("kind", list(CORPUS))
@pytest.mark.parametrize("streamed", [False, True], ids=["Detect", "DetectStream"])
def test_refused_or_answered_then_still_serving(client, streaming, dog, kind, streamed):
    data, expected = CORPUS[kind]
    sender = streaming if streamed else client
    if expected is None:
        with pytest.raises(InvalidImage) as refused:
            sender.detect(data)
        assert "INVALID_ARGUMENT" in str(refused.value)
    else:
        result = sender.detect(data)
        assert (result.image_width, result.image_height) == expected
        assert_inside(result)
    assert "dog" in {d.label for d in client.detect(dog).detections}


def assert_inside(result: DetectionResult) -> None:
    for d in result.detections:
        assert 0 <= d.box.x_min <= d.box.x_max <= result.image_width
        assert 0 <= d.box.y_min <= d.box.y_max <= result.image_height


# One wording whether the unary call or the stream passes the limit.
LIMIT_MESSAGE = "the image has more bytes than the limit of 100000 [(]INVALID_ARGUMENT"


def test_image_over_the_byte_limit_is_invalid_argument(start_detector, dog):
    server = start_detector(extra_args=["--max-message-bytes", "100000"])
    too_big = dog + b"\0" * (100_001 - len(dog)) if len(dog) < 100_001 else dog
    with (
        DetectorClient(server.address, chunk_bytes=1 << 30) as unary,
        pytest.raises(InvalidImage, match=LIMIT_MESSAGE),
    ):
        unary.detect(too_big)
    with DetectorClient(server.address, chunk_bytes=16 * 1024) as streaming:
        with pytest.raises(InvalidImage, match=LIMIT_MESSAGE):
            streaming.detect(too_big)
        small = Image.open(BytesIO(dog)).resize((320, 240))
        out = BytesIO()
        small.save(out, "JPEG")
        assert streaming.detect(out.getvalue()).image_width == 320


def test_exif_rotated_photo_gives_boxes_in_oriented_pixels(client, dog):
    """dog.jpg tagged 'rotate 90 degrees clockwise' answers like the same photo
    turned by its pixels: same size, same boxes."""
    with Image.open(BytesIO(dog)) as photo:
        tagged, turned = BytesIO(), BytesIO()
        photo.save(tagged, "JPEG", quality=95, exif=orientation_exif(6))
        photo.transpose(Image.Transpose.ROTATE_270).save(turned, "JPEG", quality=95)
    by_tag = client.detect(tagged.getvalue())
    by_pixels = client.detect(turned.getvalue())
    assert (by_tag.image_width, by_tag.image_height) == (576, 768)
    assert (by_pixels.image_width, by_pixels.image_height) == (576, 768)
    dog_by_tag = best("dog", by_tag)
    dog_by_pixels = best("dog", by_pixels)
    for a, b in zip(astuple(dog_by_tag), astuple(dog_by_pixels), strict=True):
        assert a == pytest.approx(b, abs=8)
    # The dog sat lower left; turned clockwise, it is upper left.
    assert dog_by_tag.y_min < 768 / 2


def best(label: str, result: DetectionResult):
    return max(
        (d for d in result.detections if d.label == label), key=lambda d: d.score
    ).box


def astuple(box) -> tuple[float, float, float, float]:
    return (box.x_min, box.y_min, box.x_max, box.y_max)
