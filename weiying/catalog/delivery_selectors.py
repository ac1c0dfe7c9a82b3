"""Reads of delivery orders, always through the caller's data scope (the order's owner and
department are its contract's)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db.models import Prefetch, Q, QuerySet
from django.utils import timezone

from weiying.catalog.delivery import NOT_YET_DELIVERED, DeliveryLine, DeliveryOrder
from weiying.core.errors import NotFound
from weiying.core.scope import scoped


def late_q(today: dt.date) -> Q:
    """Past the promised day and not yet delivered."""
    return Q(promised_on__lt=today, status__in=NOT_YET_DELIVERED)


def delivery_orders_for(
    user: Any, *, status: str = "", late: bool = False, contract: int | None = None,
    owner: int | None = None, search: str = "", today: dt.date | None = None,
) -> QuerySet[DeliveryOrder]:
    qs = scoped(DeliveryOrder.objects.select_related("contract__customer", "owner",
                                                       "warehouse"), user)
    if status:
        qs = qs.filter(status=status)
    if late:
        qs = qs.filter(late_q(today or timezone.localdate()))
    if contract:
        qs = qs.filter(contract_id=contract)
    if owner:
        qs = qs.filter(owner_id=owner)
    if search:
        qs = qs.filter(Q(number__icontains=search) | Q(tracking_number__icontains=search)
                       | Q(contract__number__icontains=search)
                       | Q(contract__title__icontains=search))
    return qs


def _with_lines(qs: QuerySet[DeliveryOrder]) -> QuerySet[DeliveryOrder]:
    return qs.select_related("contract__customer", "owner", "created_by", "warehouse").prefetch_related(
        Prefetch("lines", DeliveryLine.objects.select_related("contract_line__product")
                 .order_by("contract_line_id")))


def delivery_order_detail(user: Any, pk: int) -> DeliveryOrder:
    order = _with_lines(scoped(DeliveryOrder.objects.filter(pk=pk), user)).first()
    if order is None:
        raise NotFound(_not_found())
    return order


def delivery_order_by_external(user: Any, external_id: str) -> DeliveryOrder:
    order = _with_lines(scoped(DeliveryOrder.objects.filter(external_id=external_id),
                               user)).first()
    if order is None:
        raise NotFound(_not_found())
    return order


def contract_delivery_orders(user: Any, contract_id: int) -> list[DeliveryOrder]:
    """A contract's orders, newest first, as the caller may see them."""
    return list(_with_lines(scoped(DeliveryOrder.objects.filter(contract_id=contract_id),
                                   user)).order_by("-created_at", "-pk"))


def _not_found() -> str:
    from django.utils.translation import gettext as _

    return _("This delivery order does not exist or is outside what you may see.")
