"""A generated corpus of hostile and odd image inputs, each with what must happen.

``None`` as the expected size means the server must refuse the input with
INVALID_ARGUMENT; a ``(width, height)`` means it must answer with that size.
"""

from __future__ import annotations

from io import BytesIO
from PIL import Image

import numpy as np
import struct
import zlib


Expected = tuple[int, int] | None


def encode(image: Image.Image, fmt: str, **params) -> bytes:
    out = BytesIO()
    image.save(out, fmt, **params)
    return out.getvalue()


def noise(width: int, height: int, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 255, (height, width, 3), dtype=np.uint8))


def png_chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def png_declaring(width: int, height: int) -> bytes:
    """A PNG header claiming ``width`` x ``height`` with one tiny data chunk."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", zlib.compress(b"\x00" * 16))
        + png_chunk(b"IEND", b"")
    )


def gif_declaring(width: int, height: int) -> bytes:
    """A GIF whose screen and only frame claim ``width`` x ``height``."""
    return (
        b"GIF89a"
        + struct.pack("<HHBBB", width, height, 0x80, 0, 0)
        + b"\x00\x00\x00\xff\xff\xff"
        + b","
        + struct.pack("<HHHHB", 0, 0, width, height, 0)
        + b"\x02\x02\x4c\x01\x00;"
    )


def jpeg_declaring(width: int, height: int) -> bytes:
    """A real small JPEG whose frame header is rewritten to claim another size."""
    data = bytearray(encode(Image.new("RGB", (16, 16), (200, 10, 10)), "JPEG"))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def with_exif(image: Image.Image, exif_bytes: bytes) -> bytes:
    return encode(image, "JPEG", exif=exif_bytes)


def orientation_exif(orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif.tobytes()


def animated_gif() -> bytes:
    frames = [Image.new("RGB", (40, 30), c) for c in ((255, 0, 0), (0, 0, 255))]
    return encode(frames[0], "GIF", save_all=True, append_images=frames[1:])


def palette_with_transparency() -> bytes:
    image = Image.new("P", (32, 32), 1)
    image.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    return encode(image, "PNG", transparency=1)


def png_with_bad_crc() -> bytes:
    data = bytearray(encode(noise(32, 32), "PNG"))
    data[29] ^= 0xFF  # the header chunk's CRC
    return bytes(data)


def corpus() -> dict[str, tuple[bytes, Expected]]:
    jpeg = encode(noise(300, 200), "JPEG")
    png = encode(noise(300, 200), "PNG")
    gray16 = np.linspace(0, 65535, 64 * 48).reshape(48, 64).astype(np.uint16)
    wide = np.linspace(-1000, 70000, 64 * 48).reshape(48, 64)
    return {
        "empty": (b"", None),
        "random bytes": (np.random.default_rng(7).bytes(4096), None),
        "truncated jpeg": (jpeg[: len(jpeg) // 2], None),
        "truncated png": (png[: len(png) // 2], None),
        "jpeg header only": (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00", None),
        "png with bad crc": (png_with_bad_crc(), None),
        "decompression bomb png": (encode(Image.new("1", (30000, 30000)), "PNG"), None),
        "png declaring 100000x100000": (png_declaring(100000, 100000), None),
        "gif declaring 65535x65535": (gif_declaring(65535, 65535), None),
        "jpeg declaring 65000x65000": (jpeg_declaring(65000, 65000), None),
        "zero-size png": (png_declaring(0, 0), None),
        "svg": (b'<svg xmlns="http://www.w3.org/2000/svg" width="9"/>', None),
        "html": (b"<!doctype html><title>x</title><img src=x>", None),
        "pdf": (b"%PDF-1.7\n1 0 obj<</Type/Catalog>>endobj\n%%EOF", None),
        "eps": (b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage", None),
        "1x1": (encode(Image.new("RGB", (1, 1), (9, 9, 9)), "PNG"), (1, 1)),
        "8x8 jpeg": (encode(Image.new("RGB", (8, 8)), "JPEG"), (8, 8)),
        "4000x2 strip": (encode(noise(4000, 2), "PNG"), (4000, 2)),
        "2x3000 strip": (encode(noise(2, 3000), "PNG"), (2, 3000)),
        "mode 1": (encode(Image.new("1", (50, 40), 1), "PNG"), (50, 40)),
        "mode L": (encode(noise(50, 40).convert("L"), "PNG"), (50, 40)),
        "mode LA": (encode(noise(50, 40).convert("LA"), "PNG"), (50, 40)),
        "mode P": (encode(noise(50, 40).convert("P"), "PNG"), (50, 40)),
        "mode P with transparency": (palette_with_transparency(), (32, 32)),
        "mode RGBA": (encode(noise(50, 40).convert("RGBA"), "PNG"), (50, 40)),
        "cmyk jpeg": (encode(noise(50, 40).convert("CMYK"), "JPEG"), (50, 40)),
        "16-bit png": (encode(Image.fromarray(gray16), "PNG"), (64, 48)),
        "32-bit int tiff": (
            encode(Image.fromarray(wide.astype(np.int32)), "TIFF"),
            (64, 48),
        ),
        "float tiff": (
            encode(Image.fromarray(wide.astype(np.float32)), "TIFF"),
            (64, 48),
        ),
        "animated gif": (animated_gif(), (40, 30)),
        "webp": (encode(noise(60, 40), "WEBP"), (60, 40)),
        "bmp": (encode(noise(60, 40), "BMP"), (60, 40)),
        "tiff": (encode(noise(60, 40), "TIFF"), (60, 40)),
        "exif orientation 8": (with_exif(noise(60, 40), orientation_exif(8)), (40, 60)),
        "corrupt exif": (
            with_exif(noise(60, 40), b"Exif\x00\x00MM\x00*\xff\xff"),
            (60, 40),
        ),
        "exif orientation 99": (
            with_exif(noise(60, 40), orientation_exif(99)),
            (60, 40),
        ),
    }
