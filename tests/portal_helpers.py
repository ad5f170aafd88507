"""Builders shared by the portal, services and API tests: orders with lines, images."""

from __future__ import annotations

import io
import struct
import zlib
from datetime import UTC, datetime

from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import ExifTags, Image

from tests.factories import OrderFactory, OrderLineFactory

#: A fixed "now" inside the default 30-day window of `order_with_lines` (fulfilled 2026-11-02).
NOW = datetime(2026, 11, 10, 15, 0, tzinfo=UTC)


def order_with_lines(tenant, *, number="#1001", email="Buyer@Example.com", lines=2, **kwargs):
    """An order of `tenant` with `lines` shippable, fulfilled lines of 2 units each."""
    order = OrderFactory(tenant=tenant, number=number, email=email, **kwargs)
    made = [
        OrderLineFactory(
            order=order,
            tenant=tenant,
            position=i + 1,
            sku=f"SKU-{i + 1}",
            title=f"Trail shoe {i + 1}",
            quantity=2,
        )
        for i in range(lines)
    ]
    return order, made


def jpeg_bytes(size=(40, 20), color=(200, 30, 30), *, gps=False, orientation=None) -> bytes:
    image = Image.new("RGB", size, color)
    exif = Image.Exif()
    if orientation:
        exif[ExifTags.Base.Orientation] = orientation
    if gps:
        exif[ExifTags.Base.Make] = "PhoneMaker"
        gps_ifd = exif.get_ifd(ExifTags.IFD.GPSInfo)
        gps_ifd[ExifTags.GPS.GPSLatitudeRef] = "N"
        gps_ifd[ExifTags.GPS.GPSLatitude] = (40.0, 26.0, 46.0)
        gps_ifd[ExifTags.GPS.GPSLongitudeRef] = "W"
        gps_ifd[ExifTags.GPS.GPSLongitude] = (79.0, 58.0, 56.0)
    out = io.BytesIO()
    image.save(out, format="JPEG", exif=exif, quality=90)
    return out.getvalue()


def png_bytes(size=(30, 30), mode="RGB", *, text_chunk=False) -> bytes:
    from PIL import PngImagePlugin

    image = Image.new(mode, size, (10, 120, 200, 128)[: len(mode)])
    info = PngImagePlugin.PngInfo()
    if text_chunk:
        info.add_text("Comment", "secret location 40.4 N")
    out = io.BytesIO()
    image.save(out, format="PNG", pnginfo=info)
    return out.getvalue()


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def huge_png_header_bytes(width=12000, height=12000) -> bytes:
    """A valid PNG whose header says `width` x `height` (1-bit grey), with one
    compressed scanline of data: decoding it would need 144 megapixels."""
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    row = b"\x00" + b"\x00" * ((width + 7) // 8)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", zlib.compress(row))
        + _png_chunk(b"IEND", b"")
    )


def svg_bytes() -> bytes:
    return (
        b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
        b'<script>alert(document.cookie)</script><rect width="10" height="10"/></svg>'
    )


def polyglot_html_jpeg() -> bytes:
    """A real JPEG with HTML and script appended: a browser sniffing it finds a page."""
    return jpeg_bytes() + b"<html><body><script>alert(document.domain)</script></body></html>"


def polyglot_zip_png() -> bytes:
    """A real PNG that is also a valid ZIP archive (an archive appended after IEND)."""
    import zipfile

    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("payload.js", "alert(1)")
    return png_bytes() + archive.getvalue()


def upload(name: str, data: bytes, content_type: str = "image/jpeg") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type=content_type)
