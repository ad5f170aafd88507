"""returns-portal composition root: settings, URLs, Celery, REST API and cross-app workflows."""

from returns_portal.celery import app as celery_app

__all__ = ["celery_app"]
