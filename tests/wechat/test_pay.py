"""Collecting instalments by WeChat Pay against the sandbox: the order and its QR page, the
notification recorded exactly once however often it comes, mismatches refused, the query
job that finds a lost notification, closed orders, the data scope, and fen at the boundary."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
import uuid
from decimal import Decimal
from typing import Any

import httpx
import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from tests.conftest import user_of
from tests.wechat import channel_world
from tests.wechat.conftest import OA_APP_ID, PAY_APIV3_KEY, PAY_MCH_ID, PAY_PUBLIC_KEY_ID
from weiying.core.errors import (
    DomainError,
    InvalidTransition,
    NotFound,
    PermissionDenied,
    ValidationFailed,
)
from weiying.core.models import AuditLog, DomainEvent
from weiying.customers.models import Customer
from weiying.pipeline.models import Contract, Instalment, Receipt
from weiying.pipeline.services import contracts as contract_services
from weiying.wechat import client, crypto, inbox, pay
from weiying.wechat.models import InboxMessage, PayOrder, SecurityEvent
from weiying.wechat.sandbox import SandboxConfig, SandboxState

pytestmark = pytest.mark.django_db


# --- Set-up: a signed contract with a collection plan, and the sandbox ------------------------
@pytest.fixture
def contract(company: Any) -> Contract:
    """Rep A's signed contract of 1,600.02 in two instalments of 800.01."""
    from weiying.catalog.models import Product

    product = Product.objects.create(code="P-PAY", name="收款测试", list_price=Decimal("800.01"),
                                     vat_rate=Decimal("0.13"))
    customer = Customer.objects.create(
        name="上海付款公司", name_key="上海付款公司", owner=company.rep_a,
        department=company.rep_a.department, last_activity_at=timezone.now())
    made = contract_services.create_contract(
        actor=None, customer=customer, title="付款合同",
        lines=[{"product": product, "quantity": "2", "unit_price": "800.01"}])
    contract_services.submit_contract(actor=None, contract=made)
    today = timezone.localdate()
    contract_services.sign_contract(actor=None, contract=made, signed_on=today)
    contract_services.plan_instalments(actor=None, contract=made, plan=[
        (today, "800.01"), (today + dt.timedelta(days=30), "800.01")])
    made.refresh_from_db()
    return made


def first_instalment(contract: Contract) -> Instalment:
    return contract.instalments.order_by("seq").first()


class Sandbox(channel_world.Sandbox):
    """The in-process sandbox: Pay API calls go to it through httpx's WSGI transport, and
    its notifications are posted into the Django test client (the real endpoint)."""

    def pay(self, order: PayOrder) -> str:
        """The customer scans and pays; returns the transaction id."""
        return str(self.api("/simulate/pay", {"out_trade_no": order.out_trade_no})
                   ["transaction_id"])

    def resign(self, times: int) -> None:
        """Post the last notification again, `times` times (the same body, signed afresh,
        as Tencent's retries are)."""
        delivery = self.state.deliveries[-1]
        for _ in range(times):
            self.deliver(*delivery.sign(False))


@pytest.fixture
def sandbox(wechat: Any, pay_keys: dict[str, bytes], settings: Any, monkeypatch: Any) -> Any:
    state = SandboxState(SandboxConfig(
        delivery_mode="sync", app_base_url="http://testserver",
        pay_platform_private_key=pay_keys["platform_private"].decode(),
        pay_platform_public_key=pay_keys["platform_public"].decode(),
        pay_merchant_public_key=pay_keys["merchant_public"].decode(),
        pay_retry_seconds=[0.0, 0.0],
    ))
    state.sleep = lambda seconds: None
    box = Sandbox(state)
    state.deliver = box.deliver
    monkeypatch.setattr(client, "TRANSPORT", httpx.WSGITransport(app=box.app))
    settings.WECHAT = {**settings.WECHAT, "PAY_API": "http://sandbox/pay"}
    pay_cache_clear()
    yield box
    pay_cache_clear()


def pay_cache_clear() -> None:
    from django.core.cache import cache

    cache.delete(pay.PAUSE_KEY)


