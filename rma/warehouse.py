"""Warehouse services: check-in and inspection (MISSION "three layers", layer 3;
DESIGN.md sections 5 and 8.5; issue 6 item 1). Every write here goes through
`rma.services` for milestones and exceptions.

- `scan_parse` reads what a scanner or a person typed: the RMA check-in code
  from `qr.svg` (`RMA:<tenant slug>:<rma_number>`), the label's barcode (the
  RMA number or the shipment's tracking number) or a typed RMA number
  (`RMA-100001`, `rma-100001`, `100001`).
- `return_find_by_scan` resolves it within ONE tenant: another tenant's code
  raises `ForeignReturn` and an unknown one `UnknownReturn`; both carry a
  message made for the staff page.
- `checkin_record` records who, when and the package `condition`; reaches
  `received` (source `check-in`) and, when no carrier delivery came,
  `delivered` at the same instant (source `check-in`; a carrier delivery
  later replaces it, DESIGN.md section 5). A damaged package opens
  `damaged_package`. A repeat returns the stored check-in (`created=False`).
- `inspection_record` records entries per return line and quantity; when
  every returned unit is inspected the return reaches `inspected` (source
  `staff`). `matches=False` opens `warehouse_mismatch`; a unit graded `D`
  with a note (the damage described) opens `damaged_package`. Entries for a
  line already fully inspected before the call are repeats and write
  nothing; within one call, entries share the line's units (more is refused).

Locks: the return row (`select_for_update`) first, so concurrent scans of
one parcel serialize; `milestone_reach` then takes the same row again.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import Q, Sum
from django.utils.translation import gettext

from returns_portal.tenancy.models import Tenant
from rma.models import (
    CheckIn,
    Disposition,
    ExceptionKind,
    Inspection,
    InspectionGrade,
    Milestone,
    PackageCondition,
    ReturnLine,
    ReturnRequest,
    Shipment,
    ShipmentDirection,
)
from rma.services import (
    ensure_same_tenant,
    exception_open,
    milestone_reach,
    shipment_hooks_run_created,
)
from rma.states import CLOSED_STATUSES, MilestoneName, MilestoneSource


class WarehouseError(Exception):
    """A refusal with a message for staff (`code` is stable for the API)."""

    code = "warehouse_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UnknownReturn(WarehouseError):
    code = "unknown_rma"


class ForeignReturn(WarehouseError):
    code = "foreign_rma"


class ReturnNotOpen(WarehouseError):
    code = "return_closed"


class InspectionRefused(WarehouseError):
    code = "inspection_refused"


# --------------------------------------------------------------------------
# Scanning
# --------------------------------------------------------------------------
@dataclass(frozen=True)
class ScanCode:
    """A parsed scan: `tenant_slug` only for an `RMA:` code; `rma_number` normalized to
    `RMA-<digits>` when it looks like one; `raw` the trimmed input."""

    raw: str
    tenant_slug: str | None
    rma_number: str | None


_RMA_NUMBER = re.compile(r"^(?:rma[-\s]?)?(\d{4,12})$", re.IGNORECASE)


def scan_parse(code: str) -> ScanCode:
    """Parse scanner or keyboard input (pure). Never raises."""
    raw = (code or "").strip()
    if raw.upper().startswith("RMA:"):
        parts = raw.split(":")
        if len(parts) == 3:
            number = _RMA_NUMBER.match(parts[2].strip())
            return ScanCode(
                raw=raw,
                tenant_slug=parts[1].strip().lower(),
                rma_number=f"RMA-{number.group(1)}" if number else parts[2].strip().upper(),
            )
        return ScanCode(raw=raw, tenant_slug=None, rma_number=None)
    number = _RMA_NUMBER.match(raw)
    return ScanCode(
        raw=raw, tenant_slug=None, rma_number=f"RMA-{number.group(1)}" if number else None
    )


def return_find_by_scan(*, tenant: Tenant, code: str) -> ReturnRequest:
    """The tenant's return for a scan. Raises `ForeignReturn` for another tenant's
    `RMA:` code and `UnknownReturn` when nothing of this tenant matches (never
    says whether another tenant has that number or tracking number)."""
    scan = scan_parse(code)
    if not scan.raw:
        raise UnknownReturn(gettext("Nothing was scanned."))
    if scan.tenant_slug is not None and scan.tenant_slug != tenant.slug:
        raise ForeignReturn(
            gettext("This parcel belongs to another shop (%(shop)s). Do not check it in here.")
            % {"shop": scan.tenant_slug}
        )
    qs = ReturnRequest.objects.select_related("order").filter(tenant=tenant)
    if scan.rma_number:
        found = qs.filter(rma_number=scan.rma_number).first()
        if found is not None:
            return found
    if scan.tenant_slug is None:
        number = re.sub(r"\s+", "", scan.raw).upper()
        shipment = (
            Shipment.objects.select_related("return_request__order")
            .filter(tenant=tenant, tracking_number=number, direction=ShipmentDirection.INBOUND)
            .order_by("-leg")
            .first()
        )
        if shipment is not None:
            return shipment.return_request
    raise UnknownReturn(
        gettext("No return found for “%(code)s”. Check the label and try again.")
        % {"code": scan.raw[:60]}
    )


def return_get_by_number(*, tenant: Tenant, rma_number: str) -> ReturnRequest:
    """The tenant's return by RMA number (`ReturnRequest.DoesNotExist` for missing and foreign)."""
    scan = scan_parse(rma_number)
    number = scan.rma_number or rma_number.strip().upper()
    return ReturnRequest.objects.select_related("order").get(tenant=tenant, rma_number=number)


