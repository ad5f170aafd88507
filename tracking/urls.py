"""`/webhooks/` on tenant hosts and BASE_DOMAIN (included by both URLconfs)."""

from __future__ import annotations

from django.urls import path

from tracking import views

app_name = "tracking"

urlpatterns = [
    path("<str:provider>/<slug:tenant_slug>/", views.webhook, name="webhook"),
]
