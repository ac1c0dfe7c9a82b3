import pytest
from django.test import Client
from django.urls import reverse

from weiying.core.models import AuditLog
from weiying.pipeline.models import Lead

pytestmark = pytest.mark.django_db


def test_list_detail_and_new_pages(company, login, make_lead):
    lead = make_lead(owner=company.rep_a, name="张三", phone="13812345678")
    client = login(company.rep_a)
    page = client.get(reverse("pipeline:lead_list"))
    assert page.status_code == 200
    assert "138****5678" in page.content.decode() and "13812345678" not in page.content.decode()
    assert client.get(reverse("pipeline:lead_list"), {"status": "no_response",
                                                      "sort": "name"}).status_code == 200
    assert client.get(reverse("pipeline:lead_detail", args=[lead.pk])).status_code == 200
    assert client.get(reverse("pipeline:lead_new")).status_code == 200
    assert client.get(reverse("pipeline:lead_convert", args=[lead.pk])).status_code == 200


def test_detail_outside_scope_is_404(company, login, make_lead):
    lead = make_lead(owner=company.rep_b)
    client = login(company.manager_a)
    assert client.get(reverse("pipeline:lead_detail", args=[lead.pk])).status_code == 404
    assert client.get(reverse("mobile:lead_detail", args=[lead.pk])).status_code == 404
    assert client.post(reverse("pipeline:lead_disqualify", args=[lead.pk]),
                       {"reason": "spam"}).status_code == 404


def test_new_lead_form_saves_and_shows_service_errors(company, login):
    client = login(company.rep_a)
    bad = client.post(reverse("pipeline:lead_new"), {"name": "张三", "phone": "123",
                                                     "source": "other"})
    assert bad.status_code == 200 and "is not a valid mobile" in bad.content.decode()
    ok = client.post(reverse("pipeline:lead_new"), {"name": "张三", "phone": "13812345678",
                                                    "source": "other",
                                                    "owner": company.rep_a.pk})
    lead = Lead.objects.get()
    assert ok.status_code == 302 and lead.owner == company.rep_a


def test_manager_assigns_and_rep_cannot(company, login, make_lead):
    lead = make_lead(owner=company.rep_a)
    url = reverse("pipeline:lead_assign", args=[lead.pk])
    assert login(company.rep_a).post(url, {"owner": company.rep_a2.pk}).status_code == 403
    assert login(company.manager_a).post(url, {"owner": company.rep_a2.pk}).status_code == 302
    assert Lead.objects.get(pk=lead.pk).owner == company.rep_a2


def test_detail_unmask_is_audited(company, login, make_lead):
    lead = make_lead(owner=company.rep_a, phone="13812345678")
    page = login(company.director).get(reverse("pipeline:lead_detail", args=[lead.pk]),
                                       {"unmask": "1"})
    assert "13812345678" in page.content.decode()
    assert AuditLog.objects.filter(action="customer.unmask", object_id=str(lead.pk)).exists()


def test_convert_page_offers_the_existing_customer(company, login, make_lead):
    from weiying.customers.services import create_customer

    existing = create_customer(actor=None, name="星辰科技", phone="13812345678",
                               owner=company.rep_a)
    lead = make_lead(owner=company.rep_a, name="张三", phone="13812345678")
    client = login(company.rep_a)
    url = reverse("pipeline:lead_convert", args=[lead.pk])
    page = client.post(url, {"create_opportunity": "on"})
    assert page.status_code == 400
    assert page.context["duplicates"][0] == existing
    linked = client.post(url, {"customer_id": existing.pk})
    assert linked.status_code == 302
    assert Lead.objects.get(pk=lead.pk).customer == existing


def test_mobile_pages(company, login, make_lead):
    mine = make_lead(owner=company.rep_a, name="我的线索", phone="13812345678")
    make_lead(owner=company.rep_a2, name="别人的")
    client = login(company.rep_a)
    page = client.get(reverse("mobile:leads"))
    assert page.status_code == 200
    body = page.content.decode()
    assert "我的线索" in body and "别人的" not in body
    detail = client.get(reverse("mobile:lead_detail", args=[mine.pk]))
    assert detail.status_code == 200 and 'href="tel:13812345678"' in detail.content.decode()


def test_capture_form_is_public_and_needs_consent(company):
    client = Client()
    url = reverse("pipeline:capture_form")
    assert client.get(url).status_code == 200
    refused = client.post(url, {"name": "张三", "phone": "13812345678"})
    assert refused.status_code == 400 and not Lead.objects.exists()
    done = client.post(url + "?channel=官网首页", {"name": "张三", "phone": "13812345678",
                                                 "consent": "on"})
    assert done.status_code == 200 and done.context["done"]
    lead = Lead.objects.get()
    assert lead.source == "form" and lead.channel == "官网首页"
    assert "consent_at" in AuditLog.objects.get(action="lead.create").after


def test_capture_form_honeypot_keeps_nothing(company):
    page = Client().post(reverse("pipeline:capture_form"),
                         {"name": "bot", "phone": "13812345678", "consent": "on",
                          "website": "http://spam"})
    assert page.status_code == 200 and not Lead.objects.exists()


def test_capture_form_is_throttled_per_ip(company):
    client = Client(REMOTE_ADDR="10.1.2.3")
    url = reverse("pipeline:capture_form")
    for i in range(10):
        client.post(url, {"name": "张三", "phone": f"1381234560{i}", "consent": "on"})
    assert Lead.objects.count() == 10
    blocked = client.post(url, {"name": "张三", "phone": "13812345699", "consent": "on"})
    assert blocked.status_code == 429 and Lead.objects.count() == 10
    other = Client(REMOTE_ADDR="10.9.9.9").post(url, {"name": "李四", "phone": "13912345699",
                                                      "consent": "on"})
    assert other.status_code == 200 and Lead.objects.count() == 11