# --------------------------------------------------------------------------
# Check-in
# --------------------------------------------------------------------------
@dataclass(frozen=True)
class CheckInResult:
    checkin: CheckIn
    created: bool


@transaction.atomic
def checkin_record(
    *,
    tenant: Tenant,
    return_request: ReturnRequest,
    condition: str,
    now: datetime,
    actor: str,
    channel: str,
    user: Any = None,
    scanned_code: str = "",
    note: str = "",
) -> CheckInResult:
    """Check a return in (module docstring). Idempotent: a repeat returns the stored row.

    Raises `ReturnNotOpen` for a cancelled or rejected return and `ValueError`
    for an unknown condition. `now` (UTC) is the check-in instant.
    """
    ensure_same_tenant(tenant, return_request)
    PackageCondition(condition)
    locked = ReturnRequest.objects.select_for_update(no_key=True, of=("self",)).get(
        pk=return_request.pk, tenant=tenant
    )
    existing = CheckIn.objects.filter(tenant=tenant, return_request=locked).first()
    if existing is not None:
        return CheckInResult(existing, created=False)
    if locked.status in ("cancelled", "rejected"):
        raise ReturnNotOpen(f"{locked.rma_number} is {locked.status}; it cannot be checked in.")
    checkin = CheckIn.objects.create(
        tenant=tenant,
        return_request=locked,
        condition=condition,
        checked_in_at=now,
        checked_in_by=user if getattr(user, "pk", None) else None,
        actor=actor[:200],
        channel=channel,
        scanned_code=scanned_code[:200],
        note=note[:500],
    )
    if not Milestone.objects.filter(
        tenant=tenant, return_request=locked, name=MilestoneName.DELIVERED
    ).exists():
        milestone_reach(
            tenant=tenant,
            return_request=locked,
            name=MilestoneName.DELIVERED,
            reached_at=now,
            source=MilestoneSource.CHECK_IN,
            now=now,
            actor=actor,
        )
    milestone_reach(
        tenant=tenant,
        return_request=locked,
        name=MilestoneName.RECEIVED,
        reached_at=now,
        source=MilestoneSource.CHECK_IN,
        now=now,
        actor=actor,
    )
    if condition == PackageCondition.DAMAGED:
        exception_open(
            tenant=tenant,
            return_request=locked,
            kind=ExceptionKind.DAMAGED_PACKAGE,
            opened_at=now,
            reason="damaged_at_checkin",
            detail=f"Package damaged at check-in ({actor}). {note}".strip()[:500],
            condition_key="checkin",
        )
    return_request.status = locked.status
    return CheckInResult(checkin, created=True)


# --------------------------------------------------------------------------
# Inspection
# --------------------------------------------------------------------------
@dataclass(frozen=True)
class InspectionEntry:
    """One entry: `return_line` (of the return), `quantity` (None = every unit of the
    line not yet inspected), `grade` A-D, `disposition`, `matches`, `note`, `photo`."""

    return_line: ReturnLine
    grade: str
    disposition: str
    matches: bool = True
    quantity: int | None = None
    note: str = ""
    photo: Any = None


