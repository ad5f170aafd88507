"""Customer portal views (DESIGN.md section 10). Interfaces only: parse input, call a
selector or service, render. Full pages normally, a partial when `request.htmx`;
every page works without JavaScript.

The looked-up order lives in the session, signed and short-lived
(`LOOKUP_MAX_AGE`), bound to the tenant: order ids never appear in URLs.
Return pages are reached by their unguessable token; another tenant's token
is the same 404 as a missing one.
"""

from __future__ import annotations

import contextlib
import time
from functools import wraps
from typing import Any

from django.core import signing
from django.core.files.storage import default_storage
from django.http import (
    FileResponse,
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseRedirect,
)
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect

from returns_portal.tenancy.models import Tenant
from rma import ratelimit
from rma.documents import SlipLine, label_pdf, packing_slip_pdf, qr_svg
from rma.forms import LookupForm, ReturnForm, new_submission_nonce
from rma.labels import labels_purchase_for_return
from rma.models import Order, ReturnPhoto, ReturnReason, ReturnRequest
from rma.photos import PhotoRejected, photo_process
from rma.selectors import (
    order_eligibility,
    order_for_lookup,
    primary_shipment,
    return_get_by_token,
    return_reasons_active,
    tracking_page_get,
)
from rma.services import (
    DropoffClaimRefused,
    ReturnRefused,
    return_dropoff_claim,
    return_request_create,
)
from rma.states import MilestoneSource

SESSION_KEY = "portal_lookup"
LOOKUP_SALT = "rma.portal.lookup"
LOOKUP_MAX_AGE = 30 * 60


