"""return_request_create and its neighbours: validation that writes nothing, locks,
double submits, merchant shipments, labels through the seam, drop-off claims."""

from __future__ import annotations

import io
import threading
from datetime import timedelta

import pytest
from django.core.files.storage import default_storage
from django.db import connection
from pypdf import PdfReader

from refunds.models import Refund
from rma import labels
from rma.models import (
    Milestone,
    Notification,
    ReturnLine,
    ReturnPhoto,
    ReturnPolicy,
    ReturnRequest,
    Shipment,
)
from rma.photos import photo_process
from rma.services import (
    DropoffClaimRefused,
    PickupInput,
    ReturnLineInput,
    ReturnRefused,
    ShipmentInput,
    return_dropoff_claim,
    return_request_create,
    shipment_attach,
)
from tests.conftest import require_postgres
from tests.factories import ReturnLineFactory
from tests.portal_helpers import NOW, jpeg_bytes, order_with_lines, upload
from tracking.carriers import sandbox
from tracking.carriers.sandbox_labels import sandbox_label_number

pytestmark = pytest.mark.django_db

MODELS = (ReturnRequest, ReturnLine, ReturnPhoto, Milestone, Shipment, Notification, Refund)


def counts():
    return {m.__name__: m.objects.count() for m in MODELS}


def create(tenant, order, lines, **kw):
    kw.setdefault("email", "buyer@example.com")
    kw.setdefault("method", "drop_off")
    kw.setdefault("source", "customer")
    kw.setdefault("now", NOW)
    return return_request_create(tenant=tenant, order=order, lines=lines, **kw)


def photo():
    return photo_process(upload("p.jpg", jpeg_bytes(gps=True)))


def refused(tenant, order, lines, media_root, **kw):
    before = counts()
    with pytest.raises(ReturnRefused) as info:
        create(tenant, order, lines, **kw)
    assert counts() == before, "a refusal wrote something"
    photos_dir = media_root / "tenants"
    assert not any(p.is_file() for p in photos_dir.rglob("*")) if photos_dir.exists() else True
    return {(r.field, r.code): r.message for r in info.value.refusals}


def test_create_writes_return_lines_photos_milestone_shipment_refund_and_email(tenant):
    order, (l1, l2) = order_with_lines(tenant)
    rr = create(
        tenant,
        order,
        [
            ReturnLineInput(line_id=l1.line_id, quantity=1, reason="damaged", note=" torn "),
            ReturnLineInput(sku="sku-2", quantity=2, reason="too_small"),
        ],
        photos={0: [photo()]},
        email=" BUYER@example.com ",
        language="de",
    )
    assert rr.rma_number == "RMA-100001" and len(rr.token) >= 32
    assert rr.status == "requested" and rr.email == "buyer@example.com" and rr.language == "de"
    assert [(rl.order_line_id, rl.quantity, rl.reason, rl.note) for rl in rr.lines.all()] == [
        (l1.pk, 1, "damaged", "torn"),
        (l2.pk, 2, "too_small", ""),
    ]
    stored = ReturnPhoto.objects.get()
    assert stored.tenant == tenant and stored.file.name.startswith(f"tenants/{tenant.pk}/photos/")
    milestone = Milestone.objects.get(return_request=rr)
    assert (milestone.name, milestone.source, milestone.reached_at) == (
        "requested",
        "customer",
        NOW,
    )
    shipment = Shipment.objects.get(return_request=rr)
    assert (shipment.carrier, shipment.label_state, shipment.tracking_number) == (
        "sandbox",
        "pending",
        "",
    )
    assert Refund.objects.get(return_request=rr).state == "pending"
    mail = Notification.objects.get(key=f"return_confirmation:{rr.pk}")
    assert mail.to_email == "buyer@example.com" and mail.state == "queued"
    assert f"http://acme.localhost:8000/r/{rr.token}/" in mail.body_text
    assert rr.return_centre.is_default and rr.customer.email_normalized == "buyer@example.com"


def test_refusals_name_line_and_reason_and_write_nothing(tenant, media_root):
    order, (l1, l2) = order_with_lines(tenant)
    ReturnPolicy.objects.filter(tenant=tenant).update(final_sale_skus=["SKU-2"])
    # quantity above what is left, missing photo, final sale, unknown reason
    errors = refused(
        tenant,
        order,
        [
            ReturnLineInput(line_id=l1.line_id, quantity=3, reason="damaged"),
            ReturnLineInput(line_id=l2.line_id, quantity=1, reason="too_small"),
            ReturnLineInput(sku="NOPE", quantity=1, reason="whim"),
        ],
        media_root,
    )
    assert errors[("lines.0.quantity", "quantity_exceeds")] == (
        "Only 2 units of this item are left to return."
    )
    assert ("lines.0.photos", "photo_required") in errors
    assert errors[("lines.1.quantity", "final_sale")].startswith("Final sale")
    assert ("lines.2.sku", "unknown_line") in errors
    assert ("lines.2.reason", "unknown_reason") in errors


