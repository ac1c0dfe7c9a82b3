import re

import pytest
from django.urls import reverse

from weiying.customers.services import create_customer

pytestmark = pytest.mark.django_db


def lead_page(client, lead):
    return client.get(reverse("mobile:lead_detail", args=[lead.pk])).content.decode()


def test_the_lead_page_links_the_customer_it_came_in_as(company, login, make_lead):
    customer = create_customer(actor=None, name="刘女士", owner=company.rep_a)
    lead = make_lead(owner=company.rep_a, name="刘女士", phone="", source="wecom",
                     channel="展会2026", customer=customer)

    body = lead_page(login(company.rep_a), lead)

    link = reverse("mobile:customer_detail", args=[customer.pk])
    assert f'href="{link}" data-testid="lead-customer"' in body
    assert "WeCom · 展会2026" in body


def test_a_customer_the_rep_may_not_see_is_not_linked(company, login, make_lead):
    customer = create_customer(actor=None, name="北方客户", owner=company.rep_b)
    lead = make_lead(owner=company.rep_a, name="北方客户", customer=customer)

    mine = lead_page(login(company.rep_a), lead)
    managers = lead_page(login(company.director), lead)

    assert 'data-testid="lead-customer"' not in mine and "北方客户" in mine
    assert reverse("mobile:customer_detail", args=[customer.pk]) not in mine
    assert 'data-testid="lead-customer"' not in managers  # rep B's customer: other branch
    assert 'data-testid="lead-customer"' in lead_page(login(company.admin), lead)


def test_the_lead_buttons_are_siblings_in_one_weui_button_area(company, login, make_lead):
    lead = make_lead(owner=company.rep_a, name="张先生", phone="13812345678")

    body = lead_page(login(company.rep_a), lead)

    area = re.search(r'<form method="post" class="weui-btn-area" data-testid="lead-actions">'
                     r"(.*?)</form>", body, re.S)
    assert area is not None
    buttons = re.findall(r'<(a|button)[^>]*class="weui-btn (weui-btn_\w+)"[^>]*>([^<]*)<',
                         area.group(1))
    assert buttons == [("a", "weui-btn_primary", "Call"),
                       ("a", "weui-btn_default", "Log follow-up"),
                       ("button", "weui-btn_default", "Convert to customer")]
    assert "big-action" not in body


def test_without_a_phone_logging_a_follow_up_is_the_first_button(company, login, make_lead):
    lead = make_lead(owner=company.rep_a, name="刘女士", phone="", wechat="liu-wx")

    body = lead_page(login(company.rep_a), lead)

    assert 'href="tel:' not in body
    assert re.search(r'class="weui-btn weui-btn_primary" href="[^"]*\?lead=\d+">Log follow-up<',
                     body)


def test_my_day_joins_only_the_parts_a_lead_has(company, login, make_lead):
    make_lead(owner=company.rep_a, name="刘女士", phone="", wechat="liu-wx", source="wecom")
    make_lead(owner=company.rep_a, name="张先生", phone="13812345678",
              company_name="杭州云帆", source="exhibition", channel="展会2026")

    body = login(company.rep_a).get(reverse("mobile:my_day")).content.decode()

    assert '<p>刘女士</p><p class="weui-cell__desc">WeCom</p>' in body
    assert ('<p>张先生 · 杭州云帆</p><p class="weui-cell__desc">138****5678 · Exhibition · '
            "展会2026</p>") in body
    assert not re.search(r"· *<|> *·", body)


def test_my_leads_joins_only_the_parts_a_lead_has(company, login, make_lead):
    make_lead(owner=company.rep_a, name="刘女士", phone="", wechat="liu-wx", source="wecom")

    body = login(company.rep_a).get(reverse("mobile:leads")).content.decode()

    assert re.search(r'<p class="weui-cell__desc">WeCom · \d\d-\d\d \d\d:\d\d</p>', body)
    assert not re.search(r"· *<|> *·", body)
