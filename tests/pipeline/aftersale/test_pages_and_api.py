import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from tests.pipeline.tickets import factories as f

pytestmark = pytest.mark.django_db

EN = {"HTTP_ACCEPT_LANGUAGE": "en"}


@pytest.fixture
def data(company):
    today = timezone.localdate()
    refill = f.product("R90", category="耗材", lifecycle_days=90)
    extra = f.product("R91", category="耗材")
    a = f.customer("上海甲公司", company.rep_a)
    f.contract(a, status="completed", signed_on=today - dt.timedelta(days=100),
               products=(refill,), total="3000.00", collected="1000.00")
    b = f.customer("北京丙公司", company.rep_b)
    f.contract(b, status="completed", signed_on=today - dt.timedelta(days=200),
               products=(refill,), total="5000.00", collected="5000.00")
    return {"a": a, "b": b, "refill": refill, "extra": extra, "today": today}


@pytest.mark.parametrize("tab", ["repurchase", "upsell", "value", "nonsense"])
def test_aftersale_page_tabs_render_scoped(company, data, login, tab):
    response = login(company.rep_a).get(reverse("pipeline:aftersale"), {"tab": tab})
    assert response.status_code == 200
    html = response.content.decode()
    assert "上海甲公司" in html
    assert "北京丙公司" not in html


def test_aftersale_page_options_and_bad_cursor(company, data, login):
    client = login(company.rep_a)
    url = reverse("pipeline:aftersale")
    assert client.get(url, {"tab": "repurchase", "within": "7"}).status_code == 200
    assert client.get(url, {"tab": "value", "sort": "-outstanding"}).status_code == 200
    assert client.get(url, {"tab": "value", "sort": "bogus"}).status_code == 200


def test_api_repurchase_due(company, data, login):
    body = login(company.rep_a).get("/api/tickets/aftersale/repurchase-due").json()
    assert body == {
        "items": [{
            "customer_id": data["a"].pk, "customer_name": "上海甲公司", "owner_name": "李销售",
            "product_id": data["refill"].pk, "product_name": "产品R90",
            "last_purchase": (data["today"] - dt.timedelta(days=100)).isoformat(),
            "due_on": (data["today"] - dt.timedelta(days=10)).isoformat(),
            "days_overdue": 10,
        }],
        "next_cursor": None,
    }


def test_api_upsell_and_value(company, data, login):
    client = login(company.rep_b)
    upsell = client.get("/api/tickets/aftersale/upsell").json()
    assert upsell["items"] == [{
        "customer_id": data["b"].pk, "customer_name": "北京丙公司", "owner_name": "钱销售",
        "total_collected": "5000.00",
        "suggestions": [{"product_id": data["extra"].pk, "code": "R91", "name": "产品R91",
                         "category": "耗材"}],
    }]
    value = login(company.rep_a).get("/api/tickets/aftersale/customer-value",
                                      {"sort": "-outstanding"}).json()
    assert [(v["customer_name"], v["outstanding"], v["contracts"]) for v in value["items"]] == [
        ("上海甲公司", "2000.00", 1),
    ]


def test_api_aftersale_error_codes(company, data, login):
    client = login(company.rep_a)
    bad_sort = client.get("/api/tickets/aftersale/customer-value", {"sort": "name"}, **EN)
    assert bad_sort.status_code == 400
    assert bad_sort.json()["code"] == "invalid" and bad_sort.json()["field"] == "sort"
    bad_window = client.get("/api/tickets/aftersale/repurchase-due", {"within_days": -1}, **EN)
    assert bad_window.status_code == 400
    assert bad_window.json()["message"] == "Look ahead between 0 and 365 days."
    bad_cursor = client.get("/api/tickets/aftersale/upsell", {"cursor": "!!!"}, **EN)
    assert bad_cursor.status_code == 400 and bad_cursor.json()["field"] == "cursor"


def test_admin_lists_stay_available(company, data, login, django_user_model):
    from tests.conftest import user_of
    from weiying.pipeline.services.tickets import open_ticket

    open_ticket(actor=user_of(company.rep_a), customer=data["a"], title="故障")
    django_user_model.objects.create_superuser("root", "root@example.com", "x" * 12)
    from django.test import Client

    client = Client()
    client.login(username="root", password="x" * 12)
    for model in ["ticket", "contract", "lead", "opportunity", "followup", "quote", "receipt",
                  "instalment", "contractline", "opportunityline", "stagechange",
                  "assignmentrule", "pipeline", "stage"]:
        assert client.get(f"/admin/pipeline/{model}/").status_code == 200, model
    assert client.get("/admin/catalog/product/").status_code == 200
    ticket_id = data["a"].tickets.get().pk
    assert client.get(f"/admin/pipeline/ticket/{ticket_id}/change/").status_code == 200


@pytest.mark.parametrize("tab", ["repurchase", "upsell", "value"])
def test_aftersale_query_count_does_not_grow_with_rows(company, data, login, tab):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = login(company.manager_a)

    def count():
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(reverse("pipeline:aftersale"), {"tab": tab}).status_code == 200
        return len(ctx.captured_queries)

    before = count()
    for i in range(5):
        buyer = f.customer(f"客户{i}", company.rep_a2 if i % 2 else company.rep_a)
        f.contract(buyer, status="completed", signed_on=data["today"] - dt.timedelta(days=95),
                   products=(data["refill"],), total="100.00", collected="50.00")
    assert count() == before
