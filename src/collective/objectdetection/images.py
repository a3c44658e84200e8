"""The image of an item, its digest, and the scaled-down copy sent to the detector.

Pillow only: the Zope process loads no ML library.
"""

from __future__ import annotations

from dataclasses import dataclass
from detector_service.errors import InvalidImage
from PIL import Image
from PIL import ImageOps
from PIL import UnidentifiedImageError
from plone.dexterity.utils import iterSchemata
from plone.dexterity.utils import iterSchemataForType
from plone.namedfile.interfaces import INamedImageField
from zope.schema import getFieldsInOrder

import hashlib
import io
import warnings


# The largest image Plone will open to scale it (the detector applies its own limits).
MAX_PIXELS = 100_000_000
ORIENTATION_TAG = 0x0112
# EXIF orientations that turn the image by 90 degrees (width and height swap).
ROTATED_ORIENTATIONS = {5, 6, 7, 8}
NOT_AN_IMAGE = "the file is not an image Pillow can read (PNG, JPEG, GIF, WebP, ...)"


@dataclass(frozen=True)
class Derivative:
    """The bytes sent to the detector and how they relate to the original image."""

    data: bytes
    original_width: int
    original_height: int
    scale_x: float  # original pixels per derivative pixel
    scale_y: float


def image_field_names(schemata) -> list[str]:
    names = []
    for schema in schemata:
        for name, field in getFieldsInOrder(schema):
            if INamedImageField.providedBy(field) and name not in names:
                names.append(name)
    return names


def type_has_image_field(portal_type: str) -> bool:
    return bool(image_field_names(iterSchemataForType(portal_type)))


def image_of(obj):
    """The item's first non-empty image field value (e.g. News Item's lead image)."""
    try:
        names = image_field_names(iterSchemata(obj))
    except (TypeError, AttributeError):  # not a dexterity item
        return None
    for name in names:
        value = getattr(obj, name, None)
        if value is not None and getattr(value, "size", 0):
            return value
    return None


def image_data(obj) -> bytes | None:
    image = image_of(obj)
    return image.data if image is not None else None


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def make_derivative(data: bytes, longest_edge: int) -> Derivative:
    """Scale ``data`` so its longest edge is at most ``longest_edge`` (0: unchanged).

    The copy is upright (EXIF orientation applied), as the detector sees images, so
    boxes scale back to the upright original. Raises InvalidImage if Pillow cannot
    read the file.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            width, height = image.size
            if width * height > MAX_PIXELS:
                raise InvalidImage(f"image too large: {width}x{height} pixels")
            if image.getexif().get(ORIENTATION_TAG) in ROTATED_ORIENTATIONS:
                width, height = height, width
            if longest_edge <= 0 or max(width, height) <= longest_edge:
                # Small enough: the original goes as it is (the detector decodes it).
                return Derivative(data, width, height, 1.0, 1.0)
            # Decode at reduced size where the format allows it (JPEG): much faster.
            image.draft("RGB", (longest_edge, longest_edge))
            image = ImageOps.exif_transpose(image)
            image = image.convert("RGB")
            image.thumbnail((longest_edge, longest_edge), Image.Resampling.LANCZOS)
            out = io.BytesIO()
            image.save(out, format="JPEG", quality=90)
    except InvalidImage:
        raise
    except UnidentifiedImageError as exc:
        # Pillow's message names the in-memory file object ("<_io.BytesIO ...>").
        raise InvalidImage(NOT_AN_IMAGE) from exc
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise InvalidImage(f"cannot read the image: {exc}") from exc
    except Image.DecompressionBombWarning as exc:
        raise InvalidImage(str(exc)) from exc
    return Derivative(
        out.getvalue(), width, height, width / image.size[0], height / image.size[1]
    )
