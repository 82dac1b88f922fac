"""Decoding with limits checked before the full decode, resizing, and encoding."""

from __future__ import annotations

import io
import warnings
from typing import Literal

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from core.errors import ImageTooLarge, InvalidImage, UnsupportedFormat
from models.transforms import fit_within

__all__ = [
    "DEFAULT_MAX_SIDE",
    "MEDIA_TYPES",
    "OutputFormat",
    "decode",
    "encode",
    "fit_within",
    "open_image",
    "oriented_size",
    "resize",
]

DEFAULT_MAX_SIDE = 1024
"""The output's long side unless a request says otherwise."""
OutputFormat = Literal["png", "jpeg", "webp"]
MEDIA_TYPES: dict[OutputFormat, str] = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}
ACCEPTED_FORMATS = ("JPEG", "PNG", "WEBP")
# Our own pixel limit runs first; Pillow's bomb check would only warn or raise later.
Image.MAX_IMAGE_PIXELS = None
_TRANSPOSED_ORIENTATIONS = {5, 6, 7, 8}


def resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resizes an HWC or HW array to (width, height); area averaging when shrinking."""
    height, width = image.shape[:2]
    if (width, height) == size:
        return image
    shrinking = size[0] * size[1] < width * height
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)


def open_image(data: bytes, max_pixels: int) -> Image.Image:
    """Reads only the header: format and size are checked before any pixel is decoded."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise InvalidImage("the body is not an image we can decode (send JPEG, PNG or WebP bytes)") from None
    except (OSError, SyntaxError, ValueError) as error:
        raise InvalidImage(f"the image header is damaged or truncated: {error}") from None
    if image.format not in ACCEPTED_FORMATS:
        raise UnsupportedFormat(f"{image.format} images are not accepted; send JPEG, PNG or WebP")
    width, height = image.size
    if width * height > max_pixels:
        raise ImageTooLarge(f"{width}x{height} is {width * height} pixels; the limit is {max_pixels}")
    return image


def _orientation(image: Image.Image) -> int:
    try:
        return int(image.getexif().get(0x0112, 1))
    except (ValueError, TypeError, OSError):
        return 1


def oriented_size(image: Image.Image) -> tuple[int, int]:
    """(width, height) as the photo will be shown, after its EXIF orientation."""
    width, height = image.size
    return (height, width) if _orientation(image) in _TRANSPOSED_ORIENTATIONS else (width, height)


def decode(image: Image.Image, *, hint_size: tuple[int, int] | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Decodes an opened image to (RGB uint8 HWC, alpha uint8 HW or None), EXIF orientation applied.

    `hint_size` (width, height after orientation) lets a JPEG decode at a reduced scale
    (draft mode) no smaller than that size.
    """
    orientation = _orientation(image)
    try:
        if hint_size is not None and image.format == "JPEG":
            draft = hint_size[::-1] if orientation in _TRANSPOSED_ORIENTATIONS else hint_size
            image.draft(image.mode, draft)
        image.load()
        if orientation != 1:
            image = ImageOps.exif_transpose(image)
        return _to_rgb_alpha(image)
    except (OSError, ValueError, SyntaxError) as error:
        raise InvalidImage(f"the image is damaged or truncated: {error}") from None


def _to_rgb_alpha(image: Image.Image) -> tuple[np.ndarray, np.ndarray | None]:
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        # 16-bit and 32-bit gray: scale to 8 bits; a plain convert("RGB") would clip to white.
        wide = np.asarray(image, dtype=np.float64)
        full_scale = 65535.0 if image.mode != "F" else max(1.0, float(wide.max()))
        gray = np.clip(np.rint(wide * (255.0 / full_scale)), 0, 255).astype(np.uint8)
        return np.ascontiguousarray(np.repeat(gray[:, :, None], 3, axis=2)), None
    has_alpha = image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info
    if has_alpha:
        rgba = np.asarray(image.convert("RGBA"))
        alpha = np.ascontiguousarray(rgba[:, :, 3])
        return np.ascontiguousarray(rgba[:, :, :3]), (None if alpha.min() == 255 else alpha)
    return np.ascontiguousarray(np.asarray(image.convert("RGB"))), None


def encode(image: np.ndarray, alpha: np.ndarray | None, output_format: OutputFormat) -> bytes:
    """Encodes RGB (or gray HW) uint8 with optional alpha; JPEG flattens alpha onto white."""
    if output_format == "png":
        return _png(image, alpha)
    picture = Image.fromarray(image, "L" if image.ndim == 2 else "RGB")
    if alpha is not None:
        if output_format == "jpeg":
            white = Image.new("RGB", picture.size, (255, 255, 255))
            white.paste(picture.convert("RGB"), mask=Image.fromarray(alpha, "L"))
            picture = white
        else:
            picture = picture.convert("RGBA")
            picture.putalpha(Image.fromarray(alpha, "L"))
    buffer = io.BytesIO()
    if output_format == "jpeg":
        picture.save(buffer, "JPEG", quality=90)
    else:
        picture.save(buffer, "WEBP", quality=90, method=4)
    return buffer.getvalue()


_PNG_OPTIONS = [
    *(cv2.IMWRITE_PNG_COMPRESSION, 1, cv2.IMWRITE_PNG_STRATEGY, cv2.IMWRITE_PNG_STRATEGY_RLE),
    *(cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_FILTER_PAETH),
]
"""zlib level 1 with run-length matches only, every row Paeth-filtered instead of each row trying
all five filters: encoding the PNG is the Compositor's largest cost, and this was the fastest setting
measured at about the same size (docs/performance.md)."""


def _png(image: np.ndarray, alpha: np.ndarray | None) -> bytes:
    """Gray stays one channel; with alpha, RGBA."""
    if alpha is not None:
        pixels = cv2.cvtColor(image, cv2.COLOR_GRAY2BGRA if image.ndim == 2 else cv2.COLOR_RGB2BGRA)
        pixels[..., 3] = alpha
    else:
        pixels = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    ok, encoded = cv2.imencode(".png", pixels, _PNG_OPTIONS)
    if not ok:
        raise ValueError(f"OpenCV could not encode a PNG of shape {image.shape}")
    return encoded.tobytes()