def portal_view(view):
    """Portal views run on a tenant host in the tenant's time zone (forms and pages)."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        tenant = getattr(request, "tenant", None)
        if tenant is None:
            raise Http404
        with timezone.override(tenant.zone):
            return view(request, *args, **kwargs)

    return wrapper


def _render(
    request: HttpRequest, full: str, partial: str, context: dict, status: int = 200
) -> HttpResponse:
    template = partial if getattr(request, "htmx", False) else full
    return render(request, template, context, status=status)


# --------------------------------------------------------------------------
# Lookup
# --------------------------------------------------------------------------
def _remember_order(request: HttpRequest, tenant: Tenant, order: Order, email: str) -> None:
    request.session[SESSION_KEY] = signing.dumps(
        {"t": tenant.pk, "o": order.pk, "e": email.strip().lower()}, salt=LOOKUP_SALT
    )
    request.session.cycle_key()


def _remembered_order(request: HttpRequest, tenant: Tenant) -> tuple[Order, str] | None:
    """The order looked up in this session (same tenant, at most `LOOKUP_MAX_AGE` old)."""
    raw = request.session.get(SESSION_KEY)
    if not raw:
        return None
    try:
        data = signing.loads(raw, salt=LOOKUP_SALT, max_age=LOOKUP_MAX_AGE)
    except signing.BadSignature:
        request.session.pop(SESSION_KEY, None)
        return None
    if data.get("t") != tenant.pk:
        return None
    order = Order.objects.filter(tenant=tenant, pk=data.get("o")).first()
    if order is None or (order.email or "").strip().lower() != data.get("e"):
        return None
    return order, data["e"]


def _too_many(request: HttpRequest, retry_after: int) -> HttpResponse:
    response = render(request, "portal/too_many.html", {}, status=429)
    response["Retry-After"] = str(retry_after)
    return response


@portal_view
@require_http_methods(["GET", "POST"])
def home(request: HttpRequest) -> HttpResponse:
    """`/`: the lookup form (`email`, `order_number`). Enumeration-safe and rate limited
    (`rma.ratelimit`): an unknown number and a wrong e-mail answer alike."""
    tenant = request.tenant  # type: ignore[attr-defined]
    if request.method == "GET":
        return render(request, "portal/home.html", {"form": LookupForm()})
    form = LookupForm(request.POST)
    if not form.is_valid():
        return _render(
            request, "portal/home.html", "portal/_lookup_form.html", {"form": form}, status=400
        )
    now = time.time()
    wait = ratelimit.hit(ratelimit.LOOKUP_PER_IP, ratelimit.client_ip(request), now=now)
    if wait is None:
        number_key = f"{tenant.pk}:{Order.normalize_number(form.cleaned_data['order_number'])}"
        wait = ratelimit.hit(ratelimit.LOOKUP_PER_ORDER, number_key, now=now)
    if wait is not None:
        return _too_many(request, wait)
    order = order_for_lookup(
        tenant=tenant,
        email=form.cleaned_data["email"],
        order_number=form.cleaned_data["order_number"],
    )
    if order is None:
        form.add_error(
            None,
            _(
                "We couldn't find an order with this e-mail and order number. "
                "Please check both and try again."
            ),
        )
        return _render(request, "portal/home.html", "portal/_lookup_form.html", {"form": form})
    _remember_order(request, tenant, order, form.cleaned_data["email"])
    target = reverse("portal:start")
    if getattr(request, "htmx", False):
        return HttpResponseClientRedirect(target)
    return HttpResponseRedirect(target)


# --------------------------------------------------------------------------
# Choose items and submit
# --------------------------------------------------------------------------
def _order_context(request: HttpRequest, tenant: Tenant, order: Order, form: ReturnForm) -> dict:
    return {
        "order": order,
        "eligibility": form.eligibility,
        "form": form,
        "reasons": form.reasons,
        "photo_reasons": [r.code for r in form.reasons if r.requires_photo],
    }


def _reasons(tenant: Tenant) -> list[ReturnReason]:
    return return_reasons_active(tenant=tenant)


@portal_view
@require_http_methods(["GET", "POST"])
def start(request: HttpRequest) -> HttpResponse:
    """`/return/`: the looked-up order's lines (eligible ones with quantity, reason,
    note, photos; the others with the reason in plain words) and drop-off or
    pickup. POST creates the return (`return_request_create`, committed
    first), then buys the label (`rma.labels`) and redirects to the
    confirmation page."""
    tenant = request.tenant  # type: ignore[attr-defined]
    remembered = _remembered_order(request, tenant)
    if remembered is None:
        return HttpResponseRedirect(reverse("portal:home"))
    order, email = remembered
    now = timezone.now()
    eligibility = order_eligibility(tenant=tenant, order=order, now=now)
    reasons = _reasons(tenant)
    if request.method == "GET":
        form = ReturnForm(
            eligibility=eligibility, reasons=reasons, initial={"nonce": new_submission_nonce()}
        )
        return render(request, "portal/order.html", _order_context(request, tenant, order, form))
    form = ReturnForm(request.POST, request.FILES, eligibility=eligibility, reasons=reasons)
    if not form.is_valid():
        return _render(
            request,
            "portal/order.html",
            "portal/_return_form.html",
            _order_context(request, tenant, order, form),
            status=400,
        )
    chosen = form.chosen_lines()
    photos: dict[int, list] = {}
    for index, (line_id, _line, files) in enumerate(chosen):
        processed = []
        for upload in files:
            try:
                processed.append(photo_process(upload))
            except PhotoRejected as exc:
                form.add_error(f"p_{line_id}", exc.message)
        photos[index] = processed
    if not form.errors:
        try:
            rr = return_request_create(
                tenant=tenant,
                order=order,
                email=email,
                lines=[line for _lid, line, _files in chosen],
                method=form.cleaned_data["method"],
                pickup=form.pickup(),
                photos=photos,
                submission_key=form.cleaned_data["nonce"],
                source=MilestoneSource.CUSTOMER,
                now=now,
                language=get_language() or "en",
            )
        except ReturnRefused as refused:
            line_ids = [lid for lid, _line, _files in chosen]
            for refusal in refused.refusals:
                form.add_error(form.field_for(refusal.field, line_ids), refusal.message)
    if form.errors:
        return _render(
            request,
            "portal/order.html",
            "portal/_return_form.html",
            _order_context(request, tenant, order, form),
            status=400,
        )
    # The RMA is committed: buy the label now, outside any transaction.
    labels_purchase_for_return(return_request=rr)
    target = reverse("portal:confirmation", args=[rr.token])
    if getattr(request, "htmx", False):
        return HttpResponseClientRedirect(target)
    return HttpResponseRedirect(target)


# --------------------------------------------------------------------------
# Return pages (by token)
# --------------------------------------------------------------------------
def _return_or_404(tenant: Tenant, token: str) -> ReturnRequest:
    try:
        return return_get_by_token(tenant=tenant, token=token)
    except ReturnRequest.DoesNotExist as exc:
        raise Http404 from exc


@portal_view
@require_GET
def confirmation(request: HttpRequest, token: str) -> HttpResponse:
    """`/r/<token>/confirmation/`: the RMA, the tracking link, `label.pdf` and `qr.svg`.
    While the label is pending the label box polls (htmx) and offers a refresh link."""
    tenant = request.tenant  # type: ignore[attr-defined]
    try:
        page = tracking_page_get(tenant=tenant, token=token, now=timezone.now())
    except ReturnRequest.DoesNotExist as exc:
        raise Http404 from exc
    return _render(request, "portal/confirmation.html", "portal/_label_status.html", {"page": page})


@portal_view
@require_GET
def tracking(request: HttpRequest, token: str) -> HttpResponse:
    """`/r/<token>/`: the tracking page (`tracking_page_get`: a fixed number of queries).
    Refreshes itself every 30 s with htmx (the partial)."""
    tenant = request.tenant  # type: ignore[attr-defined]
    try:
        page = tracking_page_get(tenant=tenant, token=token, now=timezone.now())
    except ReturnRequest.DoesNotExist as exc:
        raise Http404 from exc
    return _render(request, "portal/tracking.html", "portal/_tracking.html", {"page": page})


@portal_view
@require_POST
def dropped_off(request: HttpRequest, token: str) -> HttpResponse:
    """POST `/r/<token>/dropped-off/`: the customer's "I've dropped it off"."""
    tenant = request.tenant  # type: ignore[attr-defined]
    rr = _return_or_404(tenant, token)
    # A refused claim (no label yet, already scanned) changes nothing: the page shows the state.
    with contextlib.suppress(DropoffClaimRefused):
        return_dropoff_claim(tenant=tenant, return_request=rr, now=timezone.now())
    if getattr(request, "htmx", False):
        page = tracking_page_get(tenant=tenant, token=token, now=timezone.now())
        return render(request, "portal/_tracking.html", {"page": page})
    return HttpResponseRedirect(reverse("portal:tracking", args=[token]))