def test_window_closed_refusal(tenant, media_root):
    order, (l1, _l2) = order_with_lines(tenant)
    errors = refused(
        tenant,
        order,
        [ReturnLineInput(line_id=l1.line_id, quantity=1, reason="too_small")],
        media_root,
        now=NOW + timedelta(days=60),
    )
    assert "closed on" in errors[("lines.0.quantity", "window_closed")]


def test_wrong_email_and_unknown_order_write_nothing(tenant, media_root):
    order, (l1, _l2) = order_with_lines(tenant)
    lines = [ReturnLineInput(line_id=l1.line_id, quantity=1, reason="too_small")]
    assert ("email", "email_mismatch") in refused(
        tenant, order, lines, media_root, email="someone@else.example"
    )
    assert ("order_number", "order_not_found") in refused(tenant, None, lines, media_root)


def test_units_already_in_returns_count_unless_cancelled_or_rejected(tenant, media_root):
    order, (l1, _l2) = order_with_lines(tenant)
    ReturnLineFactory(return_request__order=order, order_line=l1, quantity=1)
    rejected = ReturnLineFactory(return_request__order=order, order_line=l1, quantity=1)
    ReturnRequest.objects.filter(pk=rejected.return_request_id).update(status="rejected")
    lines = [ReturnLineInput(line_id=l1.line_id, quantity=2, reason="too_small")]
    assert ("lines.0.quantity", "quantity_exceeds") in refused(tenant, order, lines, media_root)
    rr = create(tenant, order, [ReturnLineInput(line_id=l1.line_id, quantity=1, reason="other")])
    assert rr.lines.get().quantity == 1
    errors = refused(tenant, order, lines, media_root)
    assert errors[("lines.0.quantity", "already_returned")] == "Already returned."


def test_ambiguous_sku_and_duplicate_lines(tenant, media_root):
    order, (l1, l2) = order_with_lines(tenant)
    l2.sku = l1.sku
    l2.save()
    errors = refused(
        tenant, order, [ReturnLineInput(sku=l1.sku, quantity=1, reason="other")], media_root
    )
    assert "give line_id" in errors[("lines.0.sku", "ambiguous_sku")]
    errors = refused(
        tenant,
        order,
        [
            ReturnLineInput(line_id=l1.line_id, quantity=1, reason="other"),
            ReturnLineInput(line_id=l1.line_id, quantity=1, reason="other"),
        ],
        media_root,
    )
    assert ("lines.1.line_id", "duplicate_line") in errors


def test_pickup_rules(tenant, media_root):
    order, (l1, _l2) = order_with_lines(tenant)
    lines = [ReturnLineInput(line_id=l1.line_id, quantity=1, reason="other")]
    errors = refused(
        tenant,
        order,
        lines,
        media_root,
        method="pickup",
        pickup=PickupInput(address="", window_start=NOW, window_end=NOW - timedelta(hours=1)),
    )
    assert ("pickup.address", "required") in errors
    assert ("pickup.window_end", "invalid_window") in errors
    ReturnPolicy.objects.filter(tenant=tenant).update(pickup_enabled=False)
    assert ("method", "pickup_unavailable") in refused(
        tenant, order, lines, media_root, method="pickup"
    )
    ReturnPolicy.objects.filter(tenant=tenant).update(pickup_enabled=True)
    window = PickupInput(
        address="1 Main St\nSpringfield",
        window_start=NOW + timedelta(days=1),
        window_end=NOW + timedelta(days=1, hours=4),
    )
    rr = create(tenant, order, lines, method="pickup", pickup=window)
    assert rr.method == "pickup" and rr.pickup_address.startswith("1 Main St")
    assert rr.pickup_window_end - rr.pickup_window_start == timedelta(hours=4)


