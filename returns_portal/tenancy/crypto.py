"""Encryption of per-tenant secrets (carrier and gateway credentials) at rest.

`FIELD_ENCRYPTION_KEYS` (settings, comma separated, newest first) are Fernet
keys (url-safe base64 of 32 bytes); a `MultiFernet` encrypts with the first
and decrypts with any, so keys rotate by prepending a new one and running
`rotate()` over stored values. In DEBUG without keys one key is derived from
`SECRET_KEY` (SHA-256), so the demo works; outside DEBUG missing keys raise
`ImproperlyConfigured` on first use.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

__all__ = ["InvalidToken", "decrypt", "decrypt_json", "encrypt", "encrypt_json", "fernet", "rotate"]


def _keys() -> list[bytes]:
    keys = [k.strip().encode() for k in getattr(settings, "FIELD_ENCRYPTION_KEYS", []) if k.strip()]
    if keys:
        return keys
    if settings.DEBUG:
        digest = hashlib.sha256(("field-encryption:" + settings.SECRET_KEY).encode()).digest()
        return [base64.urlsafe_b64encode(digest)]
    raise ImproperlyConfigured("FIELD_ENCRYPTION_KEYS is required unless DEBUG is on.")


def fernet() -> MultiFernet:
    """The MultiFernet over the configured keys (first encrypts, any decrypts)."""
    return MultiFernet([Fernet(k) for k in _keys()])


def encrypt(plaintext: str) -> str:
    """A Fernet token (text) for `plaintext`; "" stays ""."""
    if not plaintext:
        return ""
    return fernet().encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    """The plaintext of a token from `encrypt`; raises `InvalidToken` for a foreign token."""
    if not token:
        return ""
    return fernet().decrypt(token.encode()).decode()


def encrypt_json(value: Any) -> str:
    return encrypt(json.dumps(value, sort_keys=True))


def decrypt_json(token: str) -> Any:
    return json.loads(decrypt(token)) if token else {}


def rotate(token: str) -> str:
    """Re-encrypt `token` with the newest key."""
    return fernet().rotate(token.encode()).decode() if token else ""
