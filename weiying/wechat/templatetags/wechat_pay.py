"""`{% wechat_pay_collect instalment %}`: the "collect by WeChat Pay" button of one
instalment on the contract page (`phone=True` on the phone page: WeUI, and the order opens
on its phone page). The pipeline's template loads this library and knows nothing else of
WeChat; the tag renders nothing when WeChat Pay is not configured, when the instalment has
nothing due, or when the viewer may not collect."""

from __future__ import annotations

from typing import Any

from django import template
from django.utils import timezone

from weiying.pipeline.models import Instalment
from weiying.wechat import pay
from weiying.wechat.choices import PayOrderStatus
from weiying.wechat.models import PayOrder

register = template.Library()


def _open_orders(request: Any, contract_id: int) -> dict[int, PayOrder]:
    """The contract's open, unexpired orders by instalment: one query per page."""
    cache = getattr(request, "_wechat_pay_open", None)
    if cache is None:
        cache = request._wechat_pay_open = {}
    if contract_id not in cache:
        orders = PayOrder.objects.filter(
            contract_id=contract_id, status=PayOrderStatus.OPEN,
            expires_at__gt=timezone.now() + pay.REUSE_MARGIN,
        ).exclude(code_url="").order_by("created_at", "pk")
        cache[contract_id] = {o.instalment_id: o for o in orders}
    return cache[contract_id]


@register.inclusion_tag("wechat/pay/_collect.html", takes_context=True)
def wechat_pay_collect(context: template.Context, instalment: Instalment,
                       phone: bool = False) -> dict[str, Any]:
    request = context.get("request")
    if request is None or not pay.available():
        return {"show": False}
    contract = instalment.contract
    amount = pay.collectable_amount(instalment, contract)
    if contract.status not in pay.COLLECTABLE or amount <= 0:
        return {"show": False}
    if not pay.may_collect(request.user, contract):
        return {"show": False}
    order = _open_orders(request, contract.pk).get(instalment.pk)
    if order is not None and order.amount != amount:
        order = None
    return {"show": True, "instalment": instalment, "contract": contract, "open_order": order,
            "csrf_token": context.get("csrf_token"), "phone": phone}