def collected(contract: Contract) -> tuple[Decimal, Decimal, Decimal]:
    """(instalment 1, contract, customer) collected, fresh from the database."""
    contract.refresh_from_db()
    customer = Customer.objects.get(pk=contract.customer_id)
    return first_instalment(contract).collected, contract.collected, customer.total_collected


# --- Fen at the boundary --------------------------------------------------------------------
@pytest.mark.parametrize(("yuan", "fen"), [
    ("0.01", 1), ("800.01", 80001), ("12345678.99", 1234567899), ("1", 100), ("0.10", 10),
])
def test_yuan_and_fen_convert_exactly_both_ways(yuan, fen):
    assert pay.to_fen(Decimal(yuan)) == fen
    assert pay.from_fen(fen) == Decimal(yuan)
    assert str(pay.from_fen(fen)) == str(Decimal(yuan).quantize(Decimal("0.01")))


@pytest.mark.parametrize("bad", ["0.001", "800.015", "12345678.999"])
def test_a_fraction_of_a_fen_is_refused_not_rounded(bad):
    with pytest.raises(ValueError, match="fraction of a fen"):
        pay.to_fen(Decimal(bad))


@pytest.mark.parametrize("bad", [0.01, 1, "0.01"])
def test_only_a_decimal_becomes_fen(bad):
    with pytest.raises(TypeError):
        pay.to_fen(bad)


@pytest.mark.parametrize("bad", [True, 1.0, "1", Decimal(1)])
def test_only_an_int_of_fen_becomes_yuan(bad):
    with pytest.raises(TypeError):
        pay.from_fen(bad)


def test_the_order_model_converts_through_the_same_helper():
    assert PayOrder(amount=Decimal("800.01")).amount_fen == 80001
    with pytest.raises(ValueError, match="fraction of a fen"):
        PayOrder(amount=Decimal("0.005")).amount_fen  # noqa: B018 - the property raises


# --- Creating an order ----------------------------------------------------------------------
def test_an_order_asks_for_what_is_due_in_fen_and_stores_the_code_url(company, contract,
                                                                       sandbox):
    # when
    order = pay.create_pay_order(actor=user_of(company.rep_a),
                                 instalment=first_instalment(contract))

    # then
    at_tencent = sandbox.state.orders[order.out_trade_no]
    assert (order.amount, at_tencent.total, at_tencent.currency) == (
        Decimal("800.01"), 80001, "CNY")
    assert order.code_url == at_tencent.code_url
    assert order.code_url.startswith("weixin://wxpay/bizpayurl?pr=")
    assert order.out_trade_no == (
        f"WY{timezone.localtime(order.created_at):%Y%m%d}{order.pk:010d}")
    assert len(order.out_trade_no) <= 32
    assert at_tencent.description == f"合同 {contract.number} 第 1 期"
    assert at_tencent.time_expire == pay.rfc3339(order.expires_at)
    assert at_tencent.time_expire.endswith("+08:00")
    assert order.expires_at - order.created_at <= dt.timedelta(hours=2)
    assert order.expires_at - order.created_at > dt.timedelta(hours=1, minutes=59)
    assert at_tencent.notify_url == "http://testserver/wechat/pay/notify"
    assert (order.created_by_id, order.status, order.contract_id) == (
        company.rep_a.pk, "open", contract.pk)
    assert AuditLog.objects.filter(action="payorder.create", object_id=str(order.pk)).count() == 1
    event = DomainEvent.objects.get(name="payorder.created")
    assert event.data["amount"] == "800.01"


def test_an_open_order_for_the_same_amount_is_reused(company, contract, sandbox):
    instalment = first_instalment(contract)
    first = pay.create_pay_order(actor=user_of(company.rep_a), instalment=instalment)

    again = pay.create_pay_order(actor=user_of(company.manager_a), instalment=instalment)

    assert again.pk == first.pk
    assert PayOrder.objects.count() == 1
    assert len(sandbox.state.orders) == 1
    assert DomainEvent.objects.filter(name="payorder.created").count() == 1


