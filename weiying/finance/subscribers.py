"""The finance layer listens to the spine and the operations layer; it never is imported by
them. Each handler is idempotent: it is keyed by its source and books nothing twice."""

from __future__ import annotations

from decimal import Decimal

from django.utils import timezone

from weiying.core.events import subscribe
from weiying.core.models import DomainEvent
from weiying.finance import services


@subscribe("contract.signed")
def obligations_on_signing(event: DomainEvent) -> None:
    services.post_contract_signed(int(event.subject_id))


@subscribe("receipt.recorded")
def book_receipt(event: DomainEvent) -> None:
    services.post_receipt(int(event.subject_id))


@subscribe("delivery.accepted")
def recognise_contract_acceptance(event: DomainEvent) -> None:
    """The whole contract accepted (签收/验收): every goods and milestone obligation left."""
    services.post_acceptance(int(event.data["contract_id"]),
                             key=f"contract:{event.data['contract_id']}:accepted",
                             accepted_on=event.data["accepted_on"])


@subscribe("delivery_order.accepted")
def recognise_delivery_order(event: DomainEvent) -> None:
    """Part of a contract accepted through a delivery order (交付单)."""
    quantities: dict[int, Decimal] = {}
    for line in event.data.get("lines", []):
        key = int(line["contract_line_id"])
        quantities[key] = quantities.get(key, Decimal(0)) + Decimal(str(line["quantity"]))
    services.post_acceptance(int(event.data["contract_id"]),
                             key=f"delivery_order:{event.data['order_id']}:accepted",
                             accepted_on=event.data["accepted_on"], quantities=quantities)


@subscribe("contract.cancelled")
def release_on_cancellation(event: DomainEvent) -> None:
    if not event.data.get("was_signed"):
        return  # a draft or an approved contract never made obligations
    services.post_cancellation(int(event.subject_id),
                               on=timezone.localdate(event.occurred_at))
