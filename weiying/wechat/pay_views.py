"""Pages for collecting an instalment by WeChat Pay: create the order from the contract page,
show its QR code (desk and phone), and poll its status until it is paid."""

from __future__ import annotations

import re

import qrcode
import qrcode.image.svg
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from weiying.core.errors import DomainError, NotFound, PermissionDenied
from weiying.pipeline.models import Contract, Instalment
from weiying.web.errors import domain_errors, scoped_or_404
from weiying.wechat import pay
from weiying.wechat.choices import PayOrderStatus
from weiying.wechat.models import PayOrder


def qr_svg(data: str) -> SafeString:
    """The QR code of `data` as inline SVG, drawn on the server (no script, no CDN)."""
    image = qrcode.make(data, image_factory=qrcode.image.svg.SvgPathImage, border=2,
                        error_correction=qrcode.constants.ERROR_CORRECT_M)
    svg = image.to_string(encoding="unicode")
    # Sized by the page's CSS instead of the library's millimetres.
    svg = re.sub(r'^<svg width="[^"]*" height="[^"]*"', '<svg class="qr" role="img"', svg)
    return mark_safe(svg)  # noqa: S308 - generated here from a URL, no user markup


def _order(request: HttpRequest, pk: int) -> PayOrder:
    return scoped_or_404(
        PayOrder.objects.select_related("contract", "contract__customer", "instalment",
                                        "receipt"),
        request.user, pk=pk)


def _context(request: HttpRequest, order: PayOrder) -> dict[str, object]:
    now = timezone.now()
    waiting = order.status == PayOrderStatus.OPEN and bool(order.code_url) and (
        order.expires_at is None or order.expires_at > now)
    contract = order.contract
    instalment = order.instalment
    may_retry = (
        order.status != PayOrderStatus.PAID and instalment is not None and pay.available()
        and contract.status in pay.COLLECTABLE
        and pay.collectable_amount(instalment, contract) > 0
        and pay.may_collect(request.user, contract)
    )
    return {
        "order": order, "contract": contract, "instalment": instalment,
        "waiting": waiting, "expired": order.status == PayOrderStatus.OPEN and not waiting,
        "qr": qr_svg(order.code_url) if waiting else "", "may_retry": may_retry,
    }


@login_required
@domain_errors
@require_POST
def payorder_new(request: HttpRequest, pk: int) -> HttpResponse:
    """Make (or reuse) the order of one instalment. `phone=1` comes from the phone pages:
    the order opens on its phone page, a refusal goes back to the phone contract page."""
    contract = scoped_or_404(Contract.objects.all(), request.user, pk=pk)
    phone = request.POST.get("phone") == "1"
    back = "mobile:contract_detail" if phone else "pipeline:contract_detail"
    raw = request.POST.get("instalment", "")
    instalment = (Instalment.objects.filter(contract=contract, pk=int(raw)).first()
                  if raw.isdigit() else None)
    if instalment is None:
        messages.error(request, _("Pick an instalment of this contract to collect."))
        return redirect(back, pk=contract.pk)
    try:
        order = pay.create_pay_order(actor=request.user, instalment=instalment)
    except (NotFound, PermissionDenied):
        raise
    except DomainError as exc:
        messages.error(request, str(exc.message))
        return redirect(back, pk=contract.pk)
    return redirect("wechat:payorder_show" if phone else "wechat:payorder_detail", pk=order.pk)


@login_required
@domain_errors
@require_GET
def payorder_detail(request: HttpRequest, pk: int) -> HttpResponse:
    order = _order(request, pk)
    return render(request, "wechat/pay/order_detail.html", _context(request, order))


@login_required
@domain_errors
@require_GET
def payorder_show(request: HttpRequest, pk: int) -> HttpResponse:
    """The phone page a rep turns towards the customer: the amount and the code, nothing
    else about the customer."""
    order = _order(request, pk)
    return render(request, "wechat/pay/order_show.html", _context(request, order))


@login_required
@domain_errors
@require_GET
def payorder_status(request: HttpRequest, pk: int) -> HttpResponse:
    """The status block, polled by HTMX every few seconds while the order is open; the
    block it returns for a paid or closed order polls no more."""
    order = _order(request, pk)
    template = ("wechat/pay/_status_phone.html" if request.GET.get("phone")
                else "wechat/pay/_status.html")
    return render(request, template, _context(request, order))