def test_double_submit_returns_the_first_return(tenant):
    order, (l1, _l2) = order_with_lines(tenant)
    lines = [ReturnLineInput(line_id=l1.line_id, quantity=1, reason="other")]
    first = create(tenant, order, lines, submission_key="portal:abc")
    again = create(tenant, order, lines, submission_key="portal:abc")
    assert again.pk == first.pk and ReturnRequest.objects.count() == 1
    other_order, (o1, _o2) = order_with_lines(tenant, number="#2002")
    with pytest.raises(ReturnRefused):
        create(
            tenant,
            other_order,
            [ReturnLineInput(line_id=o1.line_id, quantity=1, reason="other")],
            submission_key="portal:abc",
        )


def test_merchant_shipment_written_with_label_created_from_api(tenant, media_root):
    order, (l1, _l2) = order_with_lines(tenant)
    lines = [ReturnLineInput(line_id=l1.line_id, quantity=1, reason="other")]
    rr = create(
        tenant,
        order,
        lines,
        source="api",
        shipment=ShipmentInput(carrier="UPS", tracking_number="1z 999 aa1 0123456784"),
    )
    shipment = rr.shipments.get()
    assert (shipment.carrier, shipment.tracking_number, shipment.label_state) == (
        "ups",
        "1Z999AA10123456784",
        "none",
    )
    sources = dict(rr.milestones.values_list("name", "source"))
    assert sources == {"requested": "api", "label_created": "api"}
    assert rr.status == "label_created"
    other_order, (o1, _o2) = order_with_lines(tenant, number="#2002")
    errors = refused(
        tenant,
        other_order,
        [ReturnLineInput(line_id=o1.line_id, quantity=1, reason="other")],
        media_root,
        shipment=ShipmentInput(carrier="ups", tracking_number="1Z999AA10123456784"),
    )
    assert ("shipment.tracking_number", "tracking_number_in_use") in errors
    errors = refused(
        tenant,
        other_order,
        [ReturnLineInput(line_id=o1.line_id, quantity=1, reason="other")],
        media_root,
        shipment=ShipmentInput(carrier="pigeon", tracking_number="x"),
    )
    assert ("shipment.carrier", "unknown_carrier") in errors
    assert ("shipment.tracking_number", "invalid_tracking_number") in errors


def test_sandbox_label_purchase_stores_pdf_number_and_reaches_label_created(tenant):
    order, (l1, _l2) = order_with_lines(tenant)
    rr = create(tenant, order, [ReturnLineInput(line_id=l1.line_id, quantity=1, reason="other")])
    shipment = rr.shipments.get()
    outcome = labels.label_purchase(shipment=shipment, timeout=5, now=NOW)
    assert outcome.status == "ready"
    shipment.refresh_from_db()
    expected = sandbox_label_number(tenant_slug="acme", rma_number=rr.rma_number, label_at=NOW)
    assert shipment.tracking_number == expected
    assert sandbox.Adapter().check_digit_valid(expected) is True
    assert shipment.label_state == "ready" and shipment.tracking_provider == "sandbox"
    with default_storage.open(shipment.label_file.name, "rb") as handle:
        pdf = PdfReader(io.BytesIO(handle.read()))
    text = pdf.pages[0].extract_text()
    assert "Sandbox Post" in text and expected in text and "Acme Outdoor returns" in text
    label_created = rr.milestones.get(name="label_created")
    assert (label_created.source, label_created.reached_at) == ("system", NOW)
    # A second purchase does nothing: the label is bought once.
    assert labels.label_purchase(shipment=shipment, timeout=5).status == "ready"
    assert Shipment.objects.get(pk=shipment.pk).label_file.name == shipment.label_file.name


def test_slow_provider_defers_to_the_task(
    tenant, monkeypatch, settings, django_capture_on_commit_callbacks
):
    order, (l1, _l2) = order_with_lines(tenant)
    rr = create(tenant, order, [ReturnLineInput(line_id=l1.line_id, quantity=1, reason="other")])
    shipment = rr.shipments.get()
    release = threading.Event()

    def slow(request, *, timeout):
        release.wait(5)
        return labels.LabelOutcome.pending()

    sent = []
    monkeypatch.setattr(
        "celery.current_app.send_task", lambda name, args: sent.append((name, args))
    )
    labels.register_label_provider("sandbox", slow)
    settings.LABEL_SYNC_TIMEOUT = 0.05
    try:
        with django_capture_on_commit_callbacks(execute=True):
            outcome = labels.label_purchase_or_defer(shipment=shipment, now=NOW)
    finally:
        release.set()
        from tracking.apps import sandbox_label_provider

        labels.register_label_provider("sandbox", sandbox_label_provider)
    assert outcome.status == "pending"
    assert sent == [("rma.label_purchase", [shipment.pk, tenant.pk])]
    shipment.refresh_from_db()
    assert shipment.label_state == "pending" and shipment.label_attempts == 1
    assert shipment.label_next_attempt_at == NOW + timedelta(seconds=30)
    # The task's try succeeds with the registered sandbox provider.
    from rma.tasks import label_purchase as task

    assert task(shipment.pk, tenant.pk) == "ready"
    assert task(shipment.pk + 999, tenant.pk) == "missing"


