"""`POST /webhooks/<provider>/<tenant_slug>/` (DESIGN.md section 10).

Served on tenant hosts and on BASE_DOMAIN; the tenant comes from the path (on
a tenant host it must be that host's tenant). CSRF-exempt, no session, no
user. Unknown tenant or provider: 404. The work is `tracking.webhooks
.webhook_receive`; an unexpected failure (database down) answers 503 with
`Retry-After` so the provider retries, never 500.
"""

from __future__ import annotations

import logging

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from returns_portal.tenancy.models import Tenant
from tracking.carriers.registry import codes
from tracking.webhooks import webhook_receive

log = logging.getLogger(__name__)


def _not_found() -> JsonResponse:
    return JsonResponse({"detail": "Not found."}, status=404)


@csrf_exempt
@require_POST
def webhook(request: HttpRequest, provider: str, tenant_slug: str) -> JsonResponse:
    host_tenant = getattr(request, "tenant", None)
    if provider not in codes():
        return _not_found()
    if host_tenant is not None:
        # On a tenant host the path must name that tenant.
        if host_tenant.slug != tenant_slug:
            return _not_found()
        tenant = host_tenant
    else:
        tenant = Tenant.objects.filter(slug=tenant_slug, is_active=True).first()
        if tenant is None:
            return _not_found()
    try:
        body = request.body
    except RequestDataTooBig:
        return JsonResponse({"status": "rejected", "reason": "body too large"}, status=413)
    try:
        answer = webhook_receive(
            tenant=tenant,
            provider=provider,
            body=body,
            headers=dict(request.headers),
            query=request.GET.dict(),
            now=timezone.now(),
        )
    except Exception:
        log.exception("webhook %s for %s could not be stored", provider, tenant_slug)
        response = JsonResponse({"detail": "temporarily unavailable, retry later"}, status=503)
        response["Retry-After"] = "60"
        return response
    return JsonResponse(answer.body, status=answer.status_code)