def test_an_order_near_its_expiry_is_replaced_and_closed_at_tencent(company, contract,
                                                                    sandbox):
    instalment = first_instalment(contract)
    old = pay.create_pay_order(actor=user_of(company.rep_a), instalment=instalment)
    PayOrder.objects.filter(pk=old.pk).update(expires_at=timezone.now() + dt.timedelta(minutes=5))

    new = pay.create_pay_order(actor=user_of(company.rep_a), instalment=instalment)

    assert new.pk != old.pk
    old.refresh_from_db()
    assert old.status == "closed"
    assert sandbox.state.orders[old.out_trade_no].trade_state == "CLOSED"


def test_after_a_partial_receipt_the_new_order_asks_only_for_the_rest(company, contract,
                                                                      sandbox):
    instalment = first_instalment(contract)
    contract_services.record_receipt(actor=user_of(company.finance), contract=contract,
                                     amount="300.00", received_on=timezone.localdate(),
                                     method="bank", instalment=instalment)

    order = pay.create_pay_order(actor=user_of(company.rep_a), instalment=instalment)

    assert order.amount == Decimal("500.01")
    assert sandbox.state.orders[order.out_trade_no].total == 50001


def test_a_collected_instalment_or_an_unsigned_contract_takes_no_order(company, contract,
                                                                       sandbox):
    instalment = first_instalment(contract)
    contract_services.record_receipt(actor=user_of(company.finance), contract=contract,
                                     amount="800.01", received_on=timezone.localdate(),
                                     method="bank", instalment=instalment)
    with pytest.raises(ValidationFailed) as nothing_due:
        pay.create_pay_order(actor=user_of(company.rep_a), instalment=instalment)
    assert nothing_due.value.code == "nothing_due"
    assert str(nothing_due.value.message) == "第 1 期已全部收回，没有待付金额。"

    Contract.objects.filter(pk=contract.pk).update(status="cancelled")
    with pytest.raises(InvalidTransition) as cancelled:
        pay.create_pay_order(actor=user_of(company.rep_a),
                             instalment=contract.instalments.get(seq=2))
    assert cancelled.value.code == "contract_not_collectable"
    assert PayOrder.objects.count() == 0


def test_the_owner_and_finance_may_collect_but_operations_may_not(company, contract, sandbox):
    instalment = first_instalment(contract)
    assert pay.create_pay_order(actor=user_of(company.finance), instalment=instalment)
    with pytest.raises(PermissionDenied) as refused:
        pay.create_pay_order(actor=user_of(company.operations), instalment=instalment)
    assert refused.value.code == "forbidden"


def test_a_rep_outside_the_contracts_scope_gets_not_found(company, contract, sandbox):
    for outsider in (company.rep_b, company.rep_a2, company.manager_b):
        with pytest.raises(NotFound):
            pay.create_pay_order(actor=user_of(outsider), instalment=first_instalment(contract))
    assert PayOrder.objects.count() == 0


def test_tencent_refusing_the_order_is_a_message_and_a_retry_sends_the_same_order(
        company, contract, sandbox):
    instalment = first_instalment(contract)
    sandbox.api("/faults", {"rate_limit": {"count": 1, "path": "/pay/"}})

    with pytest.raises(DomainError) as busy:
        pay.create_pay_order(actor=user_of(company.rep_a), instalment=instalment)
    assert busy.value.code == "pay_rate_limited"
    waiting = PayOrder.objects.get()
    assert waiting.code_url == ""

    order = pay.create_pay_order(actor=user_of(company.rep_a), instalment=instalment)
    assert order.pk == waiting.pk
    assert order.code_url == sandbox.state.orders[order.out_trade_no].code_url


# --- Pages ----------------------------------------------------------------------------------
def test_the_contract_page_offers_wechat_pay_per_open_instalment(company, contract, login,
                                                                 sandbox):
    page = login(company.rep_a).get(reverse("pipeline:contract_detail", args=[contract.pk]))

    body = page.content.decode()
    assert body.count("微信支付收款") == 2
    assert reverse("wechat:payorder_new", args=[contract.pk]) in body


def test_without_wechat_pay_configured_the_contract_page_shows_no_button(company, contract,
                                                                         login):
    page = login(company.rep_a).get(reverse("pipeline:contract_detail", args=[contract.pk]))

    assert page.status_code == 200
    assert "微信支付收款" not in page.content.decode()
    assert "wechat/pay" not in page.content.decode()


