"""URLs on a tenant host: the portal, `/admin/` (this tenant), `/api/`, `/webhooks/`."""

from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", include("returns_portal.api.urls")),
    path("webhooks/", include("tracking.urls")),
    path("", include("rma.urls")),
]
