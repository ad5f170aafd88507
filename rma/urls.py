"""The customer portal on a tenant host (DESIGN.md section 10, contract paths)."""

from __future__ import annotations

from django.urls import path

from rma import views

app_name = "portal"

urlpatterns = [
    path("", views.home, name="home"),
    path("return/", views.start, name="start"),
    path("r/<str:token>/", views.tracking, name="tracking"),
    path("r/<str:token>/confirmation/", views.confirmation, name="confirmation"),
    path("r/<str:token>/dropped-off/", views.dropped_off, name="dropped_off"),
    path("r/<str:token>/label.pdf", views.label, name="label"),
    path("r/<str:token>/qr.svg", views.qr, name="qr"),
    path("r/<str:token>/photos/<uuid:public_id>/", views.photo, name="photo"),
]