def test_create_an_order_then_see_its_qr_code_and_link(company, contract, login, sandbox):
    rep = login(company.rep_a)

    response = rep.post(reverse("wechat:payorder_new", args=[contract.pk]),
                        {"instalment": first_instalment(contract).pk})

    order = PayOrder.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("wechat:payorder_detail", args=[order.pk])
    page = rep.get(response["Location"]).content.decode()
    assert '<svg class="qr" role="img"' in page
    assert order.code_url in page
    assert "¥800.01" in page
    assert 'hx-trigger="every 3s"' in page
    assert reverse("wechat:payorder_status", args=[order.pk]) in page
    phone = rep.get(reverse("wechat:payorder_show", args=[order.pk])).content.decode()
    assert '<svg class="qr" role="img"' in phone and "¥800.01" in phone
    assert contract.customer.name not in phone  # turned to the customer: only the amount
    # and the contract page now links to the open code instead of making another
    detail = rep.get(reverse("pipeline:contract_detail", args=[contract.pk])).content.decode()
    assert reverse("wechat:payorder_detail", args=[order.pk]) in detail


def test_the_status_block_stops_polling_once_paid(company, contract, login, sandbox):
    rep = login(company.rep_a)
    order = pay.create_pay_order(actor=user_of(company.rep_a),
                                 instalment=first_instalment(contract))
    status_url = reverse("wechat:payorder_status", args=[order.pk])
    assert "every 3s" in rep.get(status_url).content.decode()

    sandbox.pay(order)
    inbox.drain()

    block = rep.get(status_url).content.decode()
    assert "已支付" in block and "every 3s" not in block
    assert "every 3s" not in rep.get(status_url, {"phone": "1"}).content.decode()


def test_a_rep_outside_the_scope_cannot_create_or_open_an_order(company, contract, login,
                                                                sandbox):
    order = pay.create_pay_order(actor=user_of(company.rep_a),
                                 instalment=first_instalment(contract))
    rep_b = login(company.rep_b)

    created = rep_b.post(reverse("wechat:payorder_new", args=[contract.pk]),
                         {"instalment": first_instalment(contract).pk})

    assert created.status_code == 404
    assert PayOrder.objects.count() == 1
    for name in ("payorder_detail", "payorder_status", "payorder_show"):
        assert rep_b.get(reverse(f"wechat:{name}", args=[order.pk])).status_code == 404
    assert login(company.manager_a).get(
        reverse("wechat:payorder_detail", args=[order.pk])).status_code == 200


def test_an_instalment_of_another_contract_is_refused_with_a_message(company, contract, login,
                                                                     sandbox):
    response = login(company.rep_a).post(reverse("wechat:payorder_new", args=[contract.pk]),
                                         {"instalment": "987654"}, follow=True)

    assert "请选择本合同的一期来收款。" in response.content.decode()
    assert PayOrder.objects.count() == 0


# --- The notification -----------------------------------------------------------------------
def test_a_payment_is_recorded_as_one_receipt_on_the_instalment(company, contract, sandbox):
    order = pay.create_pay_order(actor=user_of(company.rep_a),
                                 instalment=first_instalment(contract))

    transaction_id = sandbox.pay(order)
    inbox.drain()

    assert sandbox.posted == [204]
    receipt = Receipt.objects.get()
    assert (receipt.amount, receipt.method, receipt.reference, receipt.external_id) == (
        Decimal("800.01"), "wechat_pay", transaction_id, f"wxpay:{transaction_id}")
    assert receipt.instalment_id == first_instalment(contract).pk
    assert receipt.received_on == timezone.localdate()
    assert receipt.recorded_by_id is None
    order.refresh_from_db()
    assert (order.status, order.transaction_id, order.receipt_id) == (
        "paid", transaction_id, receipt.pk)
    assert order.paid_at is not None
    assert collected(contract) == (Decimal("800.01"), Decimal("800.01"), Decimal("800.01"))
    row = InboxMessage.objects.get(source="pay")
    assert (row.status, row.handler) == ("done", "pay:TRANSACTION.SUCCESS")
    assert DomainEvent.objects.filter(name="receipt.recorded").count() == 1
    assert DomainEvent.objects.filter(name="payorder.paid").count() == 1


