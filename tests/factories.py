"""factory-boy factories. Children take their tenant from their parent, so a
test never mixes tenants by accident."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import factory
from django.contrib.auth import get_user_model

from returns_portal.tenancy.models import Membership, Role, Tenant
from rma.models import Customer, Order, OrderLine, ReturnLine, ReturnRequest, Shipment

User = get_user_model()


class TenantFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Tenant
        django_get_or_create = ("slug",)

    slug = factory.Sequence(lambda n: f"shop{n}")
    name = factory.LazyAttribute(lambda o: f"{o.slug.title()} Store")
    country = "US"
    subdivision = "NY"
    time_zone = "America/New_York"
    currency = "USD"
    support_email = factory.LazyAttribute(lambda o: f"support@{o.slug}.example")
    escalation_email = factory.LazyAttribute(lambda o: f"escalations@{o.slug}.example")

    @factory.post_generation
    def provision(obj, create, extracted, **kwargs):
        if create:
            from returns_portal.tenancy import provisioning

            provisioning.provision(obj)


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda o: f"{o.username}@staff.example")
    password = factory.django.Password("correct horse battery staple")


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    tenant = factory.SubFactory(TenantFactory)
    user = factory.SubFactory(UserFactory)
    role = Role.ADMIN


class CustomerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Customer

    tenant = factory.SubFactory(TenantFactory)
    email_normalized = factory.Sequence(lambda n: f"customer{n}@example.com")


class OrderFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Order

    tenant = factory.SubFactory(TenantFactory)
    number = factory.Sequence(lambda n: f"#{1001 + n}")
    email = factory.Sequence(lambda n: f"buyer{n}@example.com")
    currency = "USD"
    placed_at = datetime(2026, 11, 1, 14, 0, tzinfo=UTC)
    fulfilled_at = datetime(2026, 11, 2, 14, 0, tzinfo=UTC)
    financial_status = "paid"
    fulfillment_status = "fulfilled"
    subtotal = Decimal("100.00")
    total = Decimal("108.00")
    taxes = Decimal("8.00")
    risk_level = "low"
    shipping_country = "US"


class OrderLineFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = OrderLine

    order = factory.SubFactory(OrderFactory)
    tenant = factory.SelfAttribute("order.tenant")
    position = factory.Sequence(lambda n: n + 1)
    sku = factory.Sequence(lambda n: f"SKU-{n}")
    title = factory.Sequence(lambda n: f"Item {n}")
    quantity = 2
    fulfilled_quantity = factory.SelfAttribute("quantity")
    unit_price = Decimal("50.00")
    fulfillment_status = "fulfilled"


class ReturnRequestFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ReturnRequest

    order = factory.SubFactory(OrderFactory)
    tenant = factory.SelfAttribute("order.tenant")
    rma_number = factory.Sequence(lambda n: f"RMA-{200001 + n}")
    email = factory.SelfAttribute("order.email")
    created_at = datetime(2026, 11, 10, 15, 0, tzinfo=UTC)
    updated_at = factory.SelfAttribute("created_at")


class ReturnLineFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ReturnLine

    return_request = factory.SubFactory(ReturnRequestFactory)
    tenant = factory.SelfAttribute("return_request.tenant")
    order_line = factory.SubFactory(
        OrderLineFactory, order=factory.SelfAttribute("..return_request.order")
    )
    quantity = 1
    reason = "too_small"


class ShipmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Shipment

    return_request = factory.SubFactory(ReturnRequestFactory)
    tenant = factory.SelfAttribute("return_request.tenant")
    carrier = "ups"
    tracking_provider = factory.SelfAttribute("carrier")
    tracking_number = factory.Sequence(lambda n: f"1Z999AA1{n:010d}")
