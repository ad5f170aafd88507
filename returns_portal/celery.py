"""The Celery application. `celery -A returns_portal worker|beat` starts with no environment set."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "returns_portal.settings")

app = Celery("returns_portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