@pytest.mark.django_db(transaction=True)
def test_sixteen_deliveries_two_at_once_make_exactly_one_receipt(company, contract, sandbox):
    # given: an open order; Tencent will post its notification twice at once
    order = pay.create_pay_order(actor=user_of(company.rep_a),
                                 instalment=first_instalment(contract))
    sandbox.api("/faults", {"duplicate_callbacks": {"copies": 2, "concurrent": True}})

    # when: the customer pays, then the same notification comes fourteen more times, a
    # later notification of the same transaction comes too, and the handler runs again
    transaction_id = sandbox.pay(order)
    sandbox.resign(14)
    sandbox.api("/simulate/pay_notify", {"out_trade_no": order.out_trade_no})
    inbox.drain()
    first = InboxMessage.objects.filter(source="pay").order_by("pk").first()
    pay.on_transaction_success(first, inbox.parse(first))  # as a replay would

    # then
    assert sandbox.posted == [204] * 17
    rows = list(InboxMessage.objects.filter(source="pay").order_by("pk"))
    assert [(r.deliveries, r.status) for r in rows] == [(16, "done"), (1, "done")]
    assert Receipt.objects.count() == 1
    assert Receipt.objects.get().external_id == f"wxpay:{transaction_id}"
    assert collected(contract) == (Decimal("800.01"), Decimal("800.01"), Decimal("800.01"))
    assert contract.outstanding == Decimal("800.01")
    assert first_instalment(contract).outstanding == Decimal("0.00")
    assert DomainEvent.objects.filter(name="receipt.recorded").count() == 1
    assert DomainEvent.objects.filter(name="payorder.paid").count() == 1
    assert SecurityEvent.objects.count() == 0


def _notification(order: PayOrder | None, private_pem: bytes, **changes: Any
                  ) -> tuple[bytes, dict[str, str]]:
    """A correctly signed and encrypted notification for `order`, with `changes` applied
    to the transaction."""
    resource = {
        "appid": OA_APP_ID, "mchid": PAY_MCH_ID,
        "out_trade_no": order.out_trade_no if order else "WY2026120100000099",
        "transaction_id": "4200000000" + uuid.uuid4().hex[:18], "trade_type": "NATIVE",
        "trade_state": "SUCCESS", "success_time": pay.rfc3339(timezone.now()),
        "payer": {"openid": "oPAYERsecret"},
        "amount": {"total": order.amount_fen if order else 100, "currency": "CNY"},
    }
    for key, value in changes.items():
        if key == "total":
            resource["amount"]["total"] = value
        else:
            resource[key] = value
    nonce = uuid.uuid4().hex[:12]
    body = json.dumps({
        "id": str(uuid.uuid4()), "create_time": pay.rfc3339(timezone.now()),
        "event_type": "TRANSACTION.SUCCESS", "resource_type": "encrypt-resource",
        "resource": {
            "algorithm": "AEAD_AES_256_GCM", "associated_data": "transaction", "nonce": nonce,
            "original_type": "transaction",
            "ciphertext": crypto.pay_encrypt_resource(
                PAY_APIV3_KEY, nonce=nonce, associated_data="transaction",
                plaintext=json.dumps(resource).encode()),
        },
    }).encode()
    ts, sign_nonce = str(int(time.time())), uuid.uuid4().hex
    return body, {
        "HTTP_WECHATPAY_SERIAL": PAY_PUBLIC_KEY_ID, "HTTP_WECHATPAY_TIMESTAMP": ts,
        "HTTP_WECHATPAY_NONCE": sign_nonce,
        "HTTP_WECHATPAY_SIGNATURE": crypto.pay_sign(private_pem,
                                                    crypto.pay_message(ts, sign_nonce, body)),
    }


