"""The return's printable documents (DESIGN.md section 10):

- `qr_svg(code)`: the check-in code `RMA:<tenant slug>:<rma_number>` as an SVG
  QR code (segno, error correction M).
- `packing_slip_pdf(...)`: one A4 page with the RMA number, a Code 128 barcode
  of it, the same QR code, the items and the return address (reportlab).
- `label_pdf(carrier_label, packing_slip)`: the carrier's label exactly as
  the adapter returned it (every page), then the packing slip (pypdf).
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import segno
from django.utils.translation import gettext as _
from pypdf import PdfReader, PdfWriter
from reportlab.graphics.barcode import code128
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.pdfgen import canvas


def qr_svg(code: str) -> bytes:
    """`code` as a standalone SVG QR code (UTF-8 bytes)."""
    out = io.BytesIO()
    segno.make(code, error="m", micro=False).save(
        out, kind="svg", scale=6, border=4, xmldecl=True, title=code
    )
    return out.getvalue()


@dataclass(frozen=True)
class SlipLine:
    sku: str
    title: str
    quantity: int
    reason: str


def _draw_qr(pdf: canvas.Canvas, code: str, x: float, y: float, size: float) -> None:
    """Draw `code`'s QR matrix (segno) as filled squares, bottom-left at (x, y)."""
    qr = segno.make(code, error="m", micro=False)
    rows = list(qr.matrix_iter(scale=1, border=4))
    cell = size / len(rows)
    pdf.setFillColorRGB(0, 0, 0)
    for r, row in enumerate(rows):
        for c, dark in enumerate(row):
            if dark:
                pdf.rect(x + c * cell, y + size - (r + 1) * cell, cell, cell, stroke=0, fill=1)


def packing_slip_pdf(
    *,
    tenant_name: str,
    rma_number: str,
    check_in_code: str,
    order_number: str,
    return_address: list[str],
    lines: list[SlipLine],
) -> bytes:
    """One-page packing slip (A4) as PDF bytes, in the active language."""
    title = _("Packing slip")
    instructions = _("Put this page in the parcel, with the items.")
    out = io.BytesIO()
    pdf = canvas.Canvas(out, pagesize=A4, pageCompression=1)
    pdf.setTitle(f"{rma_number} {title}")
    pdf.setAuthor(tenant_name)
    width, height = A4
    left = 20 * mm
    y = height - 25 * mm
    pdf.setFont("Helvetica-Bold", 18)
    pdf.drawString(left, y, f"{tenant_name}: {title}")
    y -= 12 * mm
    pdf.setFont("Helvetica-Bold", 28)
    pdf.drawString(left, y, rma_number)
    pdf.setFont("Helvetica", 11)
    pdf.drawString(left, y - 7 * mm, _("Order %(number)s") % {"number": order_number})
    barcode = code128.Code128(
        rma_number, barHeight=18 * mm, barWidth=0.45 * mm, humanReadable=False
    )
    barcode.drawOn(pdf, left - 6 * mm, y - 33 * mm)
    # The human-readable line is drawn by hand: reportlab's own touches the bars.
    pdf.setFont("Courier", 10)
    pdf.drawString(left, y - 38 * mm, rma_number)
    _draw_qr(pdf, check_in_code, width - left - 45 * mm, y - 38 * mm, 45 * mm)
    pdf.setFont("Helvetica", 8)
    pdf.drawRightString(width - left, y - 42 * mm, check_in_code)
    y -= 55 * mm
    pdf.setFont("Helvetica-Bold", 12)
    pdf.drawString(left, y, _("Items"))
    y -= 7 * mm
    pdf.setFont("Helvetica", 10)
    for line in lines:
        text = f"{line.quantity} x {line.sku}  {line.title}"[:95]
        pdf.drawString(left, y, text)
        pdf.drawRightString(width - left, y, line.reason[:40])
        y -= 6 * mm
        if y < 60 * mm:
            break
    y -= 6 * mm
    pdf.setFont("Helvetica-Bold", 12)
    pdf.drawString(left, y, _("Return to"))
    pdf.setFont("Helvetica", 10)
    for text in return_address:
        y -= 6 * mm
        pdf.drawString(left, y, text[:95])
    pdf.setFont("Helvetica-Oblique", 10)
    pdf.drawString(left, 20 * mm, instructions[:120])
    pdf.showPage()
    pdf.save()
    return out.getvalue()


def label_pdf(carrier_label: bytes | None, packing_slip: bytes) -> bytes:
    """The carrier's label pages (as returned by the adapter, when there is one),
    then the packing slip, as one PDF."""
    writer = PdfWriter()
    if carrier_label:
        writer.append(PdfReader(io.BytesIO(carrier_label)))
    writer.append(PdfReader(io.BytesIO(packing_slip)))
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()
