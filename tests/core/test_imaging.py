from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from core import imaging
from core.errors import ImageTooLarge, InvalidImage, UnsupportedFormat
from core.imaging import OutputFormat
from core.photo import Photo, decode_photo
from models.animegan import ANIME_WEIGHTS
from models.u2net import U2NET_WEIGHTS
from tests.images import decode, encode, photo


def prepare(data: bytes, max_side: int = 1024) -> Photo:
    return decode_photo(data, max_side=max_side, floor=(1, 1), max_pixels=1_000_000)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_accepted_formats_decode_to_rgb_at_their_size(fmt: str) -> None:
    prepared = prepare(encode(photo(120, 80), fmt))
    assert prepared.size == (120, 80)
    assert prepared.image is not None
    assert prepared.image.shape == (80, 120, 3)
    assert prepared.image.dtype == np.uint8


def test_exif_orientation_is_applied() -> None:
    picture = Image.fromarray(photo(60, 40))
    exif = picture.getexif()
    exif[0x0112] = 6  # rotate 90° clockwise on display
    prepared = prepare(encode(picture, "JPEG", exif=exif))
    assert prepared.size == (40, 60)


@pytest.mark.parametrize(
    ("picture", "fmt"),
    [
        (Image.fromarray(photo(40, 30)).convert("L"), "PNG"),
        (Image.fromarray(photo(40, 30)).convert("P"), "PNG"),
        (Image.fromarray(photo(40, 30)).convert("CMYK"), "JPEG"),
    ],
    ids=["gray", "palette", "cmyk"],
)
def test_other_modes_convert_to_rgb(picture: Image.Image, fmt: str) -> None:
    data = encode(picture, fmt)
    prepared = prepare(data)
    expected = np.asarray(decode(data).convert("RGB")).astype(int)
    assert prepared.image is not None
    assert np.abs(prepared.image.astype(int) - expected).max() <= 1


def test_sixteen_bit_gray_is_scaled_not_clipped() -> None:
    ramp = np.linspace(0, 65535, 64 * 16).reshape(16, 64).astype(np.uint16)
    prepared = prepare(encode(Image.fromarray(ramp), "PNG"))
    assert prepared.image is not None
    assert prepared.image.min() == 0
    assert prepared.image.max() == 255
    assert 100 < prepared.image.mean() < 155


def test_alpha_is_kept() -> None:
    rgba = np.dstack([photo(32, 32), np.full((32, 32), 128, np.uint8)])
    prepared = prepare(encode(Image.fromarray(rgba, "RGBA"), "PNG"))
    assert prepared.alpha is not None
    assert int(prepared.alpha.mean()) == 128


def test_output_fits_max_side_and_never_upscales() -> None:
    data = encode(photo(400, 100), "PNG")
    assert prepare(data, max_side=200).size == (200, 50)
    assert prepare(data, max_side=4000).size == (400, 100)


def test_working_sizes() -> None:
    data = encode(photo(400, 300), "JPEG")
    prepared = prepare(data)
    anime = ANIME_WEIGHTS.get("paprika").transforms.working_size(prepared.source_size, 100)
    matting = U2NET_WEIGHTS.get("u2netp").transforms.working_size(prepared.source_size, 100)
    assert prepared.at(anime).shape == (75, 100, 3)
    assert prepared.at(matting).shape == (320, 320, 3)


def test_pixel_limit_is_checked_before_decoding() -> None:
    with pytest.raises(ImageTooLarge, match="limit"):
        prepare(encode(np.zeros((1100, 1000, 3), np.uint8), "PNG"))


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"not an image", InvalidImage),
        (encode(photo(40, 40), "JPEG")[:200], InvalidImage),
        (encode(photo(40, 40), "GIF"), UnsupportedFormat),
        (encode(photo(40, 40), "BMP"), UnsupportedFormat),
    ],
    ids=["garbage", "truncated", "gif", "bmp"],
)
def test_bad_input_raises_its_error(data: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        prepare(data)


def test_encode_round_trip_keeps_size_and_alpha() -> None:
    alpha = np.full((20, 30), 200, np.uint8)
    expected_modes: dict[OutputFormat, str] = {"png": "RGBA", "webp": "RGBA", "jpeg": "RGB"}
    for fmt, mode in expected_modes.items():
        picture = decode(imaging.encode(photo(30, 20), alpha, fmt))
        assert (picture.size, picture.mode) == ((30, 20), mode)


@pytest.mark.parametrize(
    ("channels", "with_alpha", "mode"), [(3, False, "RGB"), (1, False, "L"), (3, True, "RGBA"), (1, True, "RGBA")]
)
def test_png_keeps_every_pixel(channels: int, with_alpha: bool, mode: str) -> None:
    image = photo(70, 50) if channels == 3 else photo(70, 50)[..., 1]
    alpha = np.tile(np.linspace(0, 255, 70, dtype=np.uint8), (50, 1)) if with_alpha else None
    picture = Image.open(io.BytesIO(imaging.encode(image, alpha, "png")))
    assert picture.format == "PNG"
    assert picture.mode == mode
    rgb = image if channels == 3 else np.dstack([image] * 3)
    expected = np.dstack([rgb, alpha]) if alpha is not None else image
    assert np.array_equal(np.asarray(picture), expected)