@dataclass(frozen=True)
class InspectionResult:
    """`created` rows written by this call; `all_inspected` whether every returned unit
    now is; `repeat` True when nothing was written (every entry's line was complete)."""

    created: list[Inspection] = field(default_factory=list)
    all_inspected: bool = False
    repeat: bool = False


def inspected_quantities(*, tenant: Tenant, return_request: ReturnRequest) -> dict[int, int]:
    """`{return_line_id: units inspected}` for the return."""
    rows = (
        Inspection.objects.filter(tenant=tenant, return_request=return_request)
        .values("return_line_id")
        .annotate(n=Sum("quantity"))
    )
    return {row["return_line_id"]: row["n"] or 0 for row in rows}


@transaction.atomic
def inspection_record(
    *,
    tenant: Tenant,
    return_request: ReturnRequest,
    entries: Iterable[InspectionEntry],
    now: datetime,
    actor: str,
    channel: str,
    user: Any = None,
) -> InspectionResult:
    """Record inspection entries (module docstring). All or nothing.

    Raises `InspectionRefused` when the return is not checked in, a line
    belongs to another return, a grade/disposition is unknown or a quantity
    exceeds the units still to inspect on its line.
    """
    ensure_same_tenant(tenant, return_request)
    locked = ReturnRequest.objects.select_for_update(no_key=True, of=("self",)).get(
        pk=return_request.pk, tenant=tenant
    )
    if not CheckIn.objects.filter(tenant=tenant, return_request=locked).exists():
        raise InspectionRefused(f"{locked.rma_number} is not checked in yet: scan it in first.")
    done = inspected_quantities(tenant=tenant, return_request=locked)
    before = dict(done)
    lines = {
        line.pk: line for line in ReturnLine.objects.filter(tenant=tenant, return_request=locked)
    }
    created: list[Inspection] = []
    for entry in entries:
        line = lines.get(entry.return_line.pk)
        if line is None:
            raise InspectionRefused(gettext("A line does not belong to this return."))
        if entry.grade not in InspectionGrade.values:
            raise InspectionRefused(
                gettext("Unknown grade %(grade)s (A, B, C or D).") % {"grade": repr(entry.grade)}
            )
        if entry.disposition not in Disposition.values:
            raise InspectionRefused(
                gettext("Unknown disposition %(disposition)s.")
                % {"disposition": repr(entry.disposition)}
            )
        if before.get(line.pk, 0) >= line.quantity:
            continue  # a repeat: this line was fully inspected before this call
        # Entries of this call share the line's units: one past them is refused, never
        # dropped (a dropped "does not match" entry would let the refund go ahead).
        remaining = line.quantity - done.get(line.pk, 0)
        quantity = remaining if entry.quantity is None else entry.quantity
        if quantity < 1 or quantity > remaining:
            raise InspectionRefused(
                gettext("Line %(line)s: %(given)s units given, %(left)s left to inspect.")
                % {"line": line.order_line.sku or line.pk, "given": quantity, "left": remaining}
            )
        inspection = Inspection(
            tenant=tenant,
            return_request=locked,
            return_line=line,
            quantity=quantity,
            grade=entry.grade,
            disposition=entry.disposition,
            matches=entry.matches,
            note=entry.note,
            inspected_at=now,
            inspected_by=user if getattr(user, "pk", None) else None,
            actor=actor[:200],
            channel=channel,
        )
        if entry.photo:
            inspection.photo = entry.photo
        inspection.save()
        created.append(inspection)
        done[line.pk] = done.get(line.pk, 0) + quantity
        sku = line.order_line.sku or f"line {line.pk}"
        if not entry.matches:
            exception_open(
                tenant=tenant,
                return_request=locked,
                kind=ExceptionKind.WAREHOUSE_MISMATCH,
                opened_at=now,
                reason="item_mismatch",
                detail=f"{sku}: the item received does not match. {entry.note}".strip()[:500],
                condition_key=f"line:{line.pk}",
            )
        if entry.grade == InspectionGrade.D and entry.note.strip():
            exception_open(
                tenant=tenant,
                return_request=locked,
                kind=ExceptionKind.DAMAGED_PACKAGE,
                opened_at=now,
                reason="damaged_at_inspection",
                detail=f"{sku} graded D: {entry.note}"[:500],
                condition_key=f"inspection:{line.pk}",
            )
    all_inspected = all(done.get(pk, 0) >= line.quantity for pk, line in lines.items()) and bool(
        lines
    )
    if created and all_inspected:
        milestone_reach(
            tenant=tenant,
            return_request=locked,
            name=MilestoneName.INSPECTED,
            reached_at=now,
            source=MilestoneSource.STAFF,
            now=now,
            actor=actor,
        )
    return InspectionResult(created=created, all_inspected=all_inspected, repeat=not created)


