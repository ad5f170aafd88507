"""`/api/v1/` (DESIGN.md section 10). Every view authenticates with an API key."""

from __future__ import annotations

from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from returns_portal.api import views
from returns_portal.api import warehouse as warehouse_api
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
    path("orders/<str:order_number>/", views.OrderDetailView.as_view(), name="order"),
    path("returns/", views.ReturnListView.as_view(), name="returns"),
    path("returns/<str:rma_number>/", views.ReturnDetailView.as_view(), name="return"),
    path(
        "returns/<str:rma_number>/shipments/",
        views.ReturnShipmentsView.as_view(),
        name="return-shipments",
    ),
    # --- refunds issue: warehouse check-in/inspections and the refund ---
    path(
        "returns/<str:rma_number>/check-in/",
        warehouse_api.CheckInView.as_view(),
        name="return-check-in",
    ),
    path(
        "returns/<str:rma_number>/inspections/",
        warehouse_api.InspectionsView.as_view(),
        name="return-inspections",
    ),
    path(
        "returns/<str:rma_number>/refund/", warehouse_api.RefundView.as_view(), name="return-refund"
    ),
    path(
        "returns/<str:rma_number>/exchange/",
        warehouse_api.ExchangeView.as_view(),
        name="return-exchange",
    ),
    path("tracking-events/", TrackingEventsView.as_view(), name="tracking-events"),
]
