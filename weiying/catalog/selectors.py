"""Reads of the catalogue. Products are company-wide reference data, not owned rows, so they
carry no data-scope rule: every signed-in employee may read the list."""

from __future__ import annotations

from typing import Any

from django.db.models import Q, QuerySet

from weiying.catalog.models import Product
from weiying.core.errors import NotFound
from weiying.core.scope import data_scope_of
from weiying.org.choices import DataScope


def products_for(
    user: Any, *, active: bool | None = True, search: str = "", category: str = "",
) -> QuerySet[Product]:
    if data_scope_of(user) == DataScope.NONE:
        return Product.objects.none()
    qs = Product.objects.all()
    if active is not None:
        qs = qs.filter(is_active=active)
    if search:
        qs = qs.filter(Q(code__icontains=search) | Q(name__icontains=search))
    if category:
        qs = qs.filter(category=category)
    return qs


def product_detail(user: Any, pk: int) -> Product:
    product = products_for(user, active=None).filter(pk=pk).first()
    if product is None:
        raise NotFound()
    return product