@portal_view
@require_GET
def qr(request: HttpRequest, token: str) -> HttpResponse:
    """`/r/<token>/qr.svg`: the check-in code `RMA:<tenant slug>:<rma_number>` as SVG."""
    rr = _return_or_404(request.tenant, token)  # type: ignore[attr-defined]
    response = HttpResponse(qr_svg(rr.check_in_code), content_type="image/svg+xml")
    response["Content-Disposition"] = f'inline; filename="{rr.rma_number}-qr.svg"'
    response["Cache-Control"] = "private, max-age=3600"
    return response


@portal_view
@require_GET
def label(request: HttpRequest, token: str) -> HttpResponse:
    """`/r/<token>/label.pdf`: the carrier's label as the adapter returned it (when
    there is one), then the packing slip with the RMA barcode and QR code."""
    tenant = request.tenant  # type: ignore[attr-defined]
    rr = _return_or_404(tenant, token)
    shipments = list(rr.shipments.filter(tenant=tenant))
    shipment = primary_shipment(shipments)
    carrier_label = None
    if shipment is not None and shipment.label_file:
        with default_storage.open(shipment.label_file.name, "rb") as handle:
            carrier_label = handle.read()
    reasons = {r.code: r.label for r in ReturnReason.objects.filter(tenant=tenant)}
    lines = [
        SlipLine(
            sku=line.order_line.sku,
            title=line.order_line.title,
            quantity=line.quantity,
            reason=_(reasons.get(line.reason, line.reason)),
        )
        for line in rr.lines.filter(tenant=tenant).select_related("order_line")
    ]
    centre = rr.return_centre
    address = [centre.name, *centre.address.splitlines(), centre.country] if centre else []
    slip = packing_slip_pdf(
        tenant_name=tenant.name,
        rma_number=rr.rma_number,
        check_in_code=rr.check_in_code,
        order_number=rr.order.number,
        return_address=address,
        lines=lines,
    )
    response = HttpResponse(label_pdf(carrier_label, slip), content_type="application/pdf")
    response["Content-Disposition"] = f'inline; filename="{rr.rma_number}-label.pdf"'
    response["Cache-Control"] = "private, no-store"
    return response


@portal_view
@require_GET
def photo(request: HttpRequest, token: str, public_id: str) -> FileResponse:
    """`/r/<token>/photos/<uuid>/`: a photo of this return, for its customer only."""
    tenant = request.tenant  # type: ignore[attr-defined]
    rr = _return_or_404(tenant, token)
    record = ReturnPhoto.objects.filter(
        tenant=tenant, public_id=public_id, return_line__return_request=rr
    ).first()
    if record is None:
        raise Http404
    return photo_response(record)


def photo_response(record: ReturnPhoto) -> FileResponse:
    """Stream a stored photo with its content type; never sniffable, never cached publicly."""
    response = FileResponse(
        default_storage.open(record.file.name, "rb"), content_type=record.content_type
    )
    response["Content-Disposition"] = "inline"
    response["Cache-Control"] = "private, max-age=300"
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response
