"""Tracking data: raw payloads (webhook deliveries, poll answers, uploads),
normalized carrier events, numbers seen without a shipment, per-tenant carrier
accounts and status overrides, and the unmapped-codes view.

Every model is tenant-owned (`TenantOwned`); the tenant leads each unique
constraint and composite index (DESIGN.md section 3). Rows are written only by
`tracking.services`, `tracking.ingest`, `tracking.webhooks` and
`tracking.polling`. Times are UTC.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from simple_history.models import HistoricalRecords

from returns_portal.tenancy.models import TenantOwned
from rma.models import Shipment


class EventStatus(models.TextChoices):
    """Normalized event status (DESIGN.md section 5, contract words)."""

    LABEL_CREATED = "label_created", _("Label created")
    ACCEPTED = "accepted", _("Accepted by carrier")
    IN_TRANSIT = "in_transit", _("In transit")
    OUT_FOR_DELIVERY = "out_for_delivery", _("Out for delivery")
    DELIVERED = "delivered", _("Delivered")
    EXCEPTION = "exception", _("Exception")
    INFO = "info", _("Information")
    UNKNOWN = "unknown", _("Unknown (unmapped)")


class PayloadSource(models.TextChoices):
    WEBHOOK = "webhook", _("Webhook delivery")
    POLL = "poll", _("Polling answer")
    COMMAND = "command", _("ingest_events command")
    API = "api", _("API upload")


class PayloadState(models.TextChoices):
    """`received`: stored, owed processing (an outbox entry once verified);
    `processed`: ingested; `rejected`: refused (signature, stale, duplicate,
    unparseable: see `error_code`), kept for `replay_webhooks`; `failed`:
    processing crashed repeatedly (replayable)."""

    RECEIVED = "received", _("Received")
    PROCESSED = "processed", _("Processed")
    REJECTED = "rejected", _("Rejected")
    FAILED = "failed", _("Failed")


class RawPayload(TenantOwned):
    """A carrier payload exactly as it arrived, stored before anything else.

    One row per webhook delivery, polling answer, `ingest_events` file or API
    upload. `body` holds the raw bytes (webhook signatures are verified on
    them). `headers` keeps a subset of the request headers (content type,
    user agent, signature headers; never a URL token). `event_id` is the
    provider's delivery id (EasyPost `id`, AfterShip `event_id`), unique per
    (tenant, provider) when present; `body_sha256` feeds our replay window for
    providers that sign no timestamp. `verified_at` is set once the signature
    checked out (always for non-webhook sources); only verified rows are
    processed or replayed. `result` is the ingest summary
    (`{events, stored, duplicates, unmatched_numbers}`).
    """

    provider = models.CharField(max_length=32)
    source = models.CharField(max_length=10, choices=PayloadSource.choices)
    body = models.BinaryField()
    body_sha256 = models.CharField(max_length=64)
    content_type = models.CharField(max_length=100, blank=True)
    headers = models.JSONField(default=dict, blank=True)
    tracking_number = models.CharField(
        max_length=64, blank=True, help_text=_("Number given with the payload, if any")
    )
    state = models.CharField(
        max_length=10, choices=PayloadState.choices, default=PayloadState.RECEIVED
    )
    error_code = models.CharField(max_length=20, blank=True)
    error = models.CharField(max_length=500, blank=True)
    event_id = models.CharField(max_length=200, blank=True)
    signed_at = models.DateTimeField(null=True, blank=True)
    verified_at = models.DateTimeField(null=True, blank=True)
    duplicate_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    idempotency_key = models.CharField(max_length=200, blank=True)
    received_at = models.DateTimeField(default=timezone.now)
    processed_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    result = models.JSONField(default=dict, blank=True)

    class Meta:
        verbose_name = "raw payload / webhook delivery"
        verbose_name_plural = "raw payloads / webhook deliveries"
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "provider", "event_id"],
                condition=~Q(event_id=""),
                name="rawpayload_unique_event_id",
            ),
            models.UniqueConstraint(
                fields=["tenant", "idempotency_key"],
                condition=~Q(idempotency_key=""),
                name="rawpayload_unique_idempotency_key",
            ),
        ]
        indexes = [
            models.Index(
                fields=["tenant", "provider", "body_sha256", "received_at"],
                name="rawpayload_digest",
            ),
            models.Index(
                fields=["received_at"],
                condition=Q(state="received", verified_at__isnull=False),
                name="rawpayload_outbox",
            ),
            # `raw_payloads_prune` deletes old rows across tenants by age.
            models.Index(fields=["received_at"], name="rawpayload_received"),
        ]

    def __str__(self) -> str:
        return f"{self.source} {self.provider} #{self.pk} ({self.state})"


class EventSource(models.TextChoices):
    EVENT = "event", _("Carrier event")
    SUMMARY = "summary", _("Shipment-level status (synthetic event)")


class TrackingEvent(TenantOwned):
    """One normalized carrier event of a shipment (DESIGN.md sections 4-6).

    - `occurred_at`: UTC instant, null for date-only or unresolvable times
      (`occurred_at_local` keeps the text as given, `local_date` the calendar
      day, `tz_name`/`tz_source` where the zone came from, for display).
    - `time_flag`: `before_1990`/`far_future` when the time was rejected.
    - `status`/`exception_reason`: normalized words; `provider` is whose
      mapping applied, `carrier_code` the raw code, `lookup_code` the
      normalized code overrides and the unmapped list are keyed on.
    - `status_hint`, `detail_hint`, `physical_carrier`, `physical_code`,
      `mapping_key`, `sequence` keep what re-normalization and shipment
      ordering need without re-parsing the payload.
    - `dedupe_key`: `tracking.normalize.dedupe_key`, unique per shipment, so
      an event is stored once whatever the number of deliveries.
    - `payload`: the raw payload it was first read from.
    """

    shipment = models.ForeignKey(Shipment, on_delete=models.CASCADE, related_name="tracking_events")
    payload = models.ForeignKey(
        RawPayload, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    provider = models.CharField(max_length=32)
    source = models.CharField(max_length=10, choices=EventSource.choices, default="event")
    occurred_at = models.DateTimeField(null=True, blank=True)
    occurred_at_local = models.CharField(max_length=64, blank=True)
    local_date = models.DateField(null=True, blank=True)
    time_precision = models.CharField(max_length=10, default="second")
    tz_source = models.CharField(max_length=20, default="none")
    tz_name = models.CharField(max_length=64, blank=True)
    time_flag = models.CharField(max_length=20, blank=True)
    status = models.CharField(max_length=20, choices=EventStatus.choices)
    exception_reason = models.CharField(max_length=20, blank=True)
    location = models.CharField(max_length=255, blank=True)
    carrier_code = models.CharField(max_length=100, blank=True)
    lookup_code = models.CharField(max_length=100, blank=True)
    mapping_key = models.CharField(max_length=200, blank=True)
    overridden = models.BooleanField(default=False)
    status_hint = models.CharField(max_length=100, blank=True)
    detail_hint = models.CharField(max_length=100, blank=True)
    physical_carrier = models.CharField(max_length=32, blank=True)
    physical_code = models.CharField(max_length=100, blank=True)
    description = models.TextField(blank=True)
    sequence = models.IntegerField(default=0)
    dedupe_key = models.CharField(max_length=64)
    received_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "shipment", "dedupe_key"], name="trackingevent_unique_key"
            ),
        ]
        indexes = [
            models.Index(
                fields=["tenant", "shipment", "occurred_at"], name="trackingevent_shipment"
            ),
            models.Index(
                fields=["tenant", "provider", "lookup_code"],
                condition=Q(status="unknown"),
                name="trackingevent_unknown",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.status} {self.carrier_code} @ {self.occurred_at or self.occurred_at_local}"


class UnmatchedTrackingNumber(TenantOwned):
    """A number seen in payloads with no shipment of this tenant.

    Its payloads are kept (`UnmatchedPayload`) and ingested again by
    `tracking.services.shipment_attach_unmatched` when a shipment with the
    number appears (`attached_at`, `shipment` are then set).
    """

    provider = models.CharField(max_length=32)
    carrier = models.CharField(max_length=32, help_text=_("Physical carrier named by the payload"))
    tracking_number = models.CharField(max_length=64)
    first_seen_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()
    times_seen = models.PositiveIntegerField(default=1)
    attached_at = models.DateTimeField(null=True, blank=True)
    shipment = models.ForeignKey(
        Shipment, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "provider", "tracking_number"], name="unmatched_unique_number"
            ),
        ]
        indexes = [
            models.Index(
                fields=["tenant", "tracking_number"],
                condition=Q(attached_at__isnull=True),
                name="unmatched_open",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.provider} {self.tracking_number}"


class UnmatchedPayload(TenantOwned):
    """Which stored payloads mention an unmatched number (explicit link with tenant)."""

    unmatched = models.ForeignKey(
        UnmatchedTrackingNumber, on_delete=models.CASCADE, related_name="links"
    )
    payload = models.ForeignKey(RawPayload, on_delete=models.CASCADE, related_name="+")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "unmatched", "payload"], name="unmatchedpayload_unique"
            ),
        ]


class CarrierAccount(TenantOwned):
    """A tenant's account with a carrier or aggregator: API credentials and the
    webhook secret, both encrypted with `FIELD_ENCRYPTION_KEYS`
    (`returns_portal.tenancy.crypto`, MultiFernet). Written only through
    `tracking.services.carrier_account_save`; never shown back in clear.
    A tenant polls a carrier only when it has an active account for it
    (except the `sandbox`)."""

    carrier = models.CharField(max_length=32)
    name = models.CharField(max_length=100, blank=True)
    credentials_encrypted = models.TextField(blank=True)
    webhook_secret_encrypted = models.TextField(blank=True)
    test_mode = models.BooleanField(default=False)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "carrier"], name="carrieraccount_unique"),
        ]

    def __str__(self) -> str:
        return self.name or self.carrier


class StatusOverride(TenantOwned):
    """A tenant's own mapping for a raw code of one provider's table.

    `carrier` is the provider whose mapping the code belongs to (as listed on
    the unmapped-codes page) and `raw_code` the normalized code
    (`TrackingEvent.lookup_code`). Applies to new events, and re-normalizes
    stored `unknown` events only (`tracking.services.status_overrides_apply`).
    Edited in the admin, with history.
    """

    carrier = models.CharField(max_length=32)
    raw_code = models.CharField(max_length=100)
    status = models.CharField(
        max_length=20, choices=[c for c in EventStatus.choices if c[0] != "unknown"]
    )
    exception_reason = models.CharField(max_length=20, blank=True)
    note = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    history = HistoricalRecords(inherit=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "carrier", "raw_code"], name="statusoverride_unique"
            ),
        ]

    def __str__(self) -> str:
        label = self.status + (f".{self.exception_reason}" if self.exception_reason else "")
        return f"{self.carrier} {self.raw_code} -> {label}"

    def clean(self) -> None:
        from django.core.exceptions import ValidationError

        from tracking.carriers.mapping import REASONS

        if self.status == "exception":
            if self.exception_reason not in REASONS:
                raise ValidationError(
                    {"exception_reason": _("An exception needs one of the reasons.")}
                )
        elif self.exception_reason:
            raise ValidationError(
                {"exception_reason": _("Only an exception has a reason; leave it empty.")}
            )


class UnmappedCode(TenantOwned):
    """Read-only database view (migration `0001_initial`): raw codes stored as
    `unknown`, per (tenant, provider, normalized code), with counts and first
    and last seen (`received_at`). `id` is the smallest event id of the group."""

    carrier = models.CharField(max_length=32)
    raw_code = models.CharField(max_length=100)
    sample_description = models.TextField()
    event_count = models.IntegerField()
    shipment_count = models.IntegerField()
    first_seen_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()

    class Meta:
        managed = False
        db_table = "tracking_unmappedcode"
        verbose_name = "unmapped carrier code"

    def __str__(self) -> str:
        return f"{self.carrier} {self.raw_code or '(no code)'}"
