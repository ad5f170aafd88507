"""Root pytest configuration: settings that tests need before Django loads."""

import os

os.environ.setdefault("SECRET_KEY", "test-only-secret-key-not-for-production")
os.environ.setdefault("BASE_DOMAIN", "localhost")
os.environ.setdefault("PUBLIC_SCHEME", "http")
os.environ.setdefault("PUBLIC_PORT", "8000")
