"""Tracking test helpers: a Fernet key for carrier credentials, shipment and
payload builders."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

CORPUS = Path(__file__).resolve().parents[2] / ".." / "shared" / "carriers"
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "carriers"
TEST_FERNET_KEY = "1b3jE3bPz9yX5W8kq0rFvQ2sT4uV6wX8yZ0aB2cD4eE="


@pytest.fixture(autouse=True)
def _field_encryption_keys(settings):
    settings.FIELD_ENCRYPTION_KEYS = [TEST_FERNET_KEY]


def corpus_or_skip() -> Path:
    """The shared corpus; skipped when absent, a failure in CI (CI=true)."""
    if not CORPUS.is_dir():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"carrier corpus missing at {CORPUS} (required in CI)")
        pytest.skip("shared carrier corpus not present")
    return CORPUS


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)
