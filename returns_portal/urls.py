"""URLs on a tenant host: the portal, `/admin/` (this tenant), `/api/`, `/webhooks/`."""

from __future__ import annotations

from django.contrib import admin
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView

from refunds import webhooks as refund_webhooks
from rma import warehouse_views

urlpatterns = [
    # Browsers ask for /favicon.ico on every page, the admin's included.
    path("favicon.ico", RedirectView.as_view(url=static("favicon.svg"), permanent=True)),
    path("admin/", admin.site.urls),
    # The portal's language selector posts to set_language (`next` must be on this host).
    path("i18n/", include("django.conf.urls.i18n")),
    path("api/v1/", include("returns_portal.api.urls")),
    # --- refunds issue: Stripe refund webhook, warehouse staff pages ---
    path(
        "webhooks/stripe/<slug:tenant_slug>/", refund_webhooks.stripe_webhook, name="stripe-webhook"
    ),
    path("staff/check-in/", warehouse_views.checkin_page, name="warehouse-checkin"),
    path("staff/inspect/", warehouse_views.inspection_page, name="warehouse-inspect"),
    path("staff/restock.csv", warehouse_views.restock_csv, name="warehouse-restock"),
    path("webhooks/", include("tracking.urls")),
    path("", include("rma.urls")),
]
