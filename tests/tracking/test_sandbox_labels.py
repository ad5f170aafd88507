"""The sandbox carrier's labels (tracking/carriers/sandbox_labels.py): real PDFs and
deterministic `SB` + 10 digits + Luhn check digit numbers."""

from __future__ import annotations

import io

import pytest
from pypdf import PdfReader

from tracking.carriers.sandbox_labels import (
    luhn_check_digit,
    sandbox_label_create,
    sandbox_number_is_valid,
    sandbox_tracking_number,
)


@pytest.mark.parametrize(
    ("digits", "check"),
    [("7992739871", "3"), ("0000000000", "0"), ("1234567890", "3"), ("4992739871", "6")],
)
def test_luhn_check_digit_matches_published_examples(digits, check):
    assert luhn_check_digit(digits) == check


def test_numbers_are_deterministic_per_tenant_and_rma_and_self_checking():
    a = sandbox_tracking_number(tenant_slug="acme", rma_number="RMA-100001")
    assert a == sandbox_tracking_number(tenant_slug="acme", rma_number="RMA-100001")
    assert a != sandbox_tracking_number(tenant_slug="acme", rma_number="RMA-100002")
    assert a != sandbox_tracking_number(tenant_slug="globex", rma_number="RMA-100001")
    assert len(a) == 13 and a.startswith("SB") and a[2:].isdigit()
    assert sandbox_number_is_valid(a)
    broken = a[:-1] + str((int(a[-1]) + 1) % 10)
    assert not sandbox_number_is_valid(broken)
    assert not sandbox_number_is_valid("XX" + a[2:])


def test_label_is_a_one_page_pdf_with_addresses_and_number():
    label = sandbox_label_create(
        tenant_slug="acme",
        rma_number="RMA-100001",
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
