"""Customer photos: checked, decoded and re-encoded without metadata (issue 3).

`photo_process(upload)` turns an uploaded file into a `ProcessedPhoto` or raises
`PhotoRejected` (a clear message and a code; never a 500):

1. At most `MAX_BYTES` (10 MB), checked from the upload's size before reading.
2. The header is read (Pillow opens lazily) and the format must be JPEG,
   PNG, WebP or HEIC/HEIF (pillow-heif) *as decoded*, whatever the file's
   name or content type says: SVG and everything else is refused.
3. At most `MAX_PIXELS` (40 megapixels) from the header's dimensions, before
   decoding; `Image.MAX_IMAGE_PIXELS` is set to the same figure and Pillow's
   decompression-bomb warning is raised as an error.
4. Polyglots are refused: a file that also parses as a ZIP archive (its
   end-of-central-directory record), or that carries HTML, SVG or script
   markup anywhere in its bytes.
5. The image is decoded fully (a truncated or corrupt file is refused), its
   EXIF orientation applied (`ImageOps.exif_transpose`), scaled down to
   `MAX_EDGE` pixels on its longest side, and copied into a fresh image, so
   no EXIF, GPS, XMP, ICC profile or text chunk survives; then it is encoded
   as JPEG (opaque) or PNG (with transparency).

Photos are stored per tenant (`ReturnPhoto`, upload path under
`tenants/<id>/photos/`) and served only through permission-checked views.
"""

from __future__ import annotations

import io
import re
import warnings
import zipfile
from dataclasses import dataclass
from typing import Any

import pillow_heif
from django.utils.translation import gettext as _
from PIL import Image, ImageOps

pillow_heif.register_heif_opener()

MAX_BYTES = 10 * 1024 * 1024
MAX_PIXELS = 40_000_000
MAX_EDGE = 2560
MAX_PHOTOS_PER_LINE = 5
ALLOWED_FORMATS = frozenset({"JPEG", "PNG", "WEBP", "HEIF"})
JPEG_QUALITY = 88

# Pillow warns above MAX_IMAGE_PIXELS and raises above twice that; we check
# the header ourselves first and turn the warning into an error as well.
Image.MAX_IMAGE_PIXELS = MAX_PIXELS

#: Markup that has no business in an image and makes it a browser polyglot.
_MARKUP = re.compile(
    rb"<\s*(?:html|head|body|script|svg|iframe|object|embed|!doctype\s+html)\b"
    rb"|javascript\s*:|\bon(?:load|error)\s*=",
    re.IGNORECASE,
)


class PhotoRejected(ValueError):
    """The upload is not an acceptable photo. `code` is the API error code."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


@dataclass(frozen=True)
class ProcessedPhoto:
    """A clean re-encoded photo: `content` bytes of `content_type`, pixels `width` x `height`."""

    content: bytes
    extension: str
    content_type: str
    width: int
    height: int

    @property
    def size_bytes(self) -> int:
        return len(self.content)


def _read_upload(upload: Any) -> bytes:
    size = getattr(upload, "size", None)
    if size is not None and size > MAX_BYTES:
        raise PhotoRejected(_("Photos can be at most 10 MB."), "photo_too_large")
    if hasattr(upload, "seek"):
        upload.seek(0)
    data = upload.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise PhotoRejected(_("Photos can be at most 10 MB."), "photo_too_large")
    if not data:
        raise PhotoRejected(_("This file is empty."), "photo_invalid")
    return data


def _is_polyglot(data: bytes) -> bool:
    if _MARKUP.search(data):
        return True
    try:
        return zipfile.is_zipfile(io.BytesIO(data))
    except Exception:
        return False


def photo_process(upload: Any) -> ProcessedPhoto:
    """Check, decode and re-encode one uploaded photo (rules in the module docstring).

    `upload` is a Django `UploadedFile` or any object with `read()`.
    Raises `PhotoRejected`.
    """
    data = _read_upload(upload)
    unsupported = PhotoRejected(
        _("Please upload a photo in JPEG, PNG, WebP or HEIC format."), "photo_unsupported"
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image: Image.Image = Image.open(io.BytesIO(data))
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise PhotoRejected(
                _("Photos can be at most 40 megapixels."), "photo_too_many_pixels"
            ) from exc
        except Exception as exc:
            raise unsupported from exc
        if image.format not in ALLOWED_FORMATS:
            raise unsupported
        width, height = image.size
        if width <= 0 or height <= 0:
            raise unsupported
        if width * height > MAX_PIXELS:
            raise PhotoRejected(_("Photos can be at most 40 megapixels."), "photo_too_many_pixels")
        if _is_polyglot(data):
            raise PhotoRejected(
                _("This file is not a plain image. Please upload the photo itself."),
                "photo_polyglot",
            )
        try:
            image.seek(0)
            image.load()
            image = ImageOps.exif_transpose(image) or image
            has_alpha = image.mode in ("RGBA", "LA", "PA") or (
                image.mode == "P" and "transparency" in image.info
            )
            image = image.convert("RGBA" if has_alpha else "RGB")
            image.thumbnail((MAX_EDGE, MAX_EDGE), Image.Resampling.LANCZOS)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise PhotoRejected(
                _("Photos can be at most 40 megapixels."), "photo_too_many_pixels"
            ) from exc
        except Exception as exc:
            raise PhotoRejected(
                _("This photo is damaged or incomplete. Please try another one."), "photo_invalid"
            ) from exc
    # A fresh image carries no `info`: no EXIF, GPS, XMP, ICC profile or text chunks.
    clean = Image.frombytes(image.mode, image.size, image.tobytes())
    out = io.BytesIO()
    if has_alpha:
        clean.save(out, format="PNG", optimize=True)
        extension, content_type = "png", "image/png"
    else:
        clean.save(out, format="JPEG", quality=JPEG_QUALITY, optimize=True)
        extension, content_type = "jpg", "image/jpeg"
    return ProcessedPhoto(
        content=out.getvalue(),
        extension=extension,
        content_type=content_type,
        width=clean.width,
        height=clean.height,
    )
