"""Warehouse staff pages on the tenant host (issue 6 item 1): check-in made for a
barcode scanner, and the restock decisions CSV.

Interfaces only: parse input, call one service, render. Login required; the
user needs role agent or admin in THIS host's tenant
(`request_tenant_roles`, intersected with the host): anyone else gets 403,
and a user of another tenant never learns whether an RMA exists here.

The check-in page is a plain form (no JavaScript needed): one autofocused
text input that a keyboard-wedge scanner types into and ends with Enter, a
condition choice that stays as chosen between scans, and large green/red
feedback that names the RMA. A repeat scan shows the stored check-in.
"""

from __future__ import annotations

from datetime import UTC

from django import forms
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import render
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext, gettext_lazy
from django.views.decorators.http import require_GET, require_http_methods

from returns_portal.tenancy.models import Role
from returns_portal.tenancy.services import request_tenant_roles, role_at_least
from rma.models import CheckIn, Disposition, InspectionGrade, PackageCondition
from rma.warehouse import (
    InspectionEntry,
    WarehouseError,
    checkin_record,
    inspected_quantities,
    inspection_record,
    restock_rows,
    return_find_by_scan,
    rows_to_csv,
)

LOGIN_URL = "/admin/login/"


class CheckInForm(forms.Form):
    code = forms.CharField(max_length=200, strip=True)
    condition = forms.ChoiceField(
        choices=PackageCondition.choices,
        initial=PackageCondition.INTACT,
        widget=forms.RadioSelect,
    )


def _checkin_form_error(form: CheckInForm) -> str:
    """The one line shown for a refused scan: the condition first, then the code."""
    if "condition" in form.errors:
        return gettext("Unknown condition: choose intact or damaged.")
    if form.has_error("code", "max_length"):
        return gettext("That code is too long for an RMA code.")
    return gettext("Scan or type an RMA number.")


def _require_agent(request: HttpRequest) -> None:
    tenant = getattr(request, "tenant", None)
    if tenant is None:
        raise Http404
    if not role_at_least(request_tenant_roles(request).get(tenant.pk), Role.AGENT):
        raise PermissionDenied


@login_required(login_url=LOGIN_URL)
@require_http_methods(["GET", "POST"])
def checkin_page(request: HttpRequest) -> HttpResponse:
    """GET: the scan form. POST `code`, `condition`: check the parcel in.

    Answers 200 with `result` (`ok`, `repeat`) or 422 with `error` so a
    scanner station can tell them apart without reading the page.
    """
    _require_agent(request)
    tenant = request.tenant  # type: ignore[attr-defined]
    context: dict = {
        "form": CheckInForm(initial={"condition": request.GET.get("condition", "intact")})
    }
    status = 200
    if request.method == "POST":
        form = CheckInForm(request.POST)
        condition = request.POST.get("condition", PackageCondition.INTACT)
        if condition not in PackageCondition.values:
            condition = PackageCondition.INTACT
        context["form"] = CheckInForm(initial={"condition": condition})
        if not form.is_valid():
            context.update(result="error", message=_checkin_form_error(form))
            status = 422
        else:
            try:
                rr = return_find_by_scan(tenant=tenant, code=form.cleaned_data["code"])
                result = checkin_record(
                    tenant=tenant,
                    return_request=rr,
                    condition=form.cleaned_data["condition"],
                    now=timezone.now(),
                    actor=request.user.get_username(),
                    channel="scanner",
                    user=request.user,
                    scanned_code=form.cleaned_data["code"],
                )
            except WarehouseError as exc:
                context.update(result="error", message=exc.message, code=form.cleaned_data["code"])
                status = 422
            else:
                context.update(
                    result="ok" if result.created else "repeat",
                    return_request=rr,
                    checkin=result.checkin,
                    lines=list(rr.lines.select_related("order_line")),
                )
    template = (
        "warehouse/_checkin_result.html"
        if getattr(request, "htmx", False)
        else "warehouse/checkin.html"
    )
    return render(request, template, context, status=status)