@pytest.mark.django_db(transaction=True)
def test_two_distinct_notifications_of_one_transaction_at_once_make_one_receipt(
        company, contract, sandbox, pay_keys):
    order = pay.create_pay_order(actor=user_of(company.rep_a),
                                 instalment=first_instalment(contract))
    transaction_id = "4200000000" + uuid.uuid4().hex[:18]
    posts = [_notification(order, pay_keys["platform_private"], transaction_id=transaction_id)
             for _ in range(2)]
    barrier = threading.Barrier(2)
    statuses: list[int] = []

    def deliver(body: bytes, headers: dict[str, str]) -> None:
        try:
            barrier.wait()
            statuses.append(Client().post("/wechat/pay/notify", body,
                                          content_type="application/json",
                                          **headers).status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=deliver, args=post) for post in posts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    inbox.drain()

    assert statuses == [204, 204]
    assert [r.status for r in InboxMessage.objects.filter(source="pay")] == ["done", "done"]
    assert Receipt.objects.get().external_id == f"wxpay:{transaction_id}"
    assert collected(contract) == (Decimal("800.01"), Decimal("800.01"), Decimal("800.01"))
    assert SecurityEvent.objects.count() == 0


@pytest.mark.parametrize(("case", "changes", "field"), [
    ("wrong mchid", {"mchid": "1900000999"}, "mchid"),
    ("wrong appid", {"appid": "wx0000000000000000"}, "appid"),
    ("unknown order", {"out_trade_no": "WY2026120100000099"}, "out_trade_no"),
    ("wrong amount", {"total": 80000}, "amount.total"),
    ("amount as a string", {"total": "80001"}, "amount.total"),
    ("not a success", {"trade_state": "NOTPAY"}, "trade_state"),
])
def test_a_mismatched_notification_records_nothing_and_is_logged(
        company, contract, sandbox, pay_keys, client, case, changes, field):
    order = pay.create_pay_order(actor=user_of(company.rep_a),
                                 instalment=first_instalment(contract))
    body, headers = _notification(order, pay_keys["platform_private"], **changes)

    response = client.post("/wechat/pay/notify", body, content_type="application/json",
                           **headers)
    inbox.drain()

    assert response.status_code == 204
    assert Receipt.objects.count() == 0
    order.refresh_from_db()
    assert (order.status, order.transaction_id, order.receipt_id) == ("open", None, None)
    assert collected(contract) == (Decimal("0.00"), Decimal("0.00"), Decimal("0.00"))
    event = SecurityEvent.objects.get()
    assert (event.source, event.reason) == ("pay", "mismatch")
    assert event.detail["fields"] == [field]
    assert event.detail["out_trade_no"] == changes.get("out_trade_no", order.out_trade_no)
    assert "oPAYERsecret" not in json.dumps(event.detail)
    row = InboxMessage.objects.get(source="pay")
    assert (row.status, row.handler, row.attempts) == ("done", "pay:TRANSACTION.SUCCESS", 1)


def test_a_refund_notification_is_acknowledged_and_kept(company, contract, sandbox, pay_keys,
                                                        client):
    order = pay.create_pay_order(actor=user_of(company.rep_a),
                                 instalment=first_instalment(contract))
    body, headers = _notification(order, pay_keys["platform_private"])
    body = body.replace(b'"TRANSACTION.SUCCESS"', b'"REFUND.SUCCESS"')
    ts, nonce = headers["HTTP_WECHATPAY_TIMESTAMP"], headers["HTTP_WECHATPAY_NONCE"]
    headers["HTTP_WECHATPAY_SIGNATURE"] = crypto.pay_sign(
        pay_keys["platform_private"], crypto.pay_message(ts, nonce, body))

    assert client.post("/wechat/pay/notify", body, content_type="application/json",
                       **headers).status_code == 204
    inbox.drain()

    row = InboxMessage.objects.get(source="pay")
    assert (row.kind, row.status) == ("pay:REFUND.SUCCESS", "ignored")
    assert Receipt.objects.count() == 0


def test_the_sandboxs_refund_notification_passes_verification_and_is_kept(
        company, contract, sandbox):
    order = pay.create_pay_order(actor=user_of(company.rep_a),
                                 instalment=first_instalment(contract))
    sandbox.pay(order)

    sandbox.api("/simulate/refund", {"out_trade_no": order.out_trade_no, "amount": 100})
    inbox.drain()

    assert sandbox.posted == [204, 204]
    row = InboxMessage.objects.get(kind="pay:REFUND.SUCCESS")
    assert row.status == "ignored"
    assert Receipt.objects.count() == 1  # the refund does not come off it yet (a limitation)


