"""`/api/v1/` (DESIGN.md section 10). Every view authenticates with an API key."""

from __future__ import annotations

from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from returns_portal.api.tracking_events import TrackingEventsView

app_name = "api"

urlpatterns = [
    path(
        "schema/",
        SpectacularAPIView.as_view(authentication_classes=[], permission_classes=[]),
        name="schema",
    ),
    path(
        "docs/",
        SpectacularSwaggerView.as_view(
            url_name="api:schema", authentication_classes=[], permission_classes=[]
        ),
        name="docs",
    ),
    path("tracking-events/", TrackingEventsView.as_view(), name="tracking-events"),
]
