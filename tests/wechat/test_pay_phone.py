"""Collecting by WeChat Pay from the phone contract page: the WeUI button, the order opening
on its phone page, refusals back on the phone contract page."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.conftest import user_of
from tests.wechat.test_pay import contract, first_instalment, sandbox  # noqa: F401 - fixtures
from weiying.wechat import pay
from weiying.wechat.models import PayOrder

pytestmark = pytest.mark.django_db


def phone_page(made):
    return reverse("mobile:contract_detail", args=[made.pk])


def test_the_phone_contract_page_offers_wechat_pay_per_open_instalment(
        company, contract, login, sandbox):  # noqa: F811
    body = login(company.rep_a).get(phone_page(contract)).content.decode()

    assert body.count('data-testid="pay-collect"') == 2
    assert body.count('<input type="hidden" name="phone" value="1">') == 2
    assert body.count('class="weui-btn weui-btn_mini weui-btn_primary"') == 2
    assert reverse("wechat:payorder_new", args=[contract.pk]) in body


def test_without_wechat_pay_configured_the_phone_page_shows_no_button(
        company, contract, login):  # noqa: F811
    page = login(company.rep_a).get(phone_page(contract))

    assert page.status_code == 200
    assert "pay-collect" not in page.content.decode()
    assert "/wechat/pay" not in page.content.decode()


def test_collecting_on_the_phone_opens_the_phone_order_page(
        company, contract, login, sandbox):  # noqa: F811
    rep = login(company.rep_a)

    response = rep.post(reverse("wechat:payorder_new", args=[contract.pk]),
                        {"instalment": first_instalment(contract).pk, "phone": "1"})

    order = PayOrder.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("wechat:payorder_show", args=[order.pk])
    shown = rep.get(response["Location"]).content.decode()
    assert '<svg class="qr" role="img"' in shown and "¥800.01" in shown
    # back on the contract, the open code is shown instead of making another
    body = rep.get(phone_page(contract)).content.decode()
    assert f'href="{reverse("wechat:payorder_show", args=[order.pk])}"' in body
    assert body.count('data-testid="pay-show"') == 1
    assert body.count('data-testid="pay-collect"') == 1


def test_a_refusal_goes_back_to_the_phone_contract_page(
        company, contract, login, sandbox):  # noqa: F811
    rep = login(company.rep_a)

    response = rep.post(reverse("wechat:payorder_new", args=[contract.pk]),
                        {"instalment": "987654", "phone": "1"}, follow=True)

    assert response.redirect_chain == [(phone_page(contract), 302)]
    assert "请选择本合同的一期来收款。" in response.content.decode()
    assert PayOrder.objects.count() == 0


def test_a_new_code_from_the_phone_order_page_stays_on_the_phone(
        company, contract, login, sandbox):  # noqa: F811
    order = pay.create_pay_order(actor=user_of(company.rep_a),
                                 instalment=first_instalment(contract))
    PayOrder.objects.filter(pk=order.pk).update(code_url="")  # no code to show any more

    shown = login(company.rep_a).get(reverse("wechat:payorder_show", args=[order.pk]))

    body = shown.content.decode()
    assert reverse("wechat:payorder_new", args=[contract.pk]) in body
    assert '<input type="hidden" name="phone" value="1">' in body
