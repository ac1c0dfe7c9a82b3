import datetime as dt

import pytest

from tests.catalog import delivery_world
from tests.conftest import user_of
from tests.wechat.push_world import (  # noqa: F401 - fixtures
    USERIDS,
    clock_fixture,
    fake_wecom_fixture,
    wecom_ids_fixture,
)
from weiying.catalog import delivery_services as svc
from weiying.catalog.tasks_delivery import announce_late_deliveries
from weiying.core.models import DomainEvent
from weiying.wechat import subscribers
from weiying.wechat.models import OutboxMessage

pytestmark = pytest.mark.django_db

goods = delivery_world.goods


def test_a_late_delivery_tells_the_owner_and_their_manager_once(
        wecom_ids, fake_wecom, clock, goods, django_capture_on_commit_callbacks):
    contract = delivery_world.signed(wecom_ids, goods, wecom_ids.rep_a)
    today = clock().date()
    order = svc.create_delivery_order(actor=user_of(wecom_ids.operations), contract=contract,
                                      promised_on=today - dt.timedelta(days=2))

    with django_capture_on_commit_callbacks(execute=True):
        announce_late_deliveries()
    with django_capture_on_commit_callbacks(execute=True):
        announce_late_deliveries()  # the next run: already announced
    subscribers.push_delivery_late(DomainEvent.objects.get(name="delivery_order.late"))

    sent = sorted(fake_wecom.sent, key=lambda body: body["touser"])
    assert [body["touser"] for body in sent] == sorted([USERIDS["rep_a"], USERIDS["manager_a"]])
    card = sent[0]["textcard"]
    assert card["title"] == f"交付延迟：{order.number}"
    assert card["url"] == f"http://127.0.0.1:8000/m/deliveries/{order.pk}/"
    assert contract.number in card["description"] and "计划中" in card["description"]
    assert OutboxMessage.objects.filter(kind="delivery_order.late").count() == 2


def test_an_order_delivered_since_is_not_pushed(wecom_ids, fake_wecom, clock, goods):
    contract = delivery_world.signed(wecom_ids, goods, wecom_ids.rep_a)
    ops = user_of(wecom_ids.operations)
    today = clock().date()
    order = svc.create_delivery_order(actor=ops, contract=contract,
                                      promised_on=today - dt.timedelta(days=2))
    announce_late_deliveries()
    svc.ship_delivery_order(actor=ops, order=order, shipped_on=today)
    svc.mark_delivered(actor=ops, order=order, delivered_on=today)

    subscribers.push_delivery_late(DomainEvent.objects.get(name="delivery_order.late"))

    assert not OutboxMessage.objects.filter(kind="delivery_order.late").exists()
