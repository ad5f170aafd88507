"""Carrier accounts: credentials and webhook secrets encrypted with
FIELD_ENCRYPTION_KEYS (MultiFernet), rotation, DEBUG fallback; the selectors
that read them; the stored-events view for the API; cross-tenant tasks."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured, ValidationError

from returns_portal.tenancy import crypto
from tests.tracking.conftest import TEST_FERNET_KEY, make_shipment, sandbox_doc, utc
from tracking.ingest import tracking_events_ingest
from tracking.models import CarrierAccount, UnmatchedTrackingNumber
from tracking.selectors import (
    carrier_account_credentials,
    pollable_providers,
    shipment_events,
    webhook_secret_get,
)
from tracking.services import carrier_account_save
from tracking.tasks import unmatched_attach

pytestmark = pytest.mark.django_db
NOW = utc(2026, 11, 20)


def test_crypto_round_trip_rotation_and_configuration(settings):
    token = crypto.encrypt("s3cr3t")
    assert token != "s3cr3t" and crypto.decrypt(token) == "s3cr3t"
    new_key = Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEYS = [new_key, TEST_FERNET_KEY]
    assert crypto.decrypt(token) == "s3cr3t"  # old key still decrypts
    rotated = crypto.rotate(token)
    settings.FIELD_ENCRYPTION_KEYS = [new_key]
    assert crypto.decrypt(rotated) == "s3cr3t"
    settings.FIELD_ENCRYPTION_KEYS = []
    settings.DEBUG = False
    with pytest.raises(ImproperlyConfigured):
        crypto.encrypt("x")
    settings.DEBUG = True
    assert crypto.decrypt(crypto.encrypt("demo")) == "demo"  # derived from SECRET_KEY


def test_carrier_account_save_encrypts_and_keeps_unchanged_values(tenant):
    account = carrier_account_save(
        tenant=tenant,
        carrier="fedex",
        credentials={"api_key": "fedex-api-key-123", "secret_key": "S"},
        webhook_secret="W",
        test_mode=True,
        now=NOW,
    )
    assert "fedex-api-key-123" not in account.credentials_encrypted
    creds = carrier_account_credentials(account)
    assert dict(creds.values) == {"api_key": "fedex-api-key-123", "secret_key": "S"}
    assert creds.test_mode
    carrier_account_save(tenant=tenant, carrier="fedex", name="FedEx main", now=NOW)
    account.refresh_from_db()
    assert account.name == "FedEx main"
    assert carrier_account_credentials(account).values["api_key"] == "fedex-api-key-123"
    assert webhook_secret_get(tenant=tenant, provider="fedex") == "W"
    carrier_account_save(tenant=tenant, carrier="fedex", webhook_secret="W2", now=NOW)
    assert webhook_secret_get(tenant=tenant, provider="fedex") == "W2"  # cache cleared
    assert CarrierAccount.objects.count() == 1
    with pytest.raises(ValidationError):
        carrier_account_save(tenant=tenant, carrier="pigeon", now=NOW)


def test_accounts_are_per_tenant(tenant, other_tenant):
    carrier_account_save(tenant=tenant, carrier="ups", webhook_secret="mine", now=NOW)
    assert webhook_secret_get(tenant=other_tenant, provider="ups") is None
    assert pollable_providers(tenant=tenant) == {"sandbox", "ups"}
    assert pollable_providers(tenant=other_tenant) == {"sandbox"}
    carrier_account_save(tenant=tenant, carrier="ups", is_active=False, now=NOW)
    assert pollable_providers(tenant=tenant) == {"sandbox"}


def test_shipment_events_have_the_normalize_events_keys_newest_first(tenant):
    shipment = make_shipment(tenant, "SB1")
    tracking_events_ingest(
        tenant=tenant,
        provider="sandbox",
        body=sandbox_doc(
            ("SB1", [("ACCEPTED", "2026-11-10T10:00:00Z"), ("DELAYED", "2026-11-11T10:00:00Z")])
        ),
        source="api",
        now=NOW,
    )
    events = shipment_events(shipment=shipment)
    assert events[0] == {
        "carrier": "sandbox",
        "tracking_number": "SB1",
        "occurred_at": "2026-11-11T10:00:00Z",
        "occurred_at_local": "2026-11-11T10:00:00Z",
        "time_precision": "second",
        "status": "exception",
        "exception_reason": "delayed",
        "location": "Reno, NV, US",
        "carrier_code": "DELAYED",
        "description": "Delayed",
    }
    assert [e["carrier_code"] for e in events] == ["DELAYED", "ACCEPTED"]


def test_unmatched_attach_task_with_another_tenant_id_touches_nothing(tenant, other_tenant):
    tracking_events_ingest(
        tenant=tenant,
        provider="sandbox",
        body=sandbox_doc(("SB9", [("ACCEPTED", "2026-11-10T10:00:00Z")])),
        source="api",
        now=NOW,
    )
    make_shipment(other_tenant, "SB9")
    row = UnmatchedTrackingNumber.objects.get()
    assert unmatched_attach(row.pk, other_tenant.pk) == 0
    row.refresh_from_db()
    assert row.attached_at is None