def test_permanent_provider_error_fails_the_label(tenant):
    order, (l1, _l2) = order_with_lines(tenant)
    rr = create(tenant, order, [ReturnLineInput(line_id=l1.line_id, quantity=1, reason="other")])

    class CarrierError(Exception):
        permanent = True

    def broken(request, *, timeout):
        raise CarrierError("account suspended")

    labels.register_label_provider("brokenpost", broken)
    try:
        Shipment.objects.filter(return_request=rr).update(carrier="brokenpost")
        outcome = labels.label_purchase(shipment=rr.shipments.get(), timeout=1, now=NOW)
    finally:
        labels.unregister_label_provider("brokenpost")
    assert outcome.status == "failed"
    shipment = rr.shipments.get()
    assert shipment.label_state == "failed" and shipment.label_error == "account suspended"
    assert not rr.milestones.filter(name="label_created").exists()
    # The portal promised the customer a label by e-mail: the tenant's support is told.
    from rma.models import Notification

    notice = Notification.objects.get(return_request=rr, kind="label_failed")
    assert notice.to_email == "support@acme.example"
    assert rr.rma_number in notice.subject and "account suspended" in notice.body_text
    labels.label_purchase(shipment=shipment, timeout=1, now=NOW)  # no second notice
    assert Notification.objects.filter(return_request=rr, kind="label_failed").count() == 1


def test_dropoff_claim_reaches_dropped_off_from_customer_once(tenant):
    order, (l1, _l2) = order_with_lines(tenant)
    rr = create(tenant, order, [ReturnLineInput(line_id=l1.line_id, quantity=1, reason="other")])
    with pytest.raises(DropoffClaimRefused):
        return_dropoff_claim(tenant=tenant, return_request=rr, now=NOW)
    labels.label_purchase(shipment=rr.shipments.get(), timeout=5, now=NOW)
    later = NOW + timedelta(hours=3)
    rr = return_dropoff_claim(tenant=tenant, return_request=rr, now=later)
    again = return_dropoff_claim(tenant=tenant, return_request=rr, now=later + timedelta(hours=1))
    assert again.customer_dropoff_claimed_at == later
    milestone = rr.milestones.get(name="dropped_off")
    assert (milestone.source, milestone.reached_at) == ("customer", later)
    assert again.status == "dropped_off"


