"""Structural tenancy rules (DESIGN.md section 3), checked over every model:

- the tenant leads every composite index and every unique constraint;
- many-to-many relations go through an explicit model that has a tenant;
- after a scenario touching every model, every foreign key between
  tenant-owned rows stays inside one tenant.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.apps import apps
from django.db import models
from django.db.models import F

from returns_portal.tenancy.admin_base import is_tenant_owned
from rma.services import exception_open, milestone_reach, notification_queue
from tests.factories import ReturnLineFactory, ShipmentFactory

PROJECT_APPS = {"tenancy", "rma", "tracking", "refunds", "returns_portal"}
T0 = datetime(2026, 11, 16, 15, 0, tzinfo=UTC)


def tenant_models() -> list[type[models.Model]]:
    return [
        m for m in apps.get_models() if m._meta.app_label in PROJECT_APPS and is_tenant_owned(m)
    ]


def first_name(constraint_or_index) -> str | None:
    if getattr(constraint_or_index, "fields", None):
        return constraint_or_index.fields[0]
    expressions = getattr(constraint_or_index, "expressions", ())
    if expressions and isinstance(expressions[0], F):
        return expressions[0].name
    return None


@pytest.mark.parametrize("model", tenant_models(), ids=lambda m: m._meta.label)
def test_tenant_leads_unique_constraints_and_composite_indexes(model):
    for constraint in model._meta.constraints:
        if isinstance(constraint, models.UniqueConstraint):
            assert first_name(constraint) == "tenant", f"{model._meta.label}.{constraint.name}"
    for index in model._meta.indexes:
        if len(index.fields) + len(index.expressions) > 1:
            assert first_name(index) == "tenant", f"{model._meta.label}.{index.name}"
    for field in model._meta.local_fields:
        if field.unique and not field.primary_key:
            # Globally unique by nature: random public ids and host names; nothing else.
            allowed = {"token", "public_id", "uuid", "line_id", "lookup_id", "domain"}
            assert field.name in allowed, f"{model._meta.label}.{field.name}"


@pytest.mark.parametrize("model", tenant_models(), ids=lambda m: m._meta.label)
def test_many_to_many_go_through_tenant_models(model):
    for field in model._meta.local_many_to_many:
        assert not field.remote_field.through._meta.auto_created, (
            f"{model._meta.label}.{field.name}"
        )
        assert is_tenant_owned(field.remote_field.through)


def assert_foreign_keys_stay_in_tenant() -> int:
    """Walk every FK between tenant-owned models; return how many relations were checked."""
    checked = 0
    for model in tenant_models():
        for field in model._meta.concrete_fields:
            if (
                isinstance(field, models.ForeignKey)
                and field.name != "tenant"
                and is_tenant_owned(field.related_model)
            ):
                crossing = model.objects.filter(**{f"{field.name}__isnull": False}).exclude(
                    tenant_id=F(f"{field.name}__tenant_id")
                )
                assert not crossing.exists(), f"{model._meta.label}.{field.name} crosses tenants"
                checked += 1
    return checked


@pytest.mark.django_db
def test_scenario_foreign_keys_stay_within_tenant(tenant, other_tenant):
    for t in (tenant, other_tenant):
        line = ReturnLineFactory(return_request__order__tenant=t)
        rr = line.return_request
        shipment = ShipmentFactory(return_request=rr)
        milestone_reach(
            tenant=t, return_request=rr, name="first_scan", reached_at=T0, source="carrier", now=T0
        )
        exception_open(
            tenant=t,
            return_request=rr,
            shipment=shipment,
            kind="carrier_exception",
            reason="delayed",
            opened_at=T0,
        )
        notification_queue(
            tenant=t,
            key=f"k{rr.pk}",
            kind="x",
            to_email="a@b.c",
            subject="s",
            body_text="b",
            now=T0,
            return_request=rr,
        )
        from refunds.services import refund_create_for_return

        refund_create_for_return(rr, now=T0)
    assert assert_foreign_keys_stay_in_tenant() >= 10


@pytest.mark.django_db
def test_demo_scenario_foreign_keys_stay_within_tenant(tmp_path, other_tenant):
    from returns_portal.demo import demo_seed

    ReturnLineFactory(return_request__order__tenant=other_tenant)
    demo_seed(now=datetime(2026, 11, 29, 17, 0, tzinfo=UTC), data_dir=tmp_path)
    assert assert_foreign_keys_stay_in_tenant() >= 30
