"""The customer portal on a tenant host (DESIGN.md section 10)."""

from __future__ import annotations

from django.urls import path

from rma import views

app_name = "portal"

urlpatterns = [
    path("", views.home, name="home"),
]
