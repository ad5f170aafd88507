"""rma.photos: format by decoding, size and pixel limits from the header, polyglots,
orientation applied, no metadata kept (issue 3)."""

from __future__ import annotations

import io

import pillow_heif
import pytest
from PIL import Image

from rma.photos import MAX_BYTES, PhotoRejected, photo_process
from tests.portal_helpers import (
    huge_png_header_bytes,
    jpeg_bytes,
    png_bytes,
    polyglot_html_jpeg,
    polyglot_zip_png,
    svg_bytes,
    upload,
)


def reopen(content: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(content))
    image.load()
    return image


def test_photo_process_drops_gps_exif_and_applies_orientation():
    raw = jpeg_bytes(size=(40, 20), gps=True, orientation=6)
    assert Image.open(io.BytesIO(raw)).getexif().get_ifd(0x8825)  # the input has GPS
    photo = photo_process(upload("IMG_1.jpg", raw))
    stored = reopen(photo.content)
    assert stored.format == "JPEG"
    assert (stored.width, stored.height) == (20, 40)  # rotated per orientation 6
    assert (photo.width, photo.height) == (20, 40)
    assert len(stored.getexif()) == 0
    assert "exif" not in stored.info and "icc_profile" not in stored.info
    assert b"PhoneMaker" not in photo.content and b"GPS" not in photo.content


def test_photo_process_png_with_alpha_stays_png_without_text_chunks():
    photo = photo_process(upload("a.png", png_bytes(mode="RGBA", text_chunk=True), "image/png"))
    stored = reopen(photo.content)
    assert stored.format == "PNG" and stored.mode == "RGBA"
    assert b"tEXt" not in photo.content and b"secret location" not in photo.content
    assert photo.content_type == "image/png" and photo.extension == "png"


def test_photo_process_webp_and_heic_are_reencoded_as_jpeg():
    webp = io.BytesIO()
    Image.new("RGB", (16, 12), (1, 2, 3)).save(webp, format="WEBP")
    assert reopen(photo_process(upload("a.webp", webp.getvalue())).content).format == "JPEG"
    heif = pillow_heif.from_pillow(Image.new("RGB", (64, 48), (9, 90, 200)))
    heic = io.BytesIO()
    heif.save(heic, quality=60)
    photo = photo_process(upload("IMG.HEIC", heic.getvalue(), "image/heic"))
    assert reopen(photo.content).format == "JPEG"
    assert (photo.width, photo.height) == (64, 48)


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (svg_bytes(), "photo_unsupported"),
        (b"GIF89a" + b"\x00" * 20, "photo_unsupported"),
        (b"%PDF-1.4 not an image", "photo_unsupported"),
        (polyglot_html_jpeg(), "photo_polyglot"),
        (polyglot_zip_png(), "photo_polyglot"),
        (huge_png_header_bytes(), "photo_too_many_pixels"),
        (huge_png_header_bytes(7000, 6000), "photo_too_many_pixels"),  # 42 MP: below bomb limit
        (jpeg_bytes(size=(300, 300))[:-400], "photo_invalid"),
        (b"", "photo_invalid"),
    ],
    ids=["svg", "gif", "pdf", "html-jpeg", "zip-png", "12000px", "42mp", "truncated", "empty"],
)
def test_photo_process_refuses(data, code):
    with pytest.raises(PhotoRejected) as info:
        photo_process(upload("photo.jpg", data, "image/jpeg"))
    assert info.value.code == code
    assert info.value.message


def test_photo_process_refuses_large_files_before_reading():
    class Huge:
        size = MAX_BYTES + 1

        def read(self, *args):  # pragma: no cover - must not be called
            raise AssertionError("read a file that was too large")

    with pytest.raises(PhotoRejected) as info:
        photo_process(Huge())
    assert info.value.code == "photo_too_large"


def test_photo_process_scales_down_large_photos():
    raw = io.BytesIO()
    Image.new("RGB", (5000, 1000), (0, 0, 0)).save(raw, format="JPEG")
    photo = photo_process(upload("wide.jpg", raw.getvalue()))
    assert max(photo.width, photo.height) == 2560
