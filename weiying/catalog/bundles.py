"""Bundles: a product that has items. The finance layer allocates a bundle line's price over
its components by their standalone selling prices; this module only says what is inside."""

from __future__ import annotations

from decimal import Decimal

from weiying.catalog.models import BundleItem, Product


def components(product: Product) -> list[tuple[Product, Decimal]]:
    """(component, quantity per bundle) in the order they were added; empty for a product
    that is not a bundle."""
    items = BundleItem.objects.filter(bundle_id=product.pk).select_related("component")
    return [(item.component, item.quantity) for item in items.order_by("id")]


def is_bundle(product: Product) -> bool:
    return BundleItem.objects.filter(bundle_id=product.pk).exists()
