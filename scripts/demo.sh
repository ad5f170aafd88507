#!/usr/bin/env bash
# `make demo`: the embedded default (SQLite + filesystem broker, no services needed).
# Keeps its generated SECRET_KEY and the demo staff password in DATA_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
export DATA_DIR=${DATA_DIR:-$PWD/data}
mkdir -p "$DATA_DIR"
if [ ! -s "$DATA_DIR/secret_key" ]; then
  "$VENV/bin/python" -c 'import secrets; print(secrets.token_urlsafe(50))' > "$DATA_DIR/secret_key"
  chmod 600 "$DATA_DIR/secret_key"
fi
export DEBUG=1
export SECRET_KEY="$(cat "$DATA_DIR/secret_key")"
export BASE_DOMAIN=${BASE_DOMAIN:-localhost}
export PUBLIC_PORT=${PUBLIC_PORT:-8000}
unset DATABASE_URL REDIS_URL

"$VENV/bin/python" manage.py migrate --noinput -v0
"$VENV/bin/python" manage.py seed_demo
echo
echo "Starting web (http://demo.localhost:${PUBLIC_PORT}/), worker and beat. Ctrl-C stops them."
exec "$VENV/bin/honcho" -f Procfile.demo start
