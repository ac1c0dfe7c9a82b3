import datetime as dt

import pytest
from django.utils import timezone

from tests.catalog import delivery_world as world
from weiying.catalog import delivery_services as svc
from weiying.catalog.models import DeliveryOrder
from weiying.catalog.tasks_delivery import announce_late_deliveries
from weiying.core.models import DomainEvent

pytestmark = pytest.mark.django_db

contract, goods, ops = world.contract, world.goods, world.ops
TODAY = timezone.localdate()
DAY = dt.timedelta(days=1)


def test_an_order_past_its_promised_day_is_announced_once(ops, contract, goods):
    box = world.line_of(contract, goods.box)
    late = svc.create_delivery_order(actor=ops, contract=contract, promised_on=TODAY - DAY,
                                     lines=[{"contract_line": box.pk, "quantity": "2"}])
    shipped_late = svc.create_delivery_order(actor=ops, contract=contract,
                                             promised_on=TODAY - 3 * DAY,
                                             lines=[{"contract_line": box.pk, "quantity": "2"}])
    svc.ship_delivery_order(actor=ops, order=shipped_late, shipped_on=TODAY - DAY)
    delivered = svc.create_delivery_order(actor=ops, contract=contract,
                                          promised_on=TODAY - 3 * DAY,
                                          lines=[{"contract_line": box.pk, "quantity": "2"}])
    svc.ship_delivery_order(actor=ops, order=delivered, shipped_on=TODAY - 2 * DAY)
    svc.mark_delivered(actor=ops, order=delivered, delivered_on=TODAY - DAY)
    svc.create_delivery_order(actor=ops, contract=contract, promised_on=TODAY,  # due today
                              lines=[{"contract_line": box.pk, "quantity": "2"}])

    first = announce_late_deliveries()
    second = announce_late_deliveries()

    assert first == {"late": 2, "announced": 2} and second == {"late": 2, "announced": 0}
    events = DomainEvent.objects.filter(name="delivery_order.late").order_by("subject_id")
    assert [e.subject_id for e in events] == [str(late.pk), str(shipped_late.pk)]
    data = events[0].data
    assert data == {
        "contract_id": contract.pk, "order_id": late.pk, "number": late.number,
        "warehouse_id": None, "promised_on": (TODAY - DAY).isoformat(),
        "owner_id": contract.owner_id,
        "lines": [{"contract_line_id": box.pk, "product_id": goods.box.pk,
                   "quantity": "2.000"}]}
    assert DeliveryOrder.objects.get(pk=late.pk).late_announced_at is not None
