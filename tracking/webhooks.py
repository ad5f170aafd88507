"""Webhook deliveries: store first, verify on the raw bytes, answer fast,
process from the outbox (DESIGN.md sections 8 and 10; carriers/NOTES.md 3).

`webhook_receive` is what `POST /webhooks/<provider>/<tenant_slug>/` does:

1. Every delivery is stored (`RawPayload`, source `webhook`: the raw bytes,
   a header subset, the decision) in one transaction committed before the
   answer: accepted, rejected, or hitting a bug in a verifier (then
   `internal`, answered 503 so the provider retries). Nothing is
   acknowledged unstored and no delivery is dropped.
2. The tenant's webhook secret for the provider (`CarrierAccount`) is
   required; the adapter verifies the signature on the raw bytes in constant
   time (EasyPost `X-Hmac-Signature` with the NFKD-normalized secret,
   AfterShip `aftership-hmac-sha256`, Shippo token or `Shippo-Auth-Signature`,
   karrio `X-Karrio-Signature`). Missing secret or a bad signature: 401,
   stored `rejected` (`secret` / `signature`), never processed or replayed.
3. Stale: a delivery whose signed time (Shippo's `t`, AfterShip's `ts`,
   EasyPost's event `created_at`, all inside the signed bytes) is older than
   `TRACKING_WEBHOOK_MAX_AGE` (72 h) or more than 5 minutes ahead: 400,
   `rejected` (`stale`).
4. Duplicates: the provider's event id is unique per (tenant, provider)
   forever; a delivery without an event id whose body SHA-256 was already
   accepted within `TRACKING_WEBHOOK_REPLAY_WINDOW` (72 h) is a replay.
   Both answer 200 `{"status": "duplicate"}` (a provider retry must stop) and
   are stored `rejected` (`duplicate`, `duplicate_of`), not processed.
5. The body must parse with the adapter: else 400 with the reason, stored
   `rejected` (`payload`) for `replay_webhooks` once the parser is fixed. A
   parser bug (any exception besides `PayloadError`) is the same 400, logged
   as one warning (`tracking.ingest.payload_parse`): the bytes will never
   parse, so a provider retry cannot help.
6. Verified and parsable: 200 `{"status": "accepted", "delivery": id}`;
   `tracking.payload_process` is enqueued on commit and the outbox sweeper
   re-enqueues deliveries still `received` after 2 minutes.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F

from returns_portal.tenancy.models import Tenant
from rma.services import enqueue_on_commit
from tracking.carriers.base import PayloadError, WebhookVerificationError
from tracking.carriers.registry import get_adapter
from tracking.ingest import (
    IngestError,
    IngestResult,
    headers_subset,
    payload_parse,
    tracking_events_ingest,
)
from tracking.models import PayloadSource, PayloadState, RawPayload
from tracking.selectors import webhook_secret_get

log = logging.getLogger(__name__)

PAYLOAD_PROCESS_TASK = "tracking.payload_process"
MAX_ATTEMPTS = 5


def replay_window() -> timedelta:
    return getattr(settings, "TRACKING_WEBHOOK_REPLAY_WINDOW", timedelta(hours=72))


def max_age() -> timedelta:
    return getattr(settings, "TRACKING_WEBHOOK_MAX_AGE", timedelta(hours=72))


MAX_SKEW = timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class WebhookAnswer:
    """HTTP status and JSON body for the provider; `delivery_id` of the stored row."""

    status_code: int
    body: dict[str, object]
    delivery_id: int | None = None


def _signed_time(provider: str, body: bytes, signed_at: datetime | None) -> datetime | None:
    """The delivery's signed time: the adapter's, else EasyPost's event
    `created_at` (inside the signed body)."""
    if signed_at is not None or provider != "easypost":
        return signed_at
    import json

    try:
        data = json.loads(body)
        text = data.get("created_at") if isinstance(data, dict) else None
        if isinstance(text, str):
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
            return parsed if parsed.tzinfo else None
    except (ValueError, UnicodeDecodeError):
        return None
    return None


@transaction.atomic
def webhook_receive(
    *,
    tenant: Tenant,
    provider: str,
    body: bytes,
    headers: Mapping[str, str],
    now: datetime,
    query: Mapping[str, str] | None = None,
) -> WebhookAnswer:
    """Store, verify and accept one delivery (module docstring). Never raises
    for bad input; raises only when the database fails (the view answers 503).
    Raises KeyError for an unknown provider (checked by the view first).

    One transaction, one commit, one row per delivery: the row holding the raw
    bytes also records the decision, and nothing is answered before it is
    committed. So every delivery that gets an answer is stored, whether it was
    accepted, rejected (a parser bug included: `payload`, 400) or hit a bug in
    a verifier (stored with `error_code="internal"` and answered 503 so the
    provider retries). The
    processing task is enqueued on commit.
    """
    adapter = get_adapter(provider)
    content_type = headers.get("content-type", "") or headers.get("Content-Type", "")
    delivery = RawPayload(
        tenant=tenant,
        provider=provider,
        source=PayloadSource.WEBHOOK,
        body=bytes(body),
        body_sha256=hashlib.sha256(body).hexdigest(),
        content_type=content_type[:100],
        headers=headers_subset(headers),
        received_at=now,
    )

    def store(**fields: object) -> None:
        for name, value in fields.items():
            setattr(delivery, name, value)
        delivery.save(force_insert=True)

    def reject(code: str, reason: str, status: int, **fields: object) -> WebhookAnswer:
        reason = reason.replace("\x00", "")  # may quote the body; PostgreSQL refuses NUL
        store(
            state=PayloadState.REJECTED,
            error_code=code,
            error=reason[:500],
            processed_at=now,
            **fields,
        )
        return WebhookAnswer(status, {"status": "rejected", "reason": reason}, delivery.pk)

    try:
        secret = webhook_secret_get(tenant=tenant, provider=provider)
        if not secret:
            return reject(
                "secret", f"no {provider} webhook secret is configured for this tenant", 401
            )
        try:
            verification = adapter.verify_webhook(
                headers=headers, body=body, secret=secret, now=now, query=query or {}
            )
        except WebhookVerificationError as exc:
            return reject("signature", str(exc), 401)
        signed_at = _signed_time(provider, body, verification.signed_at)
        if signed_at is not None and (now - signed_at > max_age() or signed_at - now > MAX_SKEW):
            return reject(
                "stale", f"delivery signed at {signed_at.isoformat()} is outside the window", 400
            )
        event_id = (verification.event_id or "")[:200]
        verified = {"verified_at": now, "signed_at": signed_at}
        if not event_id:
            # No id to de-duplicate on: our own replay window on the body digest.
            replayed = (
                RawPayload.objects.filter(
                    tenant=tenant,
                    provider=provider,
                    body_sha256=delivery.body_sha256,
                    received_at__gte=now - replay_window(),
                    verified_at__isnull=False,
                    state__in=[PayloadState.RECEIVED, PayloadState.PROCESSED, PayloadState.FAILED],
                )
                .order_by("pk")
                .first()
            )
            if replayed is not None:
                return _duplicate(
                    store, delivery, replayed, now, "the same body was accepted recently", verified
                )
        parse_error = None
        try:
            # An adapter bug is a PayloadError too (one warning line, no
            # traceback): answered 400 and kept `rejected` for replay.
            payload_parse(adapter=adapter, body=body, now=now)
        except PayloadError as exc:
            parse_error = str(exc)
    except Exception as exc:
        log.exception("verifying a %s delivery for %s failed", provider, tenant.slug)
        store(
            state=PayloadState.REJECTED,
            error_code="internal",
            error=f"{type(exc).__name__}: {exc}"[:500],
            processed_at=now,
        )
        return WebhookAnswer(503, {"status": "error", "reason": "retry later"}, delivery.pk)

    # The provider's id is unique per (tenant, provider) forever: a retry (same
    # id) loses the insert race or meets the committed row.
    try:
        with transaction.atomic():
            if parse_error is not None:
                answer = reject("payload", parse_error, 400, event_id=event_id, **verified)
            else:
                store(event_id=event_id, **verified)
                answer = WebhookAnswer(
                    200, {"status": "accepted", "delivery": delivery.pk}, delivery.pk
                )
    except IntegrityError:
        delivery.pk = None
        first = RawPayload.objects.filter(
            tenant=tenant, provider=provider, event_id=event_id
        ).first()
        return _duplicate(
            store, delivery, first, now, f"event id {event_id} already received", verified
        )
    if answer.status_code == 200:
        enqueue_on_commit(PAYLOAD_PROCESS_TASK, delivery.pk, tenant.pk)
    return answer


def _duplicate(
    store: Callable[..., None],
    delivery: RawPayload,
    first: RawPayload | None,
    now: datetime,
    reason: str,
    verified: Mapping[str, object],
) -> WebhookAnswer:
    store(
        state=PayloadState.REJECTED,
        error_code="duplicate",
        error=reason[:500],
        duplicate_of=first,
        processed_at=now,
        event_id="",
        **verified,
    )
    return WebhookAnswer(
        200,
        {
            "status": "duplicate",
            "delivery": delivery.pk,
            "duplicate_of": first.pk if first else None,
        },
        delivery.pk,
    )


def raw_payload_process(*, payload_id: int, tenant_id: int, now: datetime) -> IngestResult | None:
    """Ingest a stored, verified payload still owed (state `received`).

    The task body for `tracking.payload_process`. A missing, unverified or
    already handled row is logged and skipped (None). A parse failure leaves
    it `rejected` (reason stored). Any other failure counts an attempt: the
    row stays `received` (the sweeper retries) until `MAX_ATTEMPTS`, then
    `failed` (replayable with `replay_webhooks`).
    """
    payload = (
        RawPayload.objects.select_related("tenant")
        .filter(pk=payload_id, tenant_id=tenant_id)
        .first()
    )
    if payload is None:
        log.warning("payload %s of tenant %s not found", payload_id, tenant_id)
        return None
    if payload.state != PayloadState.RECEIVED or payload.verified_at is None:
        log.info("payload %s is %s; nothing to do", payload_id, payload.state)
        return None
    return _process(payload, now=now)


def _ingest_stored(payload: RawPayload, *, now: datetime) -> IngestResult:
    """Ingest a stored delivery's raw bytes as the delivery itself (its state is set)."""
    return tracking_events_ingest(
        tenant=payload.tenant,
        provider=payload.provider,
        body=bytes(payload.body),
        source=payload.source,
        now=now,
        delivery=payload,
    )


