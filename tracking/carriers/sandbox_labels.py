"""Labels of the demo carrier `sandbox` ("Sandbox Post"): real PDFs, deterministic numbers.

Every new tenant buys its labels here until its carriers are configured
(DESIGN.md section 8). Like every adapter it imports no app: it takes plain
strings and returns bytes. It never fails and never waits.

- `sandbox_label_number(tenant_slug, rma_number, label_at)`: a
  `tracking.carriers.sandbox` number (`SBX` + label minute + serial + Luhn
  digit), so the scripted scans start at the label's time.
- `sandbox_label_pdf(...)`: a 4 x 6 inch label (reportlab) with the carrier
  name, sender, the return address (the tenant's default return centre),
  the reference, and a Code 128 barcode of the tracking number.

The scripted scan progression (events answered to polling) is
`tracking.carriers.sandbox`; this module only prints labels for its numbers.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from datetime import datetime

from reportlab.graphics.barcode import code128
from reportlab.lib.units import inch, mm
from reportlab.pdfgen import canvas

from tracking.carriers.sandbox import sandbox_tracking_number

CARRIER_CODE = "sandbox"
CARRIER_NAME = "Sandbox Post"
LABEL_SIZE = (4 * inch, 6 * inch)


def sandbox_label_number(*, tenant_slug: str, rma_number: str, label_at: datetime) -> str:
    """The tracking number of a label bought at `label_at` (aware) for this return.

    It is a `tracking.carriers.sandbox` number, so polling answers the scripted
    scan progression that starts at `label_at`. The serial is the first 4
    bytes of SHA-256(`<tenant slug>:<rma number>`) modulo 10^4, so returns
    spread deterministically over the scripts (its last digit picks one).
    """
    digest = hashlib.sha256(f"{tenant_slug}:{rma_number}".encode()).digest()
    serial = int.from_bytes(digest[:4], "big") % 10_000
    return sandbox_tracking_number(label_at=label_at, serial=serial)


@dataclass(frozen=True)
class SandboxLabel:
    tracking_number: str
    pdf: bytes


def sandbox_label_pdf(
    *,
    tracking_number: str,
    reference: str,
    ship_from: list[str],
    ship_to: list[str],
    service: str = "Returns",
) -> bytes:
    """The label as PDF bytes (one 4 x 6 inch page)."""
    out = io.BytesIO()
    pdf = canvas.Canvas(out, pagesize=LABEL_SIZE, pageCompression=1)
    pdf.setTitle(f"{CARRIER_NAME} {tracking_number}")
    pdf.setAuthor(CARRIER_NAME)
    width, height = LABEL_SIZE
    margin = 6 * mm
    pdf.setLineWidth(1.2)
    pdf.rect(margin / 2, margin / 2, width - margin, height - margin)
    y = height - margin - 8 * mm
    pdf.setFont("Helvetica-Bold", 16)
    pdf.drawString(margin, y, CARRIER_NAME)
    pdf.setFont("Helvetica", 9)
    pdf.drawRightString(width - margin, y, service)
    y -= 5 * mm
    pdf.line(margin / 2, y, width - margin / 2, y)
    y -= 5 * mm
    pdf.setFont("Helvetica", 7)
    pdf.drawString(margin, y, "FROM")
    pdf.setFont("Helvetica", 8)
    for text in ship_from[:5]:
        y -= 3.6 * mm
        pdf.drawString(margin, y, text[:60])
    y -= 7 * mm
    pdf.setFont("Helvetica", 7)
    pdf.drawString(margin, y, "TO")
    pdf.setFont("Helvetica-Bold", 12)
    for text in ship_to[:6]:
        y -= 5.5 * mm
        pdf.drawString(margin + 4 * mm, y, text[:40])
    barcode = code128.Code128(
        tracking_number, barHeight=22 * mm, barWidth=0.38 * mm, humanReadable=False
    )
    x = (width - barcode.width) / 2
    barcode.drawOn(pdf, x, 26 * mm)
    pdf.setFont("Helvetica-Bold", 13)
    pdf.drawCentredString(width / 2, 20 * mm, tracking_number)
    pdf.setFont("Helvetica", 8)
    pdf.drawCentredString(width / 2, 12 * mm, f"Ref {reference}"[:70])
    pdf.showPage()
    pdf.save()
    return out.getvalue()


def sandbox_label_create(
    *,
    tenant_slug: str,
    rma_number: str,
    label_at: datetime,
    reference: str,
    ship_from: list[str],
    ship_to: list[str],
) -> SandboxLabel:
    """Buy a sandbox label at `label_at`: its number and its PDF. Never fails."""
    number = sandbox_label_number(tenant_slug=tenant_slug, rma_number=rma_number, label_at=label_at)
    return SandboxLabel(
        tracking_number=number,
        pdf=sandbox_label_pdf(
            tracking_number=number, reference=reference, ship_from=ship_from, ship_to=ship_to
        ),
    )
