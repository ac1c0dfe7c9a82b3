"""Desk pages of the catalogue: products with their SKUs, bundle items, stock per warehouse,
capacity per month and price list prices; price lists; stock. Every signed-in employee may
read them (reference data, like the product list of the API); changes need catalog.manage,
which the services check. Views parse and call services; every rule lives in them."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from weiying.catalog import services, stock_services
from weiying.catalog.models import (
    CapacityPeriod,
    Fulfilment,
    PriceList,
    PriceListItem,
    Product,
    Reservation,
    Sku,
    StockLevel,
    StockMovement,
    Warehouse,
)
from weiying.catalog.selectors import price_lists_for, product_detail, products_for
from weiying.catalog.stock import ReservationStatus
from weiying.core.errors import DomainError, NotFound, PermissionDenied
from weiying.core.permissions import PERMISSIONS, has_perm
from weiying.core.scope import data_scope_of, scoped
from weiying.org.choices import DataScope
from weiying.web.errors import domain_errors
from weiying.web.forms import show_error
from weiying.web.lists import list_page

MANAGE = services.MANAGE


def _can(request: HttpRequest) -> bool:
    return has_perm(request.user, MANAGE)


def _need_manage(request: HttpRequest) -> None:
    if not _can(request):
        raise PermissionDenied(
            _("Your role does not allow this (%(permission)s). Ask an administrator.")
            % {"permission": PERMISSIONS[MANAGE]})


def _readable(request: HttpRequest) -> None:
    if data_scope_of(request.user) == DataScope.NONE:
        raise PermissionDenied(_("Only employees may read the catalogue."))


def _run(request: HttpRequest, call: Any, done: str) -> bool:
    """Run a service call from a POST; a refusal becomes a message. True when it worked."""
    try:
        call()
    except (PermissionDenied, NotFound):
        raise
    except DomainError as exc:
        messages.error(request, str(exc.message))
        return False
    messages.success(request, done)
    return True


# --- Forms ----------------------------------------------------------------------------------
class ProductForm(forms.Form):
    code = forms.CharField(max_length=32, label=gettext_lazy("Code"))
    name = forms.CharField(max_length=128, label=gettext_lazy("Name"))
    category = forms.CharField(max_length=64, required=False, label=gettext_lazy("Category"))
    unit = forms.CharField(max_length=16, required=False, label=gettext_lazy("Unit"))
    list_price = forms.CharField(label=gettext_lazy("List price (VAT incl.)"))
    vat_rate = forms.ChoiceField(label=gettext_lazy("VAT rate"), choices=[
        (str(r), f"{(r * 100).normalize():f}%") for r in services.VAT_RATES])
    standard_cost = forms.CharField(required=False, label=gettext_lazy("Standard cost (VAT excl.)"))
    standalone_price = forms.CharField(
        required=False, label=gettext_lazy("Standalone selling price (VAT incl.)"),
        help_text=gettext_lazy("Empty: the list price"))
    fulfilment = forms.ChoiceField(choices=Fulfilment.choices, label=gettext_lazy("Fulfilment"))
    service_months = forms.IntegerField(required=False, label=gettext_lazy("Service months"))
    lifecycle_days = forms.IntegerField(required=False,
                                        label=gettext_lazy("Repurchase cycle (days)"))


class PriceListForm(forms.Form):
    name = forms.CharField(max_length=128, label=gettext_lazy("Name"))
    channel = forms.CharField(max_length=64, required=False, label=gettext_lazy("Channel"),
                              help_text=gettext_lazy("A customer channel or source; empty for any."))
    customer_level = forms.ChoiceField(required=False, label=gettext_lazy("Customer level"),
                                       choices=[("", gettext_lazy("Any level")), ("A", "A"),
                                                ("B", "B"), ("C", "C")])
    valid_from = forms.DateField(label=gettext_lazy("Valid from"),
                                 widget=forms.DateInput(attrs={"type": "date"}))
    valid_until = forms.DateField(required=False, label=gettext_lazy("Valid until"),
                                  widget=forms.DateInput(attrs={"type": "date"}))
    priority = forms.IntegerField(initial=0, label=gettext_lazy("Priority"))
    is_active = forms.BooleanField(required=False, initial=True, label=gettext_lazy("In force"))


# --- Products -------------------------------------------------------------------------------
PRODUCT_SORTS = {"code": ["code", "id"], "name": ["name", "id"]}


@login_required
@domain_errors
def product_list(request: HttpRequest) -> HttpResponse:
    _readable(request)
    active = {"1": True, "0": False}.get(request.GET.get("active", "1"))
    qs = products_for(request.user, active=active, search=request.GET.get("q", "").strip(),
                      category=request.GET.get("category", "").strip())
    state = list_page(request, qs, sorts=PRODUCT_SORTS, default="code")
    categories = (Product.objects.exclude(category="").order_by("category")
                  .values_list("category", flat=True).distinct())
    return render(request, "catalog/product_list.html", {
        "state": state, "categories": list(categories[:200]),
        "active": request.GET.get("active", "1"), "can_manage": _can(request),
        "next_url": state.with_params(after=state.page.next_cursor),
        "first_url": state.with_params(after=""),
    })


def _product_form_page(request: HttpRequest, product: Product | None) -> HttpResponse:
    _need_manage(request)
    if request.method == "POST":
        form = ProductForm(request.POST)
        if form.is_valid():
            data = dict(form.cleaned_data)
            code = data.pop("code")
            try:
                if product is None:
                    product = services.create_product(actor=request.user, code=code, **data)
                    messages.success(request, _("Product %(code)s created.") % {"code": code})
                else:
                    services.update_product(actor=request.user, product=product, **data)
                    messages.success(request, _("Product saved."))
                return redirect("catalog:product_detail", pk=product.pk)
            except (PermissionDenied, NotFound):
                raise
            except DomainError as exc:
                show_error(form, exc)
    elif product is not None:
        form = ProductForm(initial={
            "code": product.code, "name": product.name, "category": product.category,
            "unit": product.unit, "list_price": product.list_price,
            "vat_rate": str(product.vat_rate.normalize()) if product.vat_rate else "0",
            "standard_cost": product.standard_cost, "standalone_price": product.standalone_price,
            "fulfilment": product.fulfilment, "service_months": product.service_months,
            "lifecycle_days": product.lifecycle_days,
        })
    else:
        form = ProductForm(initial={"vat_rate": "0.13", "unit": "件", "standard_cost": "0"})
    if product is not None:
        form.fields["code"].disabled = True
    return render(request, "catalog/product_form.html", {"form": form, "product": product})


@login_required
@domain_errors
def product_new(request: HttpRequest) -> HttpResponse:
    return _product_form_page(request, None)


@login_required
@domain_errors
def product_edit(request: HttpRequest, pk: int) -> HttpResponse:
    return _product_form_page(request, product_detail(request.user, pk))


def _months(today: dt.date, n: int = 6) -> list[tuple[int, int]]:
    out, y, m = [], today.year, today.month
    for _i in range(n):
        out.append((y, m))
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


@login_required
@domain_errors
def product_detail_page(request: HttpRequest, pk: int) -> HttpResponse:
    _readable(request)
    product = product_detail(request.user, pk)
    today = timezone.localdate()
    periods = {(p.year, p.month): p for p in CapacityPeriod.objects.filter(product=product)}
    months = [(y, m, periods.get((y, m))) for y, m in _months(today)]
    months += [(p.year, p.month, p) for key, p in sorted(periods.items())
               if key not in {(y, m) for y, m, _p in months} and key >= (today.year, today.month)]
    return render(request, "catalog/product_detail.html", {
        "product": product, "can_manage": _can(request), "today": today,
        "skus": product.skus.all(),
        "bundle_items": product.bundle_items.select_related("component"),
        "in_bundles": product.in_bundles.select_related("bundle"),
        "stock": StockLevel.objects.filter(product=product).select_related("warehouse"),
        "months": months, "uses_capacity": stock_services.uses_capacity(product),
        "prices": PriceListItem.objects.filter(product=product).select_related("price_list")
        .order_by("-price_list__valid_from", "price_list__name"),
        "components": Product.objects.filter(is_active=True).exclude(pk=product.pk)
        .exclude(bundle_items__isnull=False).order_by("code")[:500],
        "reservations": _open_reservations(request.user, product),
    })


def _open_reservations(user: Any, product: Product) -> list[Reservation]:
    """What signed contracts the reader may see still hold of the product (at most 50)."""
    from weiying.pipeline.models import Contract

    visible = scoped(Contract.objects.all(), user).values("pk")
    return list(
        Reservation.objects.filter(product=product, status=ReservationStatus.RESERVED,
                                   contract_line__contract__in=visible)
        .select_related("contract_line__contract", "stock__warehouse", "capacity")
        .order_by("-created_at", "-id")[:50])


@login_required
@require_POST
@domain_errors
def product_retire(request: HttpRequest, pk: int) -> HttpResponse:
    product = product_detail(request.user, pk)
    _run(request, lambda: services.retire_product(actor=request.user, product=product),
         _("Product %(code)s retired.") % {"code": product.code})
    return redirect("catalog:product_detail", pk=pk)


@login_required
@require_POST
@domain_errors
def sku_add(request: HttpRequest, pk: int) -> HttpResponse:
    product = product_detail(request.user, pk)
    post = request.POST
    _run(request, lambda: services.create_sku(
        actor=request.user, product=product, code=post.get("code", ""),
        name=post.get("name", ""), list_price=post.get("list_price") or None,
        standard_cost=post.get("standard_cost") or None), _("SKU added."))
    return redirect("catalog:product_detail", pk=pk)


@login_required
@require_POST
@domain_errors
def sku_retire(request: HttpRequest, pk: int) -> HttpResponse:
    sku = Sku.objects.filter(pk=pk).first()
    if sku is None:
        raise Http404
    _readable(request)
    _run(request, lambda: services.retire_sku(actor=request.user, sku=sku), _("SKU retired."))
    return redirect("catalog:product_detail", pk=sku.product_id)


def _product_from(request: HttpRequest, name: str) -> Product | None:
    raw = request.POST.get(name, "")
    return Product.objects.filter(pk=int(raw)).first() if raw.isdigit() else None


@login_required
@require_POST
@domain_errors
def bundle_item_set(request: HttpRequest, pk: int) -> HttpResponse:
    bundle = product_detail(request.user, pk)
    component = _product_from(request, "component")
    if component is None:
        messages.error(request, _("Pick the product to put into the bundle."))
    else:
        _run(request, lambda: services.set_bundle_item(
            actor=request.user, bundle=bundle, component=component,
            quantity=request.POST.get("quantity", "")), _("Bundle saved."))
    return redirect("catalog:product_detail", pk=pk)


@login_required
@require_POST
@domain_errors
def bundle_item_remove(request: HttpRequest, pk: int) -> HttpResponse:
    bundle = product_detail(request.user, pk)
    component = _product_from(request, "component")
    if component is not None:
        _run(request, lambda: services.remove_bundle_item(
            actor=request.user, bundle=bundle, component=component), _("Bundle saved."))
    return redirect("catalog:product_detail", pk=pk)


@login_required
@require_POST
@domain_errors
def capacity_set(request: HttpRequest, pk: int) -> HttpResponse:
    product = product_detail(request.user, pk)
    post = request.POST
    _run(request, lambda: stock_services.set_capacity(
        actor=request.user, product=product, year=post.get("year"), month=post.get("month"),
        capacity=post.get("capacity", "")), _("Capacity saved."))
    return redirect("catalog:product_detail", pk=pk)


# --- Price lists ----------------------------------------------------------------------------
@login_required
@domain_errors
def pricelist_list(request: HttpRequest) -> HttpResponse:
    _readable(request)
    qs = price_lists_for(request.user)
    today = timezone.localdate()
    if request.GET.get("current") == "1":
        qs = qs.filter(is_active=True, valid_from__lte=today).filter(
            Q(valid_until__isnull=True) | Q(valid_until__gte=today))
    state = list_page(request, qs, sorts={"-from": ["-valid_from", "-id"]}, default="-from")
    return render(request, "catalog/pricelist_list.html", {
        "state": state, "today": today, "can_manage": _can(request),
        "next_url": state.with_params(after=state.page.next_cursor),
        "first_url": state.with_params(after=""),
    })


def _price_list(request: HttpRequest, pk: int) -> PriceList:
    _readable(request)
    found = price_lists_for(request.user).filter(pk=pk).first()
    if found is None:
        raise NotFound()
    return found


def _pricelist_form_page(request: HttpRequest, price_list: PriceList | None) -> HttpResponse:
    _need_manage(request)
    if request.method == "POST":
        form = PriceListForm(request.POST)
        if form.is_valid():
            try:
                if price_list is None:
                    price_list = services.create_price_list(actor=request.user,
                                                            **form.cleaned_data)
                    messages.success(request, _("Price list created."))
                else:
                    services.update_price_list(actor=request.user, price_list=price_list,
                                               **form.cleaned_data)
                    messages.success(request, _("Price list saved."))
                return redirect("catalog:pricelist_detail", pk=price_list.pk)
            except (PermissionDenied, NotFound):
                raise
            except DomainError as exc:
                show_error(form, exc)
    elif price_list is not None:
        form = PriceListForm(initial={f: getattr(price_list, f) for f in (
            "name", "channel", "customer_level", "valid_from", "valid_until", "priority",
            "is_active")})
    else:
        form = PriceListForm(initial={"valid_from": timezone.localdate(), "is_active": True})
    return render(request, "catalog/pricelist_form.html",
                  {"form": form, "price_list": price_list})


@login_required
@domain_errors
def pricelist_new(request: HttpRequest) -> HttpResponse:
    return _pricelist_form_page(request, None)


@login_required
@domain_errors
def pricelist_edit(request: HttpRequest, pk: int) -> HttpResponse:
    return _pricelist_form_page(request, _price_list(request, pk))


@login_required
@domain_errors
def pricelist_detail(request: HttpRequest, pk: int) -> HttpResponse:
    price_list = _price_list(request, pk)
    return render(request, "catalog/pricelist_detail.html", {
        "price_list": price_list, "can_manage": _can(request),
        "items": price_list.items.select_related("product").order_by("product__code"),
        "products": Product.objects.filter(is_active=True).order_by("code")[:500],
    })


@login_required
@require_POST
@domain_errors
def pricelist_item_set(request: HttpRequest, pk: int) -> HttpResponse:
    price_list = _price_list(request, pk)
    product = _product_from(request, "product")
    if product is None:
        messages.error(request, _("Pick the product to price."))
    else:
        _run(request, lambda: services.set_price_list_item(
            actor=request.user, price_list=price_list, product=product,
            price=request.POST.get("price", "")), _("Price saved."))
    return redirect("catalog:pricelist_detail", pk=pk)


@login_required
@require_POST
@domain_errors
def pricelist_item_remove(request: HttpRequest, pk: int) -> HttpResponse:
    price_list = _price_list(request, pk)
    product = _product_from(request, "product")
    if product is not None:
        _run(request, lambda: services.remove_price_list_item(
            actor=request.user, price_list=price_list, product=product), _("Price removed."))
    return redirect("catalog:pricelist_detail", pk=pk)


# --- Stock ----------------------------------------------------------------------------------
@login_required
@domain_errors
def stock(request: HttpRequest) -> HttpResponse:
    _readable(request)
    qs = StockLevel.objects.select_related("warehouse", "product")
    warehouse = request.GET.get("warehouse", "")
    if warehouse.isdigit():
        qs = qs.filter(warehouse_id=int(warehouse))
    search = request.GET.get("q", "").strip()
    if search:
        qs = qs.filter(Q(product__code__icontains=search) | Q(product__name__icontains=search))
    if request.GET.get("short") == "1":
        from django.db.models import F

        qs = qs.filter(reserved__gt=F("on_hand"))
    state = list_page(request, qs, sorts={"product": ["product__code", "warehouse__code", "id"]},
                      default="product")
    return render(request, "catalog/stock.html", {
        "state": state, "can_manage": _can(request),
        "warehouses": Warehouse.objects.all(), "warehouse": warehouse,
        "goods": Product.objects.filter(is_active=True, fulfilment=Fulfilment.GOODS)
        .order_by("code")[:500],
        "movements": StockMovement.objects.select_related("stock__warehouse", "stock__product",
                                                          "actor")[:20],
        "next_url": state.with_params(after=state.page.next_cursor),
        "first_url": state.with_params(after=""),
    })


@login_required
@require_POST
@domain_errors
def warehouse_new(request: HttpRequest) -> HttpResponse:
    _run(request, lambda: stock_services.create_warehouse(
        actor=request.user, code=request.POST.get("code", ""),
        name=request.POST.get("name", "")), _("Warehouse added."))
    return redirect("catalog:stock")


@login_required
@require_POST
@domain_errors
def stock_adjust(request: HttpRequest) -> HttpResponse:
    _need_manage(request)
    post = request.POST
    raw = post.get("warehouse", "")
    warehouse = Warehouse.objects.filter(pk=int(raw)).first() if raw.isdigit() else None
    product = _product_from(request, "product")
    if warehouse is None or product is None:
        messages.error(request, _("Pick a warehouse and a product."))
        return redirect("catalog:stock")
    if post.get("kind") == "count":
        _run(request, lambda: stock_services.count_stock(
            actor=request.user, warehouse=warehouse, product=product,
            on_hand=post.get("quantity", ""), note=post.get("note", "")), _("Stock counted."))
    else:
        _run(request, lambda: stock_services.receive_stock(
            actor=request.user, warehouse=warehouse, product=product,
            quantity=post.get("quantity", ""), note=post.get("note", "")),
            _("Goods received."))
    return redirect("catalog:stock")


urlpatterns = [
    path("", product_list, name="product_list"),
    path("products/new/", product_new, name="product_new"),
    path("products/<int:pk>/", product_detail_page, name="product_detail"),
    path("products/<int:pk>/edit/", product_edit, name="product_edit"),
    path("products/<int:pk>/retire/", product_retire, name="product_retire"),
    path("products/<int:pk>/skus/", sku_add, name="sku_add"),
    path("skus/<int:pk>/retire/", sku_retire, name="sku_retire"),
    path("products/<int:pk>/bundle/", bundle_item_set, name="bundle_item_set"),
    path("products/<int:pk>/bundle/remove/", bundle_item_remove, name="bundle_item_remove"),
    path("products/<int:pk>/capacity/", capacity_set, name="capacity_set"),
    path("price-lists/", pricelist_list, name="pricelist_list"),
    path("price-lists/new/", pricelist_new, name="pricelist_new"),
    path("price-lists/<int:pk>/", pricelist_detail, name="pricelist_detail"),
    path("price-lists/<int:pk>/edit/", pricelist_edit, name="pricelist_edit"),
    path("price-lists/<int:pk>/items/", pricelist_item_set, name="pricelist_item_set"),
    path("price-lists/<int:pk>/items/remove/", pricelist_item_remove,
         name="pricelist_item_remove"),
    path("stock/", stock, name="stock"),
    path("stock/warehouses/", warehouse_new, name="warehouse_new"),
    path("stock/adjust/", stock_adjust, name="stock_adjust"),
]
