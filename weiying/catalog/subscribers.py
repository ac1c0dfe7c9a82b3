"""What the operations layer does when contracts and delivery orders change: stock and
capacity are reserved on signing, released on cancellation and issued on shipment. Each
handler is idempotent (weiying.catalog.stock_services), so a replayed event changes nothing."""

from __future__ import annotations

from weiying.catalog import stock_services
from weiying.core import events
from weiying.core.models import DomainEvent


def _contract(event: DomainEvent):  # type: ignore[no-untyped-def]
    from weiying.pipeline.models import Contract

    return Contract.objects.filter(pk=int(event.subject_id)).first()


@events.subscribe("contract.signed")
def reserve_on_signing(event: DomainEvent) -> None:
    contract = _contract(event)
    if contract is not None:
        stock_services.reserve_contract(contract)


@events.subscribe("contract.cancelled")
def release_on_cancellation(event: DomainEvent) -> None:
    contract = _contract(event)
    if contract is not None:
        stock_services.release_contract(contract)


@events.subscribe("delivery_order.shipped")
def issue_on_shipment(event: DomainEvent) -> None:
    data = event.data or {}
    stock_services.issue_shipment(
        order_id=data.get("order_id") or event.subject_id,
        warehouse_id=data.get("warehouse_id"), lines=data.get("lines") or [],
    )
