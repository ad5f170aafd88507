"""Reads for tracking use cases: a tenant's overrides and carrier credentials,
a shipment's events as stored (and as `NormalizedEvent`s for recomputation),
and the API/`normalize_events` view of events."""

from __future__ import annotations

from collections.abc import Iterable

from returns_portal.tenancy import crypto
from returns_portal.tenancy.models import Tenant
from rma.models import Shipment
from tracking.carriers.base import Credentials, Location, RawEvent
from tracking.models import CarrierAccount, StatusOverride, TrackingEvent
from tracking.normalize import NormalizedEvent, Overrides

#: Providers that need no account to be polled (no credentials, no network).
ACCOUNTLESS = frozenset({"sandbox"})


def status_overrides_for(*, tenant: Tenant | int) -> dict[tuple[str, str], tuple[str, str | None]]:
    """The tenant's override table `{(provider, normalized code): (status, reason)}`
    in the shape `tracking.normalize` takes."""
    tenant_id = tenant if isinstance(tenant, int) else tenant.pk
    return {
        (carrier, code): (status, reason or None)
        for carrier, code, status, reason in StatusOverride.objects.filter(
            tenant_id=tenant_id
        ).values_list("carrier", "raw_code", "status", "exception_reason")
    }


def carrier_account_get(*, tenant: Tenant | int, carrier: str) -> CarrierAccount | None:
    """The tenant's active account for `carrier`, or None."""
    tenant_id = tenant if isinstance(tenant, int) else tenant.pk
    return CarrierAccount.objects.filter(
        tenant_id=tenant_id, carrier=carrier, is_active=True
    ).first()


def carrier_account_credentials(account: CarrierAccount) -> Credentials:
    """Decrypted credentials of an account (`Credentials.values` is a str->str map).
    Raises `cryptography.fernet.InvalidToken` when the keys cannot decrypt them."""
    values = crypto.decrypt_json(account.credentials_encrypted) or {}
    return Credentials(
        values={str(k): str(v) for k, v in values.items()}, test_mode=account.test_mode
    )


#: Process-local cache of decrypted webhook secrets: (tenant id, provider) ->
#: (monotonic expiry, secret or None). Saves a query and a decryption per
#: delivery; `carrier_account_save` clears it in its own process, other
#: processes see a rotated secret within `WEBHOOK_SECRET_TTL` seconds.
_secret_cache: dict[tuple[int, str], tuple[float, str | None]] = {}
WEBHOOK_SECRET_TTL = 30.0


def webhook_secret_cache_clear() -> None:
    _secret_cache.clear()


def webhook_secret_get(*, tenant: Tenant | int, provider: str) -> str | None:
    """The decrypted webhook secret of the tenant's active `provider` account,
    or None (cached per process for `WEBHOOK_SECRET_TTL` seconds)."""
    import time

    tenant_id = tenant if isinstance(tenant, int) else tenant.pk
    key = (tenant_id, provider)
    hit = _secret_cache.get(key)
    now = time.monotonic()
    if hit is not None and hit[0] > now:
        return hit[1]
    account = carrier_account_get(tenant=tenant_id, carrier=provider)
    secret = None
    if account is not None and account.webhook_secret_encrypted:
        secret = crypto.decrypt(account.webhook_secret_encrypted)
    _secret_cache[key] = (now + WEBHOOK_SECRET_TTL, secret)
    return secret


def pollable_providers(*, tenant: Tenant | int) -> set[str]:
    """Providers the tenant may poll: those with an active account, plus the sandbox."""
    tenant_id = tenant if isinstance(tenant, int) else tenant.pk
    return set(ACCOUNTLESS) | set(
        CarrierAccount.objects.filter(tenant_id=tenant_id, is_active=True).values_list(
            "carrier", flat=True
        )
    )


def normalized_from_row(row: TrackingEvent, *, tracking_number: str | None) -> NormalizedEvent:
    """Rebuild the `NormalizedEvent` a stored row was made from (no re-parse)."""
    raw = RawEvent(
        carrier_code=row.carrier_code or None,
        description=row.description,
        occurred_at_local=row.occurred_at_local or None,
        occurred_at=row.occurred_at,
        time_precision=row.time_precision,  # type: ignore[arg-type]
        local_date=row.local_date,
        tz_source=row.tz_source,  # type: ignore[arg-type]
        tz_name=row.tz_name or None,
        location=Location(raw=row.location) if row.location else None,
        sequence=row.sequence,
        index=row.sequence,
        status_hint=row.status_hint or None,
        detail_hint=row.detail_hint or None,
        physical_carrier=row.physical_carrier or None,
        physical_code=row.physical_code or None,
        time_flag=row.time_flag or None,  # type: ignore[arg-type]
        source=row.source,  # type: ignore[arg-type]
    )
    return NormalizedEvent(
        raw=raw,
        carrier=row.provider,
        tracking_number=tracking_number,
        status=row.status,
        exception_reason=row.exception_reason or None,
        mapping_key=row.mapping_key or None,
        lookup_code=row.lookup_code or None,
        overridden=row.overridden,
    )


def shipment_normalized_events(*, shipment: Shipment) -> list[NormalizedEvent]:
    """Every stored event of `shipment` as `NormalizedEvent`s (any order)."""
    rows = TrackingEvent.objects.filter(tenant_id=shipment.tenant_id, shipment=shipment)
    return [normalized_from_row(r, tracking_number=shipment.tracking_number) for r in rows]


def event_output(row: TrackingEvent, *, carrier: str, tracking_number: str) -> dict[str, object]:
    """A stored event with the `normalize_events` keys (DESIGN.md section 9)."""
    at = row.occurred_at
    return {
        "carrier": carrier,
        "tracking_number": tracking_number,
        "occurred_at": at.strftime("%Y-%m-%dT%H:%M:%SZ") if at else None,
        "occurred_at_local": row.occurred_at_local or None,
        "time_precision": row.time_precision,
        "status": row.status,
        "exception_reason": row.exception_reason or None,
        "location": row.location or None,
        "carrier_code": row.carrier_code or None,
        "description": row.description,
    }


def shipment_events(
    *, shipment: Shipment, include_summary: bool = False
) -> list[dict[str, object]]:
    """The shipment's stored events, newest first (timed ones by instant, then
    date-only ones by day), each with the `normalize_events` keys; for the API's
    `events` and the tracking page. Summary (synthetic) events only on request."""
    rows = TrackingEvent.objects.filter(tenant_id=shipment.tenant_id, shipment=shipment)
    if not include_summary:
        rows = rows.filter(source="event")
    ordered = sorted(
        rows,
        key=lambda r: (r.occurred_at is not None, r.occurred_at or r.received_at, r.sequence),
        reverse=True,
    )
    return [
        event_output(r, carrier=r.provider, tracking_number=shipment.tracking_number)
        for r in ordered
    ]


def overrides_as_table(overrides: Iterable[StatusOverride]) -> Overrides:
    return {(o.carrier, o.raw_code): (o.status, o.exception_reason or None) for o in overrides}
