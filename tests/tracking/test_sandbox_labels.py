"""The sandbox carrier's labels (tracking/carriers/sandbox_labels.py): real PDFs whose
numbers are `tracking.carriers.sandbox` numbers encoding the label time."""

from __future__ import annotations

import io
from datetime import UTC, datetime

from pypdf import PdfReader

from tracking.carriers import sandbox
from tracking.carriers.sandbox_labels import sandbox_label_create, sandbox_label_number

LABEL_AT = datetime(2026, 11, 20, 14, 30, tzinfo=UTC)


def test_label_numbers_are_deterministic_self_checking_and_carry_the_label_time():
    a = sandbox_label_number(tenant_slug="acme", rma_number="RMA-100001", label_at=LABEL_AT)
    assert a == sandbox_label_number(tenant_slug="acme", rma_number="RMA-100001", label_at=LABEL_AT)
    assert a != sandbox_label_number(tenant_slug="acme", rma_number="RMA-100002", label_at=LABEL_AT)
    assert a != sandbox_label_number(
        tenant_slug="globex", rma_number="RMA-100001", label_at=LABEL_AT
    )
    assert len(a) == 17 and a.startswith("SBX") and a[3:].isdigit()
    adapter = sandbox.Adapter()
    assert adapter.check_digit_valid(a) is True
    broken = a[:-1] + str((int(a[-1]) + 1) % 10)
    assert adapter.check_digit_valid(broken) is False
    assert sandbox.label_time(a) == LABEL_AT


def test_label_is_a_one_page_pdf_with_addresses_and_number():
    label = sandbox_label_create(
        tenant_slug="acme",
        rma_number="RMA-100001",
        label_at=LABEL_AT,
        reference="RMA-100001 / #1001",
        ship_from=["Dana Rivera", "12 Harbor Street", "04101 Portland", "US"],
        ship_to=["Acme returns", "1 Depot Road", "US"],
    )
    pdf = PdfReader(io.BytesIO(label.pdf))
    assert len(pdf.pages) == 1
    width, height = (float(v) for v in pdf.pages[0].mediabox.upper_right)
    assert (round(width), round(height)) == (288, 432)  # 4 x 6 inches
    text = pdf.pages[0].extract_text()
    for expected in ("Sandbox Post", label.tracking_number, "Dana Rivera", "Acme returns"):
        assert expected in text
