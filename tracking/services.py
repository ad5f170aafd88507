"""tracking services: carrier accounts, status overrides, tracking-number
validation, and what happens when a shipment appears (attach events kept for
its number, flag its check digit, schedule its first poll).

Ingest itself is `tracking.ingest.tracking_events_ingest`; webhooks
`tracking.webhooks`; polling `tracking.polling`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from returns_portal.tenancy import crypto
from returns_portal.tenancy.models import Tenant
from rma import services as rma_services
from rma.models import Shipment
from tracking.carriers.mapping import load_mapping
from tracking.carriers.registry import get_adapter
from tracking.ingest import (
    canonical_number,
    shipment_tracking_recompute,
    tracking_number_check,
    tracking_results_ingest,
)
from tracking.models import (
    CarrierAccount,
    PayloadState,
    RawPayload,
    StatusOverride,
    TrackingEvent,
    UnmatchedPayload,
    UnmatchedTrackingNumber,
)
from tracking.normalize import classify
from tracking.selectors import (
    normalized_from_row,
    pollable_providers,
    status_overrides_for,
    webhook_secret_cache_clear,
)

log = logging.getLogger(__name__)

__all__ = [
    "carrier_account_save",
    "raw_payloads_prune",
    "shipment_attach_unmatched",
    "shipment_created",
    "status_override_save",
    "status_overrides_apply",
    "tracking_number_check",
    "tracking_number_validate",
]


# --------------------------------------------------------------------------
# Tracking numbers
# --------------------------------------------------------------------------
def tracking_number_validate(carrier: str, number: str) -> str:
    """Validate a number a customer typed for `carrier`; return it normalized.

    Raises `django.core.exceptions.ValidationError` with a clear message for
    an empty number, an unknown carrier, or a number whose check digit fails
    the carrier's scheme (UPS 1Z, FedEx, USPS, DHL Express, sandbox). Numbers
    from carrier payloads or the API are never refused: they are only flagged
    (`Shipment.number_check`, via `tracking_number_check`).
    """
    try:
        adapter = get_adapter(carrier)
    except KeyError as exc:
        raise ValidationError(
            _("Unknown carrier %(carrier)s."), code="unknown_carrier", params={"carrier": carrier}
        ) from exc
    normalized = adapter.normalize_tracking_number(number or "")
    if not normalized:
        raise ValidationError(_("Enter the tracking number."), code="required")
    if adapter.check_digit_valid(normalized) is False:
        raise ValidationError(
            _(
                "%(number)s is not a valid %(carrier)s tracking number: its check digit does "
                "not match. Please check it for typing errors."
            ),
            code="check_digit",
            params={"number": normalized, "carrier": adapter.name or carrier},
        )
    return normalized


# --------------------------------------------------------------------------
# Carrier accounts
# --------------------------------------------------------------------------
@transaction.atomic
def carrier_account_save(
    *,
    tenant: Tenant,
    carrier: str,
    now: datetime,
    credentials: Mapping[str, str] | None = None,
    webhook_secret: str | None = None,
    test_mode: bool | None = None,
    is_active: bool | None = None,
    name: str | None = None,
) -> CarrierAccount:
    """Create or update the tenant's account for `carrier`.

    `credentials` (a str->str map of the adapter's keys) and `webhook_secret`
    are encrypted with `FIELD_ENCRYPTION_KEYS` (MultiFernet); None keeps the
    stored value, `{}`/`""` clears it. Raises `ValidationError` for an
    unknown carrier code. When the account is active, the tenant's shipments
    reported by that carrier that are not delivered and not scheduled get a
    first poll at `now`.
    """
    try:
        get_adapter(carrier)
    except KeyError as exc:
        raise ValidationError({"carrier": _("Unknown carrier code.")}) from exc
    account = (
        CarrierAccount.objects.select_for_update().filter(tenant=tenant, carrier=carrier).first()
    )
    if account is None:
        account = CarrierAccount(tenant=tenant, carrier=carrier, created_at=now)
    if credentials is not None:
        account.credentials_encrypted = (
            crypto.encrypt_json({str(k): str(v) for k, v in credentials.items()})
            if credentials
            else ""
        )
    if webhook_secret is not None:
        account.webhook_secret_encrypted = crypto.encrypt(webhook_secret)
    if test_mode is not None:
        account.test_mode = test_mode
    if is_active is not None:
        account.is_active = is_active
    if name is not None:
        account.name = name[:100]
    account.updated_at = now
    account.save()
    transaction.on_commit(webhook_secret_cache_clear)
    webhook_secret_cache_clear()
    if account.is_active:
        _poll_schedule_unscheduled(tenant=tenant, provider=carrier, now=now)
    return account


def _poll_schedule_unscheduled(*, tenant: Tenant, provider: str, now: datetime) -> int:
    ids = list(
        Shipment.objects.filter(
            tenant=tenant, tracking_provider=provider, next_poll_at__isnull=True
        )
        .exclude(status="delivered")
        .values_list("pk", flat=True)[:10_000]
    )
    for shipment in Shipment.objects.filter(pk__in=ids):
        rma_services.shipment_summary_update(shipment=shipment, now=now, next_poll_at=now)
    return len(ids)


# --------------------------------------------------------------------------
# Status overrides
# --------------------------------------------------------------------------
def override_code_normalize(carrier: str, raw_code: str) -> str:
    """A code as the provider's mapping normalizes it (case, zero padding), so an
    override matches `TrackingEvent.lookup_code`; composite keys (`a/b`, `X:Y`)
    are normalized part by part."""
    adapter = get_adapter(carrier)
    mapping = load_mapping(adapter.mapping or carrier)
    parts = re.split(r"([:/])", raw_code.strip())
    return "".join(p if p in (":", "/") else (mapping.norm(p) or p) for p in parts)


@transaction.atomic
def status_override_save(
    *,
    tenant: Tenant,
    carrier: str,
    raw_code: str,
    status: str,
    now: datetime,
    exception_reason: str = "",
    note: str = "",
    override: StatusOverride | None = None,
    apply: bool = True,
) -> StatusOverride:
    """Create or update a tenant override `(carrier, raw_code) -> status[, reason]`.

    Validation errors (unknown carrier, exception without a reason, a reason
    on a non-exception) raise `ValidationError`. With `apply`, stored
    `unknown` events with that code are re-normalized at once
    (`status_overrides_apply`); events with a mapped status never change.
    The admin records history (django-simple-history).
    """
    try:
        code = override_code_normalize(carrier, raw_code)
    except KeyError as exc:
        raise ValidationError({"carrier": _("Unknown carrier code.")}) from exc
    if override is None:
        override = StatusOverride.objects.filter(
            tenant=tenant, carrier=carrier, raw_code=code
        ).first() or StatusOverride(tenant=tenant, created_at=now)
    elif override.tenant_id != tenant.pk:
        raise ValidationError(_("This override belongs to another tenant."))
    override.carrier = carrier
    override.raw_code = code
    override.status = status
    override.exception_reason = exception_reason
    override.note = note[:300]
    override.updated_at = now
    override.full_clean(validate_unique=False)
    override.save()
    if apply:
        status_overrides_apply(tenant=tenant, now=now, carrier=carrier, raw_code=code)
    return override


@transaction.atomic
def status_overrides_apply(
    *, tenant: Tenant, now: datetime, carrier: str | None = None, raw_code: str | None = None
) -> int:
    """Re-normalize the tenant's stored `unknown` events with its overrides
    (optionally one provider / code) and recompute the shipments touched.

    Only `unknown` events change (DESIGN.md section 5); each keeps its row
    and its dedupe key (keys are computed without overrides,
    `tracking.ingest.storage_key`) and gets the new status and reason. Returns
    the number of events re-normalized. Locks the touched shipments by
    primary key before writing.
    """
    overrides = status_overrides_for(tenant=tenant)
    if not overrides:
        return 0
    rows = TrackingEvent.objects.filter(tenant=tenant, status="unknown")
    if carrier:
        rows = rows.filter(provider=carrier)
    if raw_code is not None:
        rows = rows.filter(lookup_code=raw_code)
    shipment_ids = sorted(set(rows.values_list("shipment_id", flat=True)[:50_000]))
    if not shipment_ids:
        return 0
    shipments = list(
        Shipment.objects.select_for_update()
        .filter(tenant=tenant, pk__in=shipment_ids)
        .select_related("return_request", "tenant")
        .order_by("pk")
    )
    changed = 0
    for shipment in shipments:
        touched = False
        for row in rows.filter(shipment=shipment):
            ev = normalized_from_row(row, tracking_number=shipment.tracking_number)
            status, reason, key, code, forced = classify(
                ev.raw, carrier=row.provider, overrides=overrides
            )
            if status == "unknown":
                continue
            TrackingEvent.objects.filter(pk=row.pk).update(
                status=status,
                exception_reason=reason or "",
                mapping_key=key or "",
                lookup_code=code or row.lookup_code,
                overridden=forced,
            )
            changed += 1
            touched = True
        if touched:
            shipment_tracking_recompute(shipment=shipment, now=now)
    return changed


# --------------------------------------------------------------------------
# Shipments appearing
# --------------------------------------------------------------------------
def shipment_created(shipment: Shipment, *, now: datetime) -> None:
    """The `rma.hooks` "shipment created" hook (runs in the creating transaction).

    Flags the number's check digit (`number_check`, never refuses it),
    schedules the first poll at `now` when the tenant may poll the provider
    (an active `CarrierAccount`, or the `sandbox`) and attaches events kept
    for the number (`shipment_attach_unmatched`).
    """
    fields: dict[str, object] = {}
    if shipment.number_check == "unknown":
        check = tracking_number_check(shipment.carrier, shipment.tracking_number)
        if check != "unknown":
            fields["number_check"] = check
    if (
        shipment.next_poll_at is None
        and shipment.status != "delivered"
        and shipment.tracking_provider in pollable_providers(tenant=shipment.tenant_id)
    ):
        fields["next_poll_at"] = now
    if fields:
        rma_services.shipment_summary_update(shipment=shipment, now=now, **fields)
    shipment_attach_unmatched(shipment=shipment, now=now)


@transaction.atomic
def shipment_attach_unmatched(*, shipment: Shipment, now: datetime) -> int:
    """Ingest again the kept payloads that mentioned `shipment`'s number before
    it existed, so their events land on it (or on the right leg); mark those
    numbers attached. Returns the number of events stored. Idempotent.
    """
    number = canonical_number(shipment.tracking_number)
    pending = list(
        UnmatchedTrackingNumber.objects.filter(
            tenant_id=shipment.tenant_id, tracking_number=number, attached_at__isnull=True
        ).order_by("pk")
    )
    stored = 0
    tenant = shipment.tenant
    for unmatched in pending:
        payloads = RawPayload.objects.filter(
            tenant_id=shipment.tenant_id,
            pk__in=unmatched.links.values_list("payload_id", flat=True),
        ).order_by("received_at", "pk")
        adapter = get_adapter(unmatched.provider)
        for payload in payloads:
            try:
                results = adapter.parse(
                    bytes(payload.body),
                    tracking_number=payload.tracking_number or None,
                    now=payload.received_at,
                )
            except Exception:
                log.warning("kept payload %s no longer parses; skipped", payload.pk, exc_info=True)
                continue
            mine = [
                r
                for r in results
                if r.tracking_number and canonical_number(r.tracking_number) == number
            ]
            if not mine:
                continue
            result = tracking_results_ingest(
                tenant=tenant,
                provider=unmatched.provider,
                results=mine,
                now=now,
                payload=payload,
                record=False,
            )
            stored += result.stored
        UnmatchedTrackingNumber.objects.filter(pk=unmatched.pk).update(
            attached_at=now, shipment=shipment
        )
    return stored


# --------------------------------------------------------------------------
# Retention
# --------------------------------------------------------------------------
#: States whose payloads are done with: ingested, or refused and past replay.
PRUNABLE_PAYLOAD_STATES = (PayloadState.PROCESSED, PayloadState.REJECTED)


def raw_payloads_prune(*, before: datetime, batch_size: int = 2000, max_batches: int = 50) -> int:
    """Delete raw payloads received before `before` (UTC) that are `processed` or
    `rejected`, across all tenants, in batches of `batch_size` rows (each its own
    transaction, so a long backlog never holds one big lock). Returns the count.

    Kept whatever their age: `received` (still owed processing) and `failed`
    (waiting for `replay_webhooks`) payloads, and any payload that mentions a
    number still unmatched (`shipment_attach_unmatched` ingests it again when the
    shipment appears). Tracking events keep their data; their `payload` link
    becomes null. At most `max_batches` batches per call; the hourly beat job
    catches up on the rest.
    """
    waiting = UnmatchedPayload.objects.filter(unmatched__attached_at__isnull=True).values(
        "payload_id"
    )
    candidates = (
        RawPayload.objects.filter(received_at__lt=before, state__in=PRUNABLE_PAYLOAD_STATES)
        .exclude(pk__in=waiting)
        .order_by("received_at", "pk")
    )
    deleted = 0
    for _batch in range(max_batches):
        ids = list(candidates.values_list("pk", flat=True)[:batch_size])
        if not ids:
            break
        with transaction.atomic():
            # The conditions again: a row may have changed since it was picked.
            _total, per_model = candidates.filter(pk__in=ids).delete()
        deleted += per_model.get(RawPayload._meta.label, 0)
    return deleted