def _process(payload: RawPayload, *, now: datetime) -> IngestResult | None:
    try:
        return _ingest_stored(payload, now=now)
    except IngestError as exc:
        log.info("payload %s rejected: %s", payload.pk, exc)
        return None
    except Exception as exc:
        attempts = payload.attempts + 1
        state = PayloadState.FAILED if attempts >= MAX_ATTEMPTS else PayloadState.RECEIVED
        RawPayload.objects.filter(pk=payload.pk).update(
            attempts=attempts,
            state=state,
            error_code="internal",
            error=f"{type(exc).__name__}: {exc}"[:500],
        )
        log.exception("processing payload %s failed (attempt %d)", payload.pk, attempts)
        return None


#: `IngestError.code`s of a replay that still cannot be parsed or verified
#: (the input's fault); anything else failed for an internal reason (`internal`).
UNPARSEABLE_CODES = frozenset({"payload", "unverified", "unknown_provider"})


def raw_payload_replay(*, payload: RawPayload, now: datetime) -> IngestResult:
    """Process a stored payload again (`replay_webhooks`), whatever its state,
    provided its signature was verified when it arrived. Idempotent (events
    are stored once).

    One transaction per payload: either the ingest commits (the row ends
    `processed`), or everything it wrote rolls back and the row is then left
    `rejected` (`payload`: it still cannot be parsed, with the reason) or
    `failed` (`internal`: anything else, with the exception), `attempts`
    counted. Never `received`, which the outbox sweeper would retry. Raises
    `IngestError` in every failing case: `code` `unverified`, `payload`,
    `unknown_provider` or `internal` (`exc.payload` is the row, its state set).
    """
    if payload.verified_at is None:
        raise IngestError(
            f"payload {payload.pk} was never verified ({payload.error_code or 'unsigned'})",
            code="unverified",
            payload=payload,
        )
    try:
        with transaction.atomic():
            RawPayload.objects.filter(pk=payload.pk).update(
                state=PayloadState.RECEIVED, attempts=F("attempts") + 1
            )
            return _ingest_stored(payload, now=now)
    except IngestError as exc:
        _replay_failed(payload, PayloadState.REJECTED, exc.code, str(exc), now)
        exc.payload = payload
        raise
    except Exception as exc:
        reason = f"{type(exc).__name__}: {exc}"
        log.warning("replaying payload %s failed: %s", payload.pk, reason)
        _replay_failed(payload, PayloadState.FAILED, "internal", reason, now)
        raise IngestError(reason, code="internal", payload=payload) from exc


def _replay_failed(payload: RawPayload, state: str, code: str, error: str, now: datetime) -> None:
    """Record a failed replay after its transaction rolled back (which undid
    any state the ingest wrote on the way)."""
    fields: dict[str, object] = {"processed_at": now} if state == PayloadState.REJECTED else {}
    error = error.replace("\x00", "")
    RawPayload.objects.filter(pk=payload.pk).update(
        state=state, error_code=code[:20], error=error[:500], attempts=F("attempts") + 1, **fields
    )
    payload.refresh_from_db(fields=["state", "error_code", "error", "attempts", "processed_at"])


def body_digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()