# --------------------------------------------------------------------------
# Restock export (selector) and outbound shipments for exchanges
# --------------------------------------------------------------------------
RESTOCK_COLUMNS = [
    "rma_number",
    "order_number",
    "sku",
    "title",
    "quantity",
    "grade",
    "disposition",
    "matches",
    "inspected_at",
    "inspected_by",
    "note",
]


def restock_rows(
    *,
    tenant: Tenant,
    dispositions: Iterable[str] = (Disposition.RESTOCK,),
    since: datetime | None = None,
    inspections: Iterable[Inspection] | None = None,
) -> list[list[str]]:
    """Rows of the restock decisions export for ONE tenant (header first).

    Times are UTC ISO 8601. `inspections`, when given (an admin selection),
    is filtered to the tenant as well.
    """
    qs = Inspection.objects.filter(tenant=tenant).select_related(
        "return_request__order", "return_line__order_line"
    )
    if inspections is not None:
        qs = qs.filter(pk__in=[i.pk for i in inspections])
    else:
        qs = qs.filter(disposition__in=list(dispositions))
    if since is not None:
        qs = qs.filter(inspected_at__gte=since)
    rows = [RESTOCK_COLUMNS]
    for ins in qs.order_by("inspected_at", "pk"):
        line = ins.return_line.order_line
        rows.append(
            [
                ins.return_request.rma_number,
                ins.return_request.order.number,
                line.sku,
                line.title,
                str(ins.quantity),
                ins.grade,
                ins.disposition,
                "yes" if ins.matches else "no",
                ins.inspected_at.isoformat().replace("+00:00", "Z"),
                ins.actor,
                ins.note.replace("\n", " "),
            ]
        )
    return rows


def rows_to_csv(rows: list[list[str]]) -> str:
    """CSV text; cells that a spreadsheet would run as a formula are prefixed with `'`."""
    out = io.StringIO()
    writer = csv.writer(out)
    for row in rows:
        writer.writerow(["'" + c if c[:1] in ("=", "+", "-", "@") else c for c in row])
    return out.getvalue()


@transaction.atomic
def outbound_key(carrier: str, tracking_number: str) -> tuple[str, str]:
    """`(carrier code, tracking number)` as an outbound shipment stores them."""
    return carrier.strip().lower(), re.sub(r"\s+", "", tracking_number).upper()


def outbound_shipment_create(
    *,
    tenant: Tenant,
    return_request: ReturnRequest,
    carrier: str,
    tracking_number: str,
    now: datetime,
) -> tuple[Shipment, bool]:
    """The replacement's OUTBOUND shipment of an exchange (one primary per return).

    Idempotent on (tenant, carrier, tracking number, leg 1): a repeat returns
    the existing shipment with `created=False`. Raises `ValueError` when the
    number belongs to another return.
    """
    ensure_same_tenant(tenant, return_request)
    carrier, number = outbound_key(carrier, tracking_number)
    existing = Shipment.objects.filter(
        tenant=tenant, carrier=carrier, tracking_number=number, leg=1
    ).first()
    if existing is not None:
        if existing.return_request_id != return_request.pk:
            raise ValueError(gettext("This tracking number belongs to another return."))
        return existing, False
    has_primary = Shipment.objects.filter(
        Q(is_primary=True),
        tenant=tenant,
        return_request=return_request,
        direction=ShipmentDirection.OUTBOUND,
    ).exists()
    shipment = Shipment.objects.create(
        tenant=tenant,
        return_request=return_request,
        direction=ShipmentDirection.OUTBOUND,
        is_primary=not has_primary,
        carrier=carrier,
        tracking_provider=carrier,
        tracking_number=number,
        shipped_at=now,
        created_at=now,
        updated_at=now,
    )
    shipment_hooks_run_created(shipment, now=now)
    return shipment, True


def return_is_open(return_request: ReturnRequest) -> bool:
    return return_request.status not in CLOSED_STATUSES
