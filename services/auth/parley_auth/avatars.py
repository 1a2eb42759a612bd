"""Avatar pictures: an upload (PNG, JPEG or WebP, at most MAX_AVATAR_BYTES) becomes a square
SIZE x SIZE WebP that auth keeps, versioned by a hash of its bytes.

The upload is decoded by the decoder of the type it was declared as (and by no other), its
size in pixels checked before anything is decoded, turned upright by its EXIF orientation,
cropped to its centre square and re-encoded from the bare pixels: EXIF, XMP, ICC profiles and
text chunks never reach the stored picture. Encoding is deterministic, so uploading the same
picture again gives the same bytes and the same version. No I/O and no eventlet here.
"""
from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

from parley_common.limits import AVATAR_MEDIA_TYPES, MAX_AVATAR_BYTES, MAX_AVATAR_PIXELS

SIZE = 128
MEDIA_TYPE = "image/webp"  # what is stored and served
QUALITY = 85
# Pillow's decoder name of each accepted media type.
FORMATS = dict(zip(AVATAR_MEDIA_TYPES, ("PNG", "JPEG", "WEBP")))
VERSION_LENGTH = 16  # hex digits of the SHA-256 of the stored bytes


class AvatarRejected(ValueError):
    """Why an upload cannot be an avatar, as a sentence for the uploader."""


@dataclass(frozen=True)
class Avatar:
    data: bytes
    media_type: str
    version: str


def normalize(data: bytes, media_type: str) -> Avatar:
    """The stored form of an upload; AvatarRejected when it is not a usable picture of
    ``media_type``."""
    image_format = FORMATS.get(media_type)
    if image_format is None:
        raise AvatarRejected("The picture must be a PNG, JPEG or WebP image.")
    if not data:
        raise AvatarRejected("The picture is empty.")
    if len(data) > MAX_AVATAR_BYTES:
        raise AvatarRejected(f"The picture must be at most {MAX_AVATAR_BYTES} bytes.")
    try:
        pixels = _square_pixels(data, image_format)
    except AvatarRejected:
        raise
    # Pillow reports a bad file in many ways: unknown format, truncated data, corrupt chunks,
    # a mode it cannot convert, and (above its own limit) a decompression bomb.
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, SyntaxError,
            ValueError, EOFError, IndexError, TypeError):
        raise AvatarRejected(f"The picture is not a readable {image_format} image.") from None
    out = io.BytesIO()
    pixels.save(out, "WEBP", quality=QUALITY, method=4)
    stored = out.getvalue()
    return Avatar(stored, MEDIA_TYPE, hashlib.sha256(stored).hexdigest()[:VERSION_LENGTH])


def _square_pixels(data: bytes, image_format: str) -> Image.Image:
    with Image.open(io.BytesIO(data), formats=[image_format]) as image:
        width, height = image.size  # from the header: nothing decoded yet
        if width * height > MAX_AVATAR_PIXELS:
            raise AvatarRejected(f"The picture has too many pixels ({width} x {height}); at "
                                 f"most {MAX_AVATAR_PIXELS} are accepted.")
        # A JPEG can be decoded at 1/2, 1/4 or 1/8 scale: much less work for a big photo.
        image.draft(None, (2 * SIZE, 2 * SIZE))
        upright = ImageOps.exif_transpose(image)  # decodes
    has_alpha = upright.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        upright.mode == "P" and "transparency" in upright.info)
    mode = "RGBA" if has_alpha else "RGB"
    square = ImageOps.fit(upright.convert(mode), (SIZE, SIZE), Image.Resampling.LANCZOS)
    # Only the pixels: a new image carries none of the upload's metadata (info, EXIF, ICC).
    return Image.frombytes(mode, square.size, square.tobytes())
