"""Stripe's refund webhook: `POST /webhooks/stripe/<tenant_slug>/` (DESIGN.md section 10).

The tenant comes from the path (on a tenant host it must be that host's
tenant, else 404). The body is verified with the tenant's endpoint secret
(`Stripe-Signature`, HMAC-SHA256 over `"<t>.<raw body>"`, 300 s tolerance,
`refunds.gateways.stripe.verify_signature`): a bad or stale signature is a
400 and changes nothing. Refund events (`refund.created`, `refund.updated`,
`refund.failed`, `charge.refund.updated`) carry the Refund object; its
`metadata.idempotency_key` (`refund:<uuid>`) names our refund, whose outcome
is applied by `refunds.services.refund_gateway_event`. Anything else (or a
refund that is not ours) is acknowledged with 200 and ignored, so Stripe
stops retrying.
"""

from __future__ import annotations

import json
import logging
import uuid as uuid_lib

from django.http import Http404, HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from refunds.gateways.stripe import SignatureError, refund_result, verify_signature
from refunds.models import GatewayAccount, GatewayProvider, Refund
from refunds.services import refund_gateway_event
from returns_portal.tenancy.crypto import decrypt
from returns_portal.tenancy.models import Tenant

log = logging.getLogger(__name__)
REFUND_EVENTS = frozenset(
    {"refund.created", "refund.updated", "refund.failed", "charge.refund.updated"}
)


def _object(value: object) -> dict:
    """A JSON object of a signed event, else empty (the event then names no refund of ours)."""
    return value if isinstance(value, dict) else {}


@csrf_exempt
@require_POST
def stripe_webhook(request: HttpRequest, tenant_slug: str) -> JsonResponse:
    host_tenant = getattr(request, "tenant", None)
    if host_tenant is not None and host_tenant.slug != tenant_slug:
        raise Http404
    tenant = Tenant.objects.filter(slug=tenant_slug, is_active=True).first()
    account = (
        GatewayAccount.objects.filter(
            tenant=tenant, provider=GatewayProvider.STRIPE, is_active=True
        ).first()
        if tenant
        else None
    )
    if tenant is None or account is None:
        raise Http404
    now = timezone.now()
    try:
        verify_signature(
            payload=request.body,
            header=request.headers.get("Stripe-Signature", ""),
            secret=decrypt(account.webhook_secret_encrypted),
            now=int(now.timestamp()),
        )
    except SignatureError as exc:
        return JsonResponse({"detail": str(exc), "code": "bad_signature"}, status=400)
    try:
        event = json.loads(request.body)
    except (ValueError, RecursionError):
        return JsonResponse({"detail": "not JSON", "code": "bad_payload"}, status=400)
    if not isinstance(event, dict):
        return JsonResponse({"detail": "not a Stripe event", "code": "bad_payload"}, status=400)
    if event.get("type") not in REFUND_EVENTS:
        return JsonResponse({"status": "ignored"})
    obj = _object(_object(event.get("data")).get("object"))
    key = _object(obj.get("metadata")).get("idempotency_key", "")
    if not isinstance(key, str):
        key = ""
    try:
        refund_uuid = (
            uuid_lib.UUID(key.removeprefix("refund:")) if key.startswith("refund:") else None
        )
    except ValueError:
        refund_uuid = None
    refund = (
        Refund.objects.filter(
            tenant=tenant, uuid=refund_uuid, gateway=GatewayProvider.STRIPE
        ).first()
        if refund_uuid
        else None
    )
    if refund is None:
        return JsonResponse({"status": "ignored"})
    outcome = refund_gateway_event(tenant=tenant, refund=refund, result=refund_result(obj), now=now)
    return JsonResponse({"status": outcome})
