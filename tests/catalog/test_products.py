from decimal import Decimal

import pytest
from django.utils import translation

from tests.conftest import user_of
from weiying.catalog import services
from weiying.catalog.models import Product
from weiying.catalog.selectors import products_for
from weiying.core.errors import Conflict, PermissionDenied, ValidationFailed
from weiying.core.models import AuditLog

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def english():
    with translation.override("en"):
        yield


def test_admin_creates_updates_and_retires_a_product(company):
    admin = user_of(company.admin)
    product = services.create_product(actor=admin, code="P-1", name="云盒子",
                                      list_price="199.00", vat_rate="0.13", lifecycle_days=365)
    assert (product.list_price, product.vat_rate, product.unit) == (
        Decimal("199.00"), Decimal("0.13"), "件")
    product = services.update_product(actor=admin, product=product, list_price="219.00",
                                      vat_rate="0.06")
    product.refresh_from_db()
    assert (product.list_price, product.vat_rate) == (Decimal("219.00"), Decimal("0.06"))
    services.retire_product(actor=admin, product=product)
    product.refresh_from_db()
    assert product.is_active is False
    assert list(AuditLog.objects.filter(object_type="catalog.product").order_by("pk")
                .values_list("action", flat=True)) == [
        "product.create", "product.update", "product.retire"]
    update = AuditLog.objects.get(action="product.update")
    assert update.before["list_price"] == "199.00" and update.after["list_price"] == "219.00"


def test_only_settings_managers_edit_the_catalogue(company):
    with pytest.raises(PermissionDenied):
        services.create_product(actor=user_of(company.manager_a), code="P-2", name="x",
                                list_price="1.00")
    assert not Product.objects.exists()


@pytest.mark.parametrize(
    ("kwargs", "code", "field"),
    [
        ({"vat_rate": "0.17"}, "invalid_vat_rate", "vat_rate"),
        ({"list_price": "-1"}, "invalid", "list_price"),
        ({"list_price": "1.005"}, "invalid", "list_price"),
        ({"name": " "}, "invalid", "name"),
        ({"code": ""}, "invalid", "code"),
        ({"lifecycle_days": 0}, "invalid", "lifecycle_days"),
    ],
)
def test_bad_product_input_is_refused(company, kwargs, code, field):
    args = {"code": "P-3", "name": "x", "list_price": "1.00", **kwargs}
    with pytest.raises(ValidationFailed) as exc:
        services.create_product(actor=user_of(company.admin), **args)
    assert (exc.value.code, exc.value.field) == (code, field)


def test_product_codes_are_unique(company):
    admin = user_of(company.admin)
    services.create_product(actor=admin, code="P-4", name="x", list_price="1.00")
    with pytest.raises(Conflict) as exc:
        services.create_product(actor=admin, code="P-4", name="y", list_price="1.00")
    assert exc.value.code == "duplicate_product_code"
    assert str(exc.value.message) == "Product code P-4 is already used; pick another."


def test_retiring_twice_is_refused(company):
    admin = user_of(company.admin)
    product = services.create_product(actor=admin, code="P-5", name="x", list_price="1.00")
    services.retire_product(actor=admin, product=product)
    with pytest.raises(Conflict) as exc:
        services.retire_product(actor=admin, product=product)
    assert exc.value.code == "product_retired"


def test_product_list_shows_active_products_to_employees(company, django_user_model):
    admin = user_of(company.admin)
    services.create_product(actor=admin, code="A-1", name="在售", list_price="1.00")
    old = services.create_product(actor=admin, code="A-2", name="停售", list_price="1.00")
    services.retire_product(actor=admin, product=old)
    assert [p.code for p in products_for(user_of(company.rep_b))] == ["A-1"]
    assert [p.code for p in products_for(user_of(company.rep_b), active=None)] == ["A-1", "A-2"]
    stranger = django_user_model.objects.create_user("stranger", password="x" * 10)
    assert list(products_for(stranger)) == []


def test_products_api_lists_and_pages(company, login):
    admin = user_of(company.admin)
    for n in range(3):
        services.create_product(actor=admin, code=f"C-{n}", name=f"品{n}", list_price="9.90",
                                vat_rate="0.06")
    client = login(company.rep_a)
    first = client.get("/api/contracts/products?size=2").json()
    assert [p["code"] for p in first["items"]] == ["C-0", "C-1"]
    assert first["items"][0]["list_price"] == "9.90"
    second = client.get(f"/api/contracts/products?size=2&cursor={first['next_cursor']}").json()
    assert [p["code"] for p in second["items"]] == ["C-2"]
    assert second["next_cursor"] is None