def test_shipment_attach_replaces_a_pending_label_and_refuses_foreign_numbers(tenant):
    order, (l1, _l2) = order_with_lines(tenant)
    rr = create(tenant, order, [ReturnLineInput(line_id=l1.line_id, quantity=1, reason="other")])
    shipment, created = shipment_attach(
        tenant=tenant, return_request=rr, carrier="fedex", tracking_number="7946 1234 5678", now=NOW
    )
    assert created and shipment.is_primary and shipment.tracking_number == "794612345678"
    pending = rr.shipments.get(carrier="sandbox")
    assert not pending.is_primary and pending.label_state == "failed"
    assert rr.milestones.get(name="label_created").source == "api"
    same, created = shipment_attach(
        tenant=tenant, return_request=rr, carrier="fedex", tracking_number="794612345678", now=NOW
    )
    assert same.pk == shipment.pk and not created
    other = create(
        tenant,
        order,
        [ReturnLineInput(line_id=l1.line_id, quantity=1, reason="other")],
    )
    with pytest.raises(ReturnRefused) as info:
        shipment_attach(
            tenant=tenant,
            return_request=other,
            carrier="fedex",
            tracking_number="794612345678",
            now=NOW,
        )
    assert info.value.refusals[0].code == "tracking_number_in_use"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_submissions_never_over_return(tenant):
    """Two submissions for the last units race; the order row lock lets one through."""
    require_postgres()
    order, (l1, _l2) = order_with_lines(tenant)
    barrier = threading.Barrier(2)
    results = []

    def submit(key):
        try:
            barrier.wait(5)
            rr = create(
                tenant,
                order,
                [ReturnLineInput(line_id=l1.line_id, quantity=2, reason="other")],
                submission_key=key,
            )
            results.append(rr.rma_number)
        except ReturnRefused as exc:
            results.append(exc.refusals[0].code)
        finally:
            connection.close()

    threads = [threading.Thread(target=submit, args=(f"k{i}",)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert sorted(results) == ["RMA-100001", "already_returned"]
    assert ReturnLine.objects.filter(order_line=l1).count() == 1


def test_exchange_line_records_the_wanted_variant_and_its_exchange(tenant):
    from refunds.models import Exchange

    order, (l1, _l2) = order_with_lines(tenant)
    rr = create(
        tenant,
        order,
        [
            ReturnLineInput(
                line_id=l1.line_id,
                quantity=1,
                reason="too_small",
                resolution="exchange",
                exchange_sku="TRS-10",
            )
        ],
    )
    (line,) = rr.lines.all()
    assert (line.resolution, line.exchange_sku) == ("exchange", "TRS-10")
    assert Exchange.objects.get(return_line=line).exchange_sku == "TRS-10"


def test_store_credit_lines_make_a_store_credit_refund(tenant):
    from refunds.models import Refund

    order, (l1, _l2) = order_with_lines(tenant)
    rr = create(
        tenant,
        order,
        [
            ReturnLineInput(
                line_id=l1.line_id, quantity=1, reason="too_small", resolution="store_credit"
            )
        ],
    )
    assert rr.lines.get().resolution == "store_credit"
    assert Refund.objects.get(return_request=rr).method == "store_credit"


@pytest.mark.parametrize(
    ("resolution", "exchange_sku", "code"),
    [("exchange", "", "exchange_sku_required"), ("cash", "", "invalid_resolution")],
)
def test_exchange_refusals_write_nothing(tenant, resolution, exchange_sku, code):
    order, (l1, _l2) = order_with_lines(tenant)
    with pytest.raises(ReturnRefused) as info:
        create(
            tenant,
            order,
            [
                ReturnLineInput(
                    line_id=l1.line_id,
                    quantity=1,
                    reason="too_small",
                    resolution=resolution,
                    exchange_sku=exchange_sku,
                )
            ],
        )
    assert code in {r.code for r in info.value.refusals}
    assert not ReturnRequest.objects.exists()


def test_exchange_for_the_same_variant_is_refused(tenant):
    order, (l1, _l2) = order_with_lines(tenant)
    with pytest.raises(ReturnRefused) as info:
        create(
            tenant,
            order,
            [
                ReturnLineInput(
                    line_id=l1.line_id,
                    quantity=1,
                    reason="too_small",
                    resolution="exchange",
                    exchange_sku=l1.sku.lower(),
                )
            ],
        )
    assert [r.code for r in info.value.refusals] == ["same_variant"]


@pytest.mark.parametrize(
    ("start", "length", "field", "code", "message"),
    [
        (
            timedelta(days=365 * 7000),
            timedelta(hours=4),
            "pickup.window_start",
            "window_too_far",
            "The pickup must start within 30 days.",
        ),
        (
            timedelta(days=30, minutes=1),
            timedelta(hours=4),
            "pickup.window_start",
            "window_too_far",
            "The pickup must start within 30 days.",
        ),
        (
            timedelta(days=1),
            timedelta(days=7, minutes=1),
            "pickup.window_end",
            "window_too_long",
            "A pickup window can be at most 7 days long.",
        ),
    ],
)
def test_pickup_window_is_bounded(tenant, media_root, start, length, field, code, message):
    order, (l1, _l2) = order_with_lines(tenant)
    lines = [ReturnLineInput(line_id=l1.line_id, quantity=1, reason="other")]
    window = PickupInput(
        address="1 Main St", window_start=NOW + start, window_end=NOW + start + length
    )
    errors = refused(tenant, order, lines, media_root, method="pickup", pickup=window)
    assert errors == {(field, code): message}


def test_pickup_window_at_the_bounds_is_accepted(tenant):
    order, (l1, _l2) = order_with_lines(tenant)
    lines = [ReturnLineInput(line_id=l1.line_id, quantity=1, reason="other")]
    window = PickupInput(
        address="1 Main St",
        window_start=NOW + timedelta(days=30),
        window_end=NOW + timedelta(days=37),
    )
    rr = create(tenant, order, lines, method="pickup", pickup=window)
    assert (rr.pickup_window_start, rr.pickup_window_end) == (
        NOW + timedelta(days=30),
        NOW + timedelta(days=37),
    )
