"""Return centres' calendar codes (DESIGN.md section 6): the country is an ISO 3166-1 code
and the subdivision one of its ISO 3166-2 codes as the `holidays` package knows them
(the business-day calendar), checked by the model for the admin and `return_centre_update`."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from rma.models import ReturnCentre
from rma.services import return_centre_update

pytestmark = pytest.mark.django_db
A_HOST = "acme.localhost"


def centre_form(**overrides):
    data = {
        "name": "Main depot",
        "address": "1 Dock Rd",
        "country": "US",
        "subdivision": "CA",
        "time_zone": "America/Los_Angeles",
        "is_default": "on",
    }
    data.update(overrides)
    return data


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"country": "ZZ"}, "&#x27;ZZ&#x27; is not an ISO 3166-1 country code."),
        ({"subdivision": "XX"}, "&#x27;XX&#x27; is not a subdivision of US."),
        ({"country": "DE", "subdivision": "CA"}, "&#x27;CA&#x27; is not a subdivision of DE."),
    ],
)
def test_admin_refuses_unknown_country_or_subdivision(
    client, tenant, tenant_admin, overrides, message
):
    centre = ReturnCentre.objects.get(tenant=tenant, is_default=True)
    before = (centre.country, centre.subdivision)
    client.force_login(tenant_admin)
    response = client.post(
        f"/admin/rma/returncentre/{centre.pk}/change/",
        centre_form(**overrides),
        HTTP_HOST=A_HOST,
    )
    assert response.status_code == 200
    assert message in response.content.decode()
    centre.refresh_from_db()
    assert (centre.country, centre.subdivision) == before


def test_admin_saves_known_codes_upper_cased(client, tenant, tenant_admin):
    centre = ReturnCentre.objects.get(tenant=tenant, is_default=True)
    client.force_login(tenant_admin)
    response = client.post(
        f"/admin/rma/returncentre/{centre.pk}/change/",
        centre_form(country="de", subdivision="by", time_zone="Europe/Berlin"),
        HTTP_HOST=A_HOST,
    )
    assert response.status_code == 302
    centre.refresh_from_db()
    assert (centre.country, centre.subdivision) == ("DE", "BY")


def test_admin_cannot_change_another_tenants_centre(client, tenant_admin, other_tenant):
    theirs = ReturnCentre.objects.get(tenant=other_tenant, is_default=True)
    before = (theirs.country, theirs.subdivision)
    client.force_login(tenant_admin)
    for host in (A_HOST, "localhost"):
        response = client.post(
            f"/admin/rma/returncentre/{theirs.pk}/change/", centre_form(), HTTP_HOST=host
        )
        assert response.status_code == 302  # "does not exist", back to the list
    theirs.refresh_from_db()
    assert (theirs.country, theirs.subdivision) == before


def test_service_refuses_the_same_codes(tenant):
    with pytest.raises(ValidationError) as info:
        return_centre_update(tenant=tenant, country="ZZ", subdivision="XX")
    assert info.value.message_dict == {"country": ["'ZZ' is not an ISO 3166-1 country code."]}
    with pytest.raises(ValidationError) as info:
        return_centre_update(tenant=tenant, country="US", subdivision="XX")
    assert info.value.message_dict == {"subdivision": ["'XX' is not a subdivision of US."]}
