"""`/healthz`: database and broker reachability, on every host (DESIGN.md section 3).

200 `{"status": "ok", "db": "ok", "broker": "ok"}` when both answer, else 503
with the failing part set to `"error"`. Never raises.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

from django.conf import settings
from django.db import connection
from django.http import JsonResponse

log = logging.getLogger(__name__)


def check_db() -> bool:
    """True when `SELECT 1` succeeds on the default database."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            return cursor.fetchone() == (1,)
    except Exception:
        log.exception("healthz: database check failed")
        return False


def check_broker() -> bool:
    """True when Redis answers PING (REDIS_URL) or the filesystem broker folder is writable."""
    try:
        if settings.REDIS_URL:
            import redis

            client = redis.Redis.from_url(
                settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2
            )
            try:
                return bool(client.ping())
            finally:
                client.close()
        folder = Path(str(settings.CELERY_BROKER_TRANSPORT_OPTIONS["data_folder_in"]))
        fd, name = tempfile.mkstemp(dir=folder, prefix=".healthz-")
        os.close(fd)
        os.unlink(name)
        return True
    except Exception:
        log.exception("healthz: broker check failed")
        return False


def healthz_response() -> JsonResponse:
    db_ok = check_db()
    broker_ok = check_broker()
    ok = db_ok and broker_ok
    body = {
        "status": "ok" if ok else "error",
        "db": "ok" if db_ok else "error",
        "broker": "ok" if broker_ok else "error",
    }
    response = JsonResponse(body, status=200 if ok else 503)
    response["Cache-Control"] = "no-store"
    return response
