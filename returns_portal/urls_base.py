"""URLs on BASE_DOMAIN itself: `/admin/` (the user's tenants), `/api/`, `/webhooks/`
(`/healthz` is answered by the tenancy middleware on every host)."""

from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

from refunds import webhooks as refund_webhooks

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", include("returns_portal.api.urls")),
    # --- refunds issue: Stripe refund webhook ---
    path(
        "webhooks/stripe/<slug:tenant_slug>/", refund_webhooks.stripe_webhook, name="stripe-webhook"
    ),
    path("webhooks/", include("tracking.urls")),
]