def test_money_for_a_cancelled_contract_marks_the_order_paid_without_a_receipt(
        company, contract, sandbox):
    order = pay.create_pay_order(actor=user_of(company.rep_a),
                                 instalment=first_instalment(contract))
    Contract.objects.filter(pk=contract.pk).update(status="cancelled")

    sandbox.pay(order)
    inbox.drain()

    order.refresh_from_db()
    assert (order.status, order.receipt_id) == ("paid", None)
    assert Receipt.objects.count() == 0
    event = SecurityEvent.objects.get()
    assert (event.reason, event.detail["code"]) == ("not_receivable", "invalid_transition")
    assert InboxMessage.objects.get(source="pay").status == "done"


def test_an_order_survives_a_new_collection_plan_and_its_payment_goes_to_the_contract(
        company, contract, sandbox):
    order = pay.create_pay_order(actor=user_of(company.rep_a),
                                 instalment=contract.instalments.get(seq=2))
    contract_services.plan_instalments(actor=user_of(company.rep_a), contract=contract,
                                       plan=[(timezone.localdate(), "1600.02")])
    order.refresh_from_db()
    assert (order.status, order.instalment_id) == ("open", None)

    sandbox.pay(order)
    inbox.drain()

    receipt = Receipt.objects.get()
    assert receipt.amount == Decimal("800.01")
    assert receipt.instalment_id == contract.instalments.get().pk
    contract.refresh_from_db()
    assert contract.collected == Decimal("800.01")


# --- Lost notifications and closed orders ---------------------------------------------------
def _age(order: PayOrder, minutes: int) -> None:
    PayOrder.objects.filter(pk=order.pk).update(
        created_at=timezone.now() - dt.timedelta(minutes=minutes))


def test_a_payment_whose_notification_never_comes_is_found_by_the_query_job(
        company, contract, sandbox):
    # given: the customer paid, but Tencent's notification was lost
    order = pay.create_pay_order(actor=user_of(company.rep_a),
                                 instalment=first_instalment(contract))
    sandbox.api("/faults", {"drop_pay_notifications": 1})
    transaction_id = sandbox.pay(order)
    assert sandbox.posted == []

    # when: the job runs, first while the order is young, then after five minutes
    assert pay.query_open_orders() == {}
    _age(order, 6)
    counts = pay.query_open_orders()

    # then
    assert counts == {"paid": 1}
    receipt = Receipt.objects.get()
    assert receipt.external_id == f"wxpay:{transaction_id}"
    order.refresh_from_db()
    assert (order.status, order.receipt_id) == ("paid", receipt.pk)
    assert collected(contract) == (Decimal("800.01"), Decimal("800.01"), Decimal("800.01"))
    # and a notification that turns up late changes nothing
    sandbox.api("/simulate/pay_notify", {"out_trade_no": order.out_trade_no})
    inbox.drain()
    assert Receipt.objects.count() == 1
    assert pay.query_open_orders() == {}


def test_an_order_is_queried_at_most_every_five_minutes(company, contract, sandbox):
    order = pay.create_pay_order(actor=user_of(company.rep_a),
                                 instalment=first_instalment(contract))
    _age(order, 6)

    assert pay.query_open_orders() == {"open": 1}
    assert pay.query_open_orders() == {}
    PayOrder.objects.filter(pk=order.pk).update(
        last_queried_at=timezone.now() - dt.timedelta(minutes=5, seconds=1))
    assert pay.query_open_orders() == {"open": 1}
    assert sandbox.state.calls[
        f"/pay/v3/pay/transactions/out-trade-no/{order.out_trade_no}"] == 2


def test_an_order_closed_at_tencent_or_expired_is_closed_here(company, contract, sandbox):
    closed_there = pay.create_pay_order(actor=user_of(company.rep_a),
                                        instalment=first_instalment(contract))
    expired = pay.create_pay_order(actor=user_of(company.rep_a),
                                   instalment=contract.instalments.get(seq=2))
    sandbox.api(f"/orders/{closed_there.out_trade_no}/close")
    _age(closed_there, 6)
    _age(expired, 130)
    PayOrder.objects.filter(pk=expired.pk).update(
        expires_at=timezone.now() - dt.timedelta(minutes=10))

    assert pay.query_open_orders() == {"closed": 2}

    assert set(PayOrder.objects.values_list("status", flat=True)) == {"closed"}
    assert DomainEvent.objects.filter(name="payorder.closed").count() == 2
    assert Receipt.objects.count() == 0
    # a closed order shows as such and offers a new code
    page = Client()
    page.force_login(user_of(company.rep_a))
    body = page.get(reverse("wechat:payorder_detail", args=[expired.pk])).content.decode()
    assert "此二维码已不能支付。" in body and "重新生成二维码" in body
    assert "every 3s" not in body


