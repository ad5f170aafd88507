"""Field encryption (returns_portal/tenancy/crypto.py): MultiFernet over FIELD_ENCRYPTION_KEYS."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured

from returns_portal.tenancy import crypto


def test_round_trip_and_rotation(settings):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEYS = [old]
    token = crypto.encrypt("sk_test_123")
    assert token != "sk_test_123" and crypto.decrypt(token) == "sk_test_123"
    settings.FIELD_ENCRYPTION_KEYS = [new, old]
    assert crypto.decrypt(token) == "sk_test_123"
    rotated = crypto.rotate(token)
    settings.FIELD_ENCRYPTION_KEYS = [new]
    assert crypto.decrypt(rotated) == "sk_test_123"
    with pytest.raises(crypto.InvalidToken):
        crypto.decrypt(token)


def test_json_and_empty(settings):
    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    assert crypto.decrypt_json(crypto.encrypt_json({"a": "b"})) == {"a": "b"}
    assert crypto.encrypt("") == "" and crypto.decrypt("") == "" and crypto.decrypt_json("") == {}


def test_debug_derives_a_key_from_secret_key(settings):
    settings.FIELD_ENCRYPTION_KEYS = []
    settings.DEBUG = True
    assert crypto.decrypt(crypto.encrypt("x")) == "x"
    settings.DEBUG = False
    with pytest.raises(ImproperlyConfigured):
        crypto.encrypt("x")
