"""Safe decoding of untrusted image bytes into RGB pixels for a model.

Limits come before work: the byte count is checked before parsing and the declared
pixel count before any pixel is decoded, so a small file that claims a huge canvas
(a decompression bomb) costs nothing. Only raster formats with well-worn Pillow
decoders are opened (no EPS/PDF, which would start external programs).
"""

from __future__ import annotations

from dataclasses import dataclass
from detector_service.errors import InvalidImage
from io import BytesIO
from PIL import Image
from PIL import UnidentifiedImageError

import numpy as np
import warnings


FORMATS = ("JPEG", "PNG", "GIF", "WEBP", "BMP", "TIFF")
EXIF_ORIENTATION = 0x0112
# How Image.transpose undoes each EXIF orientation (as ImageOps.exif_transpose does).
ORIENTATION_FIX = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
SWAPS_AXES = {5, 6, 7, 8}
ALPHA_MODES = {"LA", "La", "PA", "RGBA", "RGBa"}
BACKGROUND = (255, 255, 255)


@dataclass(frozen=True)
class DecodedImage:
    """RGB pixels, possibly reduced, and the size of the image as sent.

    ``width`` and ``height`` are the full image's size after EXIF orientation;
    ``pixels`` may be smaller (reduced decoding). Multiply a box in ``pixels`` by
    ``scale`` to get it in the full image's pixels.
    """

    pixels: np.ndarray
    width: int
    height: int
    format: str

    @property
    def scale(self) -> tuple[float, float]:
        rows, cols = self.pixels.shape[:2]
        return self.width / cols, self.height / rows


class ImageDecoder:
    """Turns encoded image bytes into an HxWx3 ``uint8`` RGB array.

    ``target`` is the model's input size: images much larger than it are decoded
    at a reduced size (JPEG DCT scaling, integer box reduction for other formats),
    never below ``target``.
    """

    def __init__(
        self,
        max_bytes: int,
        max_pixels: int,
        target: tuple[int, int] | None = None,
    ) -> None:
        self.max_bytes = max_bytes
        self.max_pixels = max_pixels
        self.target = target

    def decode(self, data: bytes) -> DecodedImage:
        if not data:
            raise InvalidImage("the image is empty (0 bytes)")
        if len(data) > self.max_bytes:
            raise InvalidImage(too_many_bytes(self.max_bytes))
        try:
            return self._decode(data)
        except InvalidImage:
            raise
        except Image.DecompressionBombError as exc:
            raise InvalidImage(
                f"the image has more pixels than the limit of {self.max_pixels}"
            ) from exc
        except (UnidentifiedImageError, ValueError, TypeError) as exc:
            raise InvalidImage(f"not a supported image ({', '.join(FORMATS)})") from exc
        except (OSError, SyntaxError, EOFError, IndexError, KeyError) as exc:
            # Pillow's decoders signal broken data with any of these.
            raise InvalidImage(
                f"the image data is corrupt or truncated: {exc}"
            ) from exc
        except MemoryError as exc:
            raise InvalidImage("the image is too large to decode") from exc

    def _decode(self, data: bytes) -> DecodedImage:
        with warnings.catch_warnings():
            # Our own pixel limit applies; Pillow's warning would only add noise.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(BytesIO(data), formats=FORMATS)
        width, height = image.size
        self._check_size(width, height)
        source_format = image.format or ""
        orientation = _orientation(image)
        if orientation in SWAPS_AXES:
            width, height = height, width
        if self.target and image.format in {"JPEG", "MPO"}:
            side = max(self.target)
            image.draft("RGB", (side, side))
        image.load()
        image = _to_rgb(image)
        image = self._reduce(image)
        if orientation in ORIENTATION_FIX:
            image = image.transpose(ORIENTATION_FIX[orientation])
        pixels = np.asarray(image, dtype=np.uint8)
        return DecodedImage(pixels, width, height, source_format)

    def _check_size(self, width: int, height: int) -> None:
        if width < 1 or height < 1:
            raise InvalidImage(f"the image has no pixels ({width}x{height})")
        if width * height > self.max_pixels:
            raise InvalidImage(
                f"the image is {width}x{height} = {width * height} pixels; "
                f"the limit is {self.max_pixels}"
            )

    def _reduce(self, image: Image.Image) -> Image.Image:
        if not self.target:
            return image
        side = max(self.target)
        factor = min(image.width // side, image.height // side)
        return image.reduce(factor) if factor >= 2 else image


def too_many_bytes(limit: int) -> str:
    """The one wording of the byte limit, wherever it is checked (the decoder,
    a unary call, a stream that passes it part way)."""
    return f"the image has more bytes than the limit of {limit}"


def _orientation(image: Image.Image) -> int:
    """The EXIF orientation, 1 when absent or unreadable (broken EXIF is common)."""
    try:
        value = image.getexif().get(EXIF_ORIENTATION, 1)
        return int(value) if int(value) in ORIENTATION_FIX else 1
    except Exception:  # any parse error in the EXIF block means "no orientation"
        return 1


def _to_rgb(image: Image.Image) -> Image.Image:
    mode = image.mode
    if mode == "RGB":
        return image
    if mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
        mode = "RGBA"
    if mode in ALPHA_MODES:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (*BACKGROUND, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if mode.startswith("I") or mode.startswith("F"):
        return _wide_to_rgb(image)
    return image.convert("RGB")


def _wide_to_rgb(image: Image.Image) -> Image.Image:
    """16-bit, 32-bit integer and float grayscale to 8 bits, keeping the contrast."""
    values = np.asarray(image).astype(np.float32)
    low, high = float(values.min()), float(values.max())
    if image.mode.startswith("I;16"):
        scaled = values / 257.0
    elif low >= 0 and high <= 255:
        scaled = values
    elif low >= 0 and high <= 65535:
        scaled = values / 257.0
    else:
        span = high - low or 1.0
        scaled = (values - low) * (255.0 / span)
    gray = Image.fromarray(np.clip(scaled + 0.5, 0, 255).astype(np.uint8))
    return gray.convert("RGB")
