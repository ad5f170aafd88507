"""Settings: `check --deploy` is clean in production, the embedded default, SECRET_KEY rules."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_python(code: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    base = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DEBUG", "DATABASE_URL", "REDIS_URL", "SECRET_KEY"}
    }
    base.update(env)
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=base,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_check_deploy_is_clean_with_production_settings(tmp_path):
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env={
            **{k: v for k, v in os.environ.items() if k != "DEBUG"},
            "SECRET_KEY": secrets.token_urlsafe(50),
            "PUBLIC_SCHEME": "https",
            "DATA_DIR": str(tmp_path),
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_secret_key_required_unless_debug(tmp_path):
    result = run_python(
        "import django, os; os.environ['DJANGO_SETTINGS_MODULE']='returns_portal.settings'; django.setup()",
        {"DATA_DIR": str(tmp_path)},
    )
    assert result.returncode != 0
    assert "SECRET_KEY is required unless DEBUG is on" in result.stderr
    ok = run_python(
        "import django, os; os.environ['DJANGO_SETTINGS_MODULE']='returns_portal.settings'; django.setup(); "
        "from django.conf import settings; print(settings.DEBUG)",
        {"DATA_DIR": str(tmp_path), "DEBUG": "1"},
    )
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.strip() == "True"


def test_embedded_default_sqlite_and_filesystem_broker(tmp_path):
    code = (
        "import django, os, json; os.environ['DJANGO_SETTINGS_MODULE']='returns_portal.settings'; django.setup(); "
        "from django.conf import settings as s; "
        "print(json.dumps({'db': s.DATABASES['default']['NAME'], 'opts': s.DATABASES['default']['OPTIONS'], "
        "'broker': s.CELERY_BROKER_URL, 'in': s.CELERY_BROKER_TRANSPORT_OPTIONS['data_folder_in'], "
        "'cache': s.CACHES['default']['BACKEND'], 'debug': s.DEBUG}))"
    )
    result = run_python(code, {"DATA_DIR": str(tmp_path), "SECRET_KEY": "x" * 60})
    assert result.returncode == 0, result.stderr
    import json

    got = json.loads(result.stdout)
    db_file = str(tmp_path.resolve() / "db.sqlite3")
    assert got["db"] == db_file
    assert got["opts"]["transaction_mode"] == "IMMEDIATE"
    assert got["opts"]["timeout"] == 20
    assert (
        "journal_mode=WAL" in got["opts"]["init_command"]
        and "foreign_keys=ON" in got["opts"]["init_command"]
    )
    assert got["broker"] == "filesystem://"
    assert got["in"] == db_file + ".broker/queue"
    assert Path(got["in"]).is_dir()
    assert got["cache"] == "django.core.cache.backends.db.DatabaseCache"
    assert got["debug"] is False


def test_database_and_redis_chosen_independently(tmp_path):
    code = (
        "import django, os, json; os.environ['DJANGO_SETTINGS_MODULE']='returns_portal.settings'; django.setup(); "
        "from django.conf import settings as s; "
        "print(json.dumps([s.DATABASES['default']['ENGINE'], s.CELERY_BROKER_URL, s.CACHES['default']['BACKEND']]))"
    )
    import json

    redis_only = run_python(
        code,
        {
            "DATA_DIR": str(tmp_path),
            "SECRET_KEY": "x" * 60,
            "REDIS_URL": "redis://127.0.0.1:6379/3",
        },
    )
    assert json.loads(redis_only.stdout) == [
        "django.db.backends.sqlite3",
        "redis://127.0.0.1:6379/3",
        "django.core.cache.backends.redis.RedisCache",
    ]
    pg_only = run_python(
        code,
        {
            "DATA_DIR": str(tmp_path),
            "SECRET_KEY": "x" * 60,
            "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/x",
        },
    )
    assert json.loads(pg_only.stdout) == [
        "django.db.backends.postgresql",
        "filesystem://",
        "django.core.cache.backends.db.DatabaseCache",
    ]


def test_celery_worker_and_beat_configure_with_no_environment(tmp_path):
    code = (
        "from returns_portal.celery import app; import json; app.loader.import_default_modules(); "
        "print(json.dumps([app.conf.broker_url, sorted(app.conf.beat_schedule), app.conf.task_acks_late, "
        "app.conf.worker_prefetch_multiplier, 'returns_portal.outbox_sweep' in app.tasks]))"
    )
    result = run_python(code, {"DATA_DIR": str(tmp_path), "DEBUG": "1"})
    assert result.returncode == 0, result.stderr
    import json

    broker, schedule, acks_late, prefetch, has_sweep = json.loads(result.stdout)
    assert broker == "filesystem://"
    assert "outbox-sweep" in schedule
    assert acks_late is True and prefetch == 1 and has_sweep is True


def test_debug_mail_goes_to_data_dir_mail(tmp_path):
    """README: the demo's e-mails are written to `data/mail/` (an absolute path, not
    one relative to the process's working directory)."""
    code = (
        "import django, os; os.environ['DJANGO_SETTINGS_MODULE']='returns_portal.settings'; django.setup(); "
        "from django.conf import settings as s; print(s.EMAIL_BACKEND); print(s.EMAIL_FILE_PATH)"
    )
    result = run_python(code, {"DATA_DIR": str(tmp_path), "DEBUG": "1"})
    assert result.returncode == 0, result.stderr
    backend, path = result.stdout.split()
    assert backend == "django.core.mail.backends.filebased.EmailBackend"
    assert path == str(tmp_path.resolve() / "mail")