@login_required(login_url=LOGIN_URL)
@require_GET
def restock_csv(request: HttpRequest) -> HttpResponse:
    """The tenant's restock decisions as CSV (`?since=<ISO 8601>`,
    `?disposition=restock,refurbish`); UTC times."""
    _require_agent(request)
    since = None
    if request.GET.get("since"):
        try:
            since = parse_datetime(request.GET["since"])
            if since is not None:
                if since.tzinfo is None:
                    since = since.replace(tzinfo=UTC)
                since = since.astimezone(UTC)
        except (ValueError, OverflowError):
            since = None
        if since is None:
            return HttpResponseBadRequest(
                gettext("since: give an ISO 8601 time, like 2026-11-01T00:00:00Z."),
                content_type="text/plain; charset=utf-8",
            )
    dispositions = [d for d in request.GET.get("disposition", "restock").split(",") if d]
    rows = restock_rows(tenant=request.tenant, dispositions=dispositions, since=since)  # type: ignore[attr-defined]
    response = HttpResponse(rows_to_csv(rows), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="restock.csv"'
    return response


class InspectionLineForm(forms.Form):
    """One return line's entry; `prefix` is the return line's pk."""

    quantity = forms.IntegerField(min_value=1)
    grade = forms.ChoiceField(choices=InspectionGrade.choices, initial=InspectionGrade.A)
    disposition = forms.ChoiceField(choices=Disposition.choices, initial=Disposition.RESTOCK)
    matches = forms.BooleanField(required=False, initial=True, label=gettext_lazy("Item matches"))
    note = forms.CharField(required=False, max_length=1000)
    photo = forms.ImageField(required=False)

    def clean_photo(self):
        photo = self.cleaned_data.get("photo")
        if photo and photo.size > 10 * 1024 * 1024:
            raise forms.ValidationError(gettext("A photo may be at most 10 MB."))
        return photo


@login_required(login_url=LOGIN_URL)
@require_http_methods(["GET", "POST"])
def inspection_page(request: HttpRequest) -> HttpResponse:
    """`?code=<scan>`: the return's lines still to inspect, one entry each (quantity,
    grade, disposition, matches, note, optional photo). POST records them all or
    none (`rma.warehouse.inspection_record`); 422 with the reason when refused."""
    _require_agent(request)
    tenant = request.tenant  # type: ignore[attr-defined]
    code = (request.POST.get("code") or request.GET.get("code") or "").strip()
    context: dict = {"code": code}
    if not code:
        return render(request, "warehouse/inspect.html", context)
    try:
        rr = return_find_by_scan(tenant=tenant, code=code)
    except WarehouseError as exc:
        context.update(result="error", message=exc.message)
        return render(request, "warehouse/inspect.html", context, status=422)
    if not CheckIn.objects.filter(tenant=tenant, return_request=rr).exists():
        context.update(
            result="error", message=f"{rr.rma_number} is not checked in yet: scan it in first."
        )
        return render(request, "warehouse/inspect.html", context, status=422)
    done = inspected_quantities(tenant=tenant, return_request=rr)
    lines = [
        ln for ln in rr.lines.select_related("order_line") if ln.quantity - done.get(ln.pk, 0) > 0
    ]
    data = request.POST if request.method == "POST" else None
    files = request.FILES if request.method == "POST" else None
    forms_ = [
        (
            line,
            line.quantity - done.get(line.pk, 0),
            InspectionLineForm(
                data,
                files,
                prefix=f"l{line.pk}",
                initial={"quantity": line.quantity - done.get(line.pk, 0)},
            ),
        )
        for line in lines
    ]
    context.update(return_request=rr, forms=forms_)
    status = 200
    if request.method == "POST":
        if all(f.is_valid() for _l, _r, f in forms_):
            entries = [
                InspectionEntry(
                    return_line=line,
                    quantity=f.cleaned_data["quantity"],
                    grade=f.cleaned_data["grade"],
                    disposition=f.cleaned_data["disposition"],
                    matches=f.cleaned_data["matches"],
                    note=f.cleaned_data["note"],
                    photo=f.cleaned_data.get("photo"),
                )
                for line, _remaining, f in forms_
            ]
            try:
                result = inspection_record(
                    tenant=tenant,
                    return_request=rr,
                    entries=entries,
                    now=timezone.now(),
                    actor=request.user.get_username(),
                    channel="scanner",
                    user=request.user,
                )
            except WarehouseError as exc:
                context.update(result="error", message=exc.message)
                status = 422
            else:
                context.update(
                    result="ok" if not result.repeat else "repeat",
                    all_inspected=result.all_inspected,
                    forms=[],
                )
        else:
            context.update(result="error", message=gettext("Check the highlighted fields."))
            status = 422
    elif not lines:
        context.update(result="repeat", all_inspected=True)
    return render(request, "warehouse/inspect.html", context, status=status)
