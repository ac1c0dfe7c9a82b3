"""`{% contract_deliveries contract %}`: a contract's delivery orders on its desk page, with
the button that makes a new one for people who may. The pipeline's page knows only the tag."""

from __future__ import annotations

from typing import Any

from django import template
from django.utils import timezone

from weiying.catalog import delivery_services
from weiying.catalog.delivery_selectors import contract_delivery_orders
from weiying.pipeline.choices import ContractStatus

register = template.Library()


@register.inclusion_tag("catalog/_contract_deliveries.html", takes_context=True)
def contract_deliveries(context: Any, contract: Any) -> dict[str, Any]:
    user = context["request"].user
    orders = contract_delivery_orders(user, contract.pk)
    today = timezone.localdate()
    for order in orders:
        order.late = order.is_late(today)
    can_create = (contract.status in (ContractStatus.SIGNED, ContractStatus.IN_DELIVERY)
                  and delivery_services.may_create(user, contract))
    return {"contract": contract, "orders": orders, "can_create": can_create}
