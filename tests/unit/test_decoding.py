"""ImageDecoder: limits first, every common mode to RGB, EXIF orientation, reduction."""

from __future__ import annotations

from detector_service.decoding import ImageDecoder
from detector_service.errors import InvalidImage
from io import BytesIO
from PIL import Image
from PIL import ImageFile

import numpy as np
import pytest


RED = (255, 0, 0)
BLUE = (0, 0, 255)


@pytest.fixture(autouse=True)
def strict_pillow(monkeypatch):
    """Pillow as in the detector process, where truncated files are errors.

    plone.scale, imported by the Plone tests of the same pytest run, turns
    ``LOAD_TRUNCATED_IMAGES`` on for the whole process; the detector never imports it.
    """
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", False)


def encode(image: Image.Image, fmt: str, **params) -> bytes:
    out = BytesIO()
    image.save(out, fmt, **params)
    return out.getvalue()


def rgb(pixels: np.ndarray, row: int, col: int) -> tuple[int, ...]:
    return tuple(int(v) for v in pixels[row, col])


def decoder(target: tuple[int, int] | None = None, **limits) -> ImageDecoder:
    return ImageDecoder(
        max_bytes=limits.get("max_bytes", 10_000_000),
        max_pixels=limits.get("max_pixels", 10_000_000),
        target=target,
    )


def with_orientation(image: Image.Image, orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encode(image, "JPEG", exif=exif.tobytes(), quality=95)


def test_rgb_jpeg_gives_uint8_rgb_pixels_and_size():
    decoded = decoder().decode(encode(Image.new("RGB", (64, 48), RED), "JPEG"))
    assert (decoded.width, decoded.height) == (64, 48)
    assert decoded.pixels.shape == (48, 64, 3)
    assert decoded.pixels.dtype == np.uint8
    assert decoded.format == "JPEG"
    assert rgb(decoded.pixels, 24, 32) == pytest.approx(RED, abs=3)


@pytest.mark.parametrize(
    ("mode", "value", "expected"),
    [
        ("1", 1, (255, 255, 255)),
        ("L", 128, (128, 128, 128)),
        ("P", 0, (0, 0, 0)),
        ("CMYK", (0, 255, 255, 0), RED),
        ("RGB", BLUE, BLUE),
    ],
)
def test_modes_without_alpha_become_rgb(mode, value, expected):
    fmt = "JPEG" if mode == "CMYK" else "PNG"
    data = encode(Image.new(mode, (8, 8), value), fmt)
    pixels = decoder().decode(data).pixels
    assert pixels.shape == (8, 8, 3)
    assert rgb(pixels, 4, 4) == pytest.approx(expected, abs=3)


@pytest.mark.parametrize(
    ("mode", "value"),
    [("RGBA", (255, 0, 0, 0)), ("LA", (0, 0))],
)
def test_transparent_pixels_are_composited_on_white(mode, value):
    pixels = decoder().decode(encode(Image.new(mode, (8, 8), value), "PNG")).pixels
    assert rgb(pixels, 0, 0) == (255, 255, 255)


def test_half_transparent_red_on_white_is_pink():
    data = encode(Image.new("RGBA", (4, 4), (255, 0, 0, 128)), "PNG")
    assert tuple(decoder().decode(data).pixels[0, 0]) == pytest.approx(
        (255, 127, 127), abs=2
    )


def test_palette_with_transparent_index_is_composited():
    image = Image.new("P", (4, 4), 1)
    image.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    data = encode(image, "PNG", transparency=1)
    assert tuple(decoder().decode(data).pixels[0, 0]) == (255, 255, 255)


def test_16_bit_grayscale_keeps_its_contrast():
    values = np.array([[0, 65535], [32768, 1000]], dtype=np.uint16)
    data = encode(Image.fromarray(values), "PNG")
    pixels = decoder().decode(data).pixels
    assert pixels[0, 0, 0] == 0
    assert pixels[0, 1, 0] == 255
    assert pixels[1, 0, 0] == 128


@pytest.mark.parametrize("mode", ["I", "F"])
def test_wide_grayscale_tiff_is_scaled_to_8_bits(mode):
    values = np.array([[-500, 0], [1000, 1500]], dtype=np.float32)
    image = Image.fromarray(values.astype(np.int32) if mode == "I" else values)
    assert image.mode == mode
    pixels = decoder().decode(encode(image, "TIFF")).pixels
    assert pixels[0, 0, 0] == 0
    assert pixels[1, 1, 0] == 255


def test_animated_gif_gives_its_first_frame():
    frames = [Image.new("RGB", (8, 8), RED), Image.new("RGB", (8, 8), BLUE)]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:])
    assert tuple(decoder().decode(data).pixels[4, 4]) == RED