def test_an_order_still_being_paid_stays_open_and_a_failed_expired_one_closes(
        company, contract, sandbox):
    paying = pay.create_pay_order(actor=user_of(company.rep_a),
                                  instalment=first_instalment(contract))
    failed = pay.create_pay_order(actor=user_of(company.rep_a),
                                  instalment=contract.instalments.get(seq=2))
    sandbox.api(f"/orders/{paying.out_trade_no}/state", {"trade_state": "USERPAYING"})
    sandbox.api(f"/orders/{failed.out_trade_no}/state", {"trade_state": "PAYERROR"})
    _age(paying, 6)
    _age(failed, 130)
    PayOrder.objects.filter(pk=failed.pk).update(
        expires_at=timezone.now() - dt.timedelta(minutes=10))

    assert pay.query_open_orders() == {"open": 1, "closed": 1}

    assert dict(PayOrder.objects.values_list("pk", "status")) == {
        paying.pk: "open", failed.pk: "closed"}


def test_a_payment_after_the_order_was_closed_here_is_still_recorded(company, contract,
                                                                      sandbox):
    order = pay.create_pay_order(actor=user_of(company.rep_a),
                                 instalment=first_instalment(contract))
    pay.close_pay_order(actor=None, order=order, reason="expired")

    sandbox.pay(order)  # the customer paid in the last second
    inbox.drain()

    order.refresh_from_db()
    assert order.status == "paid"
    assert Receipt.objects.count() == 1


def test_a_rate_limit_stops_the_run_and_pauses_the_job(company, contract, sandbox):
    orders = [pay.create_pay_order(actor=user_of(company.rep_a), instalment=i)
              for i in contract.instalments.order_by("seq")]
    for order in orders:
        _age(order, 6)
    sandbox.api("/faults", {"rate_limit": {"count": 1, "path": "/pay/"}})

    assert pay.query_open_orders() == {"rate_limited": 1}
    assert pay.query_open_orders() == {"paused": 1}
    pay_cache_clear()
    assert pay.query_open_orders() == {"open": 1}  # the one not yet asked


def test_a_network_error_stops_the_run_and_pauses_the_job(company, contract, sandbox,
                                                          monkeypatch):
    order = pay.create_pay_order(actor=user_of(company.rep_a),
                                 instalment=first_instalment(contract))
    _age(order, 6)

    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    monkeypatch.setattr(client, "TRANSPORT", httpx.MockTransport(down))

    assert pay.query_open_orders() == {"network": 1}
    assert pay.query_open_orders() == {"paused": 1}
    order.refresh_from_db()
    assert order.status == "open"


def test_the_query_job_refuses_a_transaction_that_does_not_match(company, contract, sandbox):
    order = pay.create_pay_order(actor=user_of(company.rep_a),
                                 instalment=first_instalment(contract))
    sandbox.api("/faults", {"drop_pay_notifications": 1})
    sandbox.pay(order)
    sandbox.state.orders[order.out_trade_no].total = 1  # Tencent says one fen was paid
    _age(order, 6)

    assert pay.query_open_orders() == {"refused": 1}

    assert Receipt.objects.count() == 0
    event = SecurityEvent.objects.get()
    assert (event.reason, event.detail["fields"], event.detail["via"]) == (
        "mismatch", ["amount.total"], "query")


def test_the_periodic_task_runs_the_query(company, contract, sandbox):
    from weiying.wechat.tasks import query_pay_orders_task

    order = pay.create_pay_order(actor=user_of(company.rep_a),
                                 instalment=first_instalment(contract))
    sandbox.api("/faults", {"drop_pay_notifications": 1})
    sandbox.pay(order)
    _age(order, 6)

    query_pay_orders_task.call_local()

    assert Receipt.objects.count() == 1
