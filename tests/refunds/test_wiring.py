"""The refunds issue's registrations: the workflow reaction, the outbox source, the
return-created hook and the provisioner."""

from __future__ import annotations

from refunds import outbox
from returns_portal import workflows
from returns_portal.tasks import OUTBOX_SOURCES
from returns_portal.tenancy import provisioning
from rma import hooks


def test_registrations():
    assert workflows.refund_reaction in workflows.REACTIONS
    assert outbox.owed in OUTBOX_SOURCES
    assert "refunds" in [name for name, _ in provisioning.provisioners()]
    assert "refunds" in [name for name, _ in hooks._return_created]
