# returns-portal image: gunicorn web, Celery worker and beat share it.
FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
RUN apt-get update && apt-get install -y --no-install-recommends curl && rm -rf /var/lib/apt/lists/*
COPY pyproject.toml README.md ./
COPY returns_portal ./returns_portal
COPY rma ./rma
COPY tracking ./tracking
COPY refunds ./refunds
RUN pip install --no-cache-dir .
COPY . .
RUN SECRET_KEY=build-only DATA_DIR=/tmp/build WHITENOISE_USE_FINDERS=0 python manage.py collectstatic --noinput -v0
RUN useradd --create-home --uid 1000 app && mkdir -p /data && chown app /data
USER app
ENV DATA_DIR=/data WHITENOISE_USE_FINDERS=0
EXPOSE 8000
CMD ["gunicorn", "returns_portal.wsgi", "--bind", "0.0.0.0:8000", "--workers", "3", "--access-logfile", "-"]