@pytest.mark.parametrize("fmt", ["WEBP", "BMP", "TIFF", "GIF", "PNG"])
def test_other_formats(fmt):
    decoded = decoder().decode(encode(Image.new("RGB", (30, 20), BLUE), fmt))
    assert (decoded.width, decoded.height, decoded.format) == (30, 20, fmt)
    assert rgb(decoded.pixels, 10, 15) == pytest.approx(BLUE, abs=8)


def left_half_red(width: int, height: int) -> Image.Image:
    image = Image.new("RGB", (width, height), BLUE)
    image.paste(RED, (0, 0, width // 2, height))
    return image


def test_exif_orientation_6_is_applied_like_a_viewer_does():
    # Orientation 6: the viewer turns the stored picture 90 degrees clockwise,
    # so the stored left half becomes the top half.
    decoded = decoder().decode(with_orientation(left_half_red(40, 20), 6))
    assert (decoded.width, decoded.height) == (20, 40)
    assert decoded.pixels.shape == (40, 20, 3)
    assert rgb(decoded.pixels, 5, 10) == pytest.approx(RED, abs=30)
    assert rgb(decoded.pixels, 35, 10) == pytest.approx(BLUE, abs=30)


def test_corrupt_exif_is_ignored():
    image = Image.new("RGB", (16, 8), RED)
    data = encode(image, "JPEG", exif=b"Exif\x00\x00II*\x00\xff\xff\xff\x7f garbage")
    decoded = decoder().decode(data)
    assert (decoded.width, decoded.height) == (16, 8)


def test_big_jpeg_is_decoded_reduced_but_reports_its_full_size():
    data = encode(left_half_red(3000, 2000), "JPEG")
    decoded = decoder(target=(416, 416)).decode(data)
    assert (decoded.width, decoded.height) == (3000, 2000)
    assert decoded.pixels.shape == (500, 750, 3)
    assert decoded.scale == (4.0, 4.0)


def test_reduced_jpeg_with_orientation_maps_to_oriented_full_size():
    data = with_orientation(left_half_red(3000, 2000), 6)
    decoded = decoder(target=(416, 416)).decode(data)
    assert (decoded.width, decoded.height) == (2000, 3000)
    assert decoded.pixels.shape == (750, 500, 3)
    assert decoded.scale == (4.0, 4.0)


def test_big_png_is_reduced_but_never_below_the_model_input():
    data = encode(Image.new("RGB", (2000, 1000), RED), "PNG")
    decoded = decoder(target=(416, 416)).decode(data)
    assert decoded.pixels.shape == (500, 1000, 3)
    assert decoded.scale == (2.0, 2.0)


def test_small_images_are_not_reduced():
    data = encode(Image.new("RGB", (600, 400), RED), "JPEG")
    assert decoder(target=(416, 416)).decode(data).pixels.shape == (400, 600, 3)


def test_empty_bytes_are_refused():
    with pytest.raises(InvalidImage, match="empty"):
        decoder().decode(b"")


def test_too_many_bytes_are_refused_before_parsing():
    with pytest.raises(InvalidImage, match=r"more bytes than the limit of 100$"):
        decoder(max_bytes=100).decode(b"\xff" * 101)


def test_decompression_bomb_is_refused_before_decoding():
    # 30000 x 30000 black pixels compress to a few hundred kilobytes.
    data = encode(Image.new("1", (30000, 30000)), "PNG")
    assert len(data) < 1_000_000
    with pytest.raises(InvalidImage, match="limit"):
        decoder(max_pixels=50_000_000).decode(data)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x00" * 100, "not a supported image"),
        (b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj", "not a supported image"),
        (b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n", "not a supported"),
        (b"<svg xmlns='http://www.w3.org/2000/svg'/>", "not a supported image"),
    ],
)
def test_other_bytes_are_refused(data, message):
    with pytest.raises(InvalidImage, match=message):
        decoder().decode(data)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_truncated_images_are_refused(fmt):
    rng = np.random.default_rng(1)
    noise = Image.fromarray(rng.integers(0, 255, (200, 200, 3), dtype=np.uint8))
    data = encode(noise, fmt)
    with pytest.raises(InvalidImage, match="corrupt or truncated"):
        decoder().decode(data[: len(data) // 2])
