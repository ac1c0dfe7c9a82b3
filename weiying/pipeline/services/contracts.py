"""Contracts (orders): priced lines, the approval and delivery state machine, the collection
plan (回款计划) and receipts (回款).

Every transition is one row of TRANSITIONS: the states it starts from, the state it leads to,
the permission it needs, the inputs it needs and an extra guard. `allowed_actions` reads the
same table, so the buttons a page shows are exactly the calls the service will accept.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Max, Model, Q, Sum, Value
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from weiying.catalog.models import Product, Sku
from weiying.catalog.selectors import line_price
from weiying.catalog.services import check_vat_rate
from weiying.core import audit
from weiying.core.errors import (
    Conflict,
    DomainError,
    InvalidTransition,
    NotFound,
    PermissionDenied,
    ValidationFailed,
)
from weiying.core.events import emit
from weiying.core.money import ZERO, format_cny, money, split_vat, to_decimal
from weiying.core.permissions import employee_of, has_perm, require
from weiying.core.scope import scoped, visible_employees
from weiying.customers.choices import FollowStatus
from weiying.customers.models import Customer
from weiying.pipeline.choices import ContractStatus, PaymentMethod
from weiying.pipeline.models import Contract, ContractLine, Instalment, Opportunity, Receipt

logger = logging.getLogger(__name__)

S = ContractStatus
# Statuses in which a contract counts as sold (signed value, receivables).
SOLD_STATUSES = (S.SIGNED, S.IN_DELIVERY, S.COMPLETED)
QUANTUM_QTY = Decimal("0.001")
QUANTUM_RATE = Decimal("0.0001")


# --- Numbers --------------------------------------------------------------------------------
def next_number(model: type[Model], prefix: str, *, today: dt.date | None = None) -> str:
    """prefix + yyyymm + a 6-digit sequence that restarts every month, e.g. HT202607000012."""
    stem = f"{prefix}{(today or timezone.localdate()):%Y%m}"
    last = model.objects.filter(number__startswith=stem).aggregate(m=Max("number"))["m"]
    seq = int(last[len(stem):]) + 1 if last else 1
    return f"{stem}{seq:06d}"


def create_numbered(model: type[Model], prefix: str, **fields: Any) -> Any:
    """Create a row with the next number; two writers racing for one number retry."""
    for attempt in range(5):
        number = next_number(model, prefix)
        try:
            with transaction.atomic():
                return model.objects.create(number=number, **fields)
        except IntegrityError:
            if attempt == 4 or not model.objects.filter(number=number).exists():
                raise
            logger.warning("number taken, retrying", extra={"number": number})
    raise AssertionError("unreachable")


# --- Lines ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class PricedLine:
    """A validated line with its amounts: amount = money(qty × price × (1 − discount))."""

    product: Product
    description: str
    quantity: Decimal
    unit_price: Decimal
    discount: Decimal
    vat_rate: Decimal
    amount: Decimal
    net: Decimal
    vat: Decimal
    sku: Sku | None = None


def _number(value: Any, field: str, message: str) -> Decimal:
    try:
        number = to_decimal(value)
    except (TypeError, ValueError):
        raise ValidationFailed(message, field=field) from None
    if not number.is_finite():
        raise ValidationFailed(message, field=field)
    return number


def price_line(
    *, product: Product | int, quantity: Any, unit_price: Any = None, discount: Any = "0",
    vat_rate: Any = None, description: str = "", index: int = 0, customer: Any = None,
    sku: Any = None,
) -> PricedLine:
    """Validate one line and compute its amounts. `index` (0-based) names it in messages.
    Without a unit price the line takes the customer's price list price, else the SKU's
    list price, else the product's (catalog.selectors.line_price). `sku` (a SKU of the
    product, or its id) is optional."""
    n = {"n": index + 1}
    prefix = f"lines.{index}."
    if not isinstance(product, Product):
        found = Product.objects.filter(pk=product).first() if product else None
        if found is None:
            raise ValidationFailed(_("Line %(n)s: pick a product from the catalogue.") % n,
                                   field=prefix + "product")
        product = found
    quantity = _number(quantity, prefix + "quantity",
                       _("Line %(n)s: the quantity must be a number above zero.") % n)
    if quantity <= 0 or quantity != quantity.quantize(QUANTUM_QTY):
        raise ValidationFailed(
            _("Line %(n)s: the quantity must be a number above zero.") % n,
            field=prefix + "quantity",
        )
    if sku in (None, ""):
        sku = None
    elif not isinstance(sku, Sku) or sku.product_id != product.pk:
        found_sku = Sku.objects.filter(pk=getattr(sku, "pk", sku), product_id=product.pk).first()
        if found_sku is None:
            raise ValidationFailed(
                _("Line %(n)s: this SKU is not one of %(code)s's; pick one of its SKUs or none.")
                % {**n, "code": product.code}, code="sku_mismatch", field=prefix + "sku")
        sku = found_sku
    if unit_price in (None, ""):
        price = line_price(product, customer, sku=sku)
    else:
        price = unit_price
    price = _number(price, prefix + "unit_price",
                    _("Line %(n)s: the unit price must be an amount of zero or more.") % n)
    if price < 0 or price != money(price):
        raise ValidationFailed(
            _("Line %(n)s: the unit price must be an amount of zero or more, in yuan and fen.")
            % n,
            field=prefix + "unit_price",
        )
    discount = _number(discount if discount not in (None, "") else "0", prefix + "discount",
                       _("Line %(n)s: the discount is a fraction from 0 to below 1.") % n)
    if not (0 <= discount < 1) or discount != discount.quantize(QUANTUM_RATE):
        raise ValidationFailed(
            _("Line %(n)s: the discount is a fraction from 0 to below 1 (0.15 = 15%% off).") % n,
            field=prefix + "discount",
        )
    rate = check_vat_rate(product.vat_rate if vat_rate in (None, "") else vat_rate,
                          field=prefix + "vat_rate")
    amount = money(quantity * price * (Decimal(1) - discount))
    net, vat = split_vat(amount, rate)
    return PricedLine(
        product=product, description=(description or "").strip()[:255], quantity=quantity,
        unit_price=price, discount=discount, vat_rate=rate, amount=amount, net=net, vat=vat,
        sku=sku,
    )


def price_lines(
    lines: Iterable[dict[str, Any]], *, new_only_active: bool = True, customer: Any = None,
) -> list[PricedLine]:
    """Validate every line; a retired product cannot go on a new line. Lines without a unit
    price take `customer`'s price list price."""
    priced = []
    for i, line in enumerate(lines):
        p = price_line(index=i, customer=customer, **line)
        if new_only_active and not p.product.is_active:
            raise ValidationFailed(
                _("Line %(n)s: product %(code)s is retired; pick another.")
                % {"n": i + 1, "code": p.product.code},
                code="product_retired", field=f"lines.{i}.product",
            )
        if new_only_active and p.sku is not None and not p.sku.is_active:
            raise ValidationFailed(
                _("Line %(n)s: SKU %(code)s is retired; pick another.")
                % {"n": i + 1, "code": p.sku.code},
                code="sku_retired", field=f"lines.{i}.sku",
            )
        priced.append(p)
    return priced


def totals(priced: list[PricedLine]) -> dict[str, Decimal]:
    """Sums of the rounded lines, never rounded again."""
    return {
        "total": sum((p.amount for p in priced), ZERO),
        "total_net": sum((p.net for p in priced), ZERO),
        "total_vat": sum((p.vat for p in priced), ZERO),
        "max_discount": max((p.discount for p in priced), default=Decimal(0)),
    }


def write_lines(priced: list[PricedLine], **parent: Any) -> None:
    """Replace the lines of a contract or a quote (`contract=…` or `quote=…`)."""
    ContractLine.objects.filter(**parent).delete()
    ContractLine.objects.bulk_create([
        ContractLine(
            product=p.product, description=p.description, quantity=p.quantity,
            unit_price=p.unit_price, discount=p.discount, vat_rate=p.vat_rate,
            amount=p.amount, net=p.net, vat=p.vat, sku=p.sku, **parent,
        )
        for p in priced
    ])


def line_dicts(lines: Iterable[ContractLine]) -> list[dict[str, Any]]:
    """Existing lines as input for `price_lines` (quote → contract, copying a contract)."""
    return [
        {"product": line.product, "quantity": line.quantity, "unit_price": line.unit_price,
         "discount": line.discount, "vat_rate": line.vat_rate, "description": line.description,
         "sku": line.sku_id}
        for line in lines
    ]


# --- Shared checks --------------------------------------------------------------------------
def visible_customer(actor: Any, customer: Customer) -> Customer:
    """The customer, if the actor may see it and it was not merged into another."""
    if actor is not None and not scoped(Customer.objects.filter(pk=customer.pk), actor).exists():
        raise NotFound(_("This customer is not among those you may see."))
    if customer.merged_into_id:
        raise ValidationFailed(
            _("This customer was merged into another record; use that one instead."),
            code="customer_merged", field="customer",
        )
    return customer


def owner_for(actor: Any, customer: Customer, owner: Any) -> Any:
    """The owner given (someone the actor may see), else the customer's, else the actor."""
    if owner is not None:
        if actor is not None and not visible_employees(actor).filter(pk=owner.pk).exists():
            raise ValidationFailed(
                _("You can only give a contract to someone in your own team."), field="owner"
            )
        return owner
    if customer.owner_id:
        return customer.owner
    return employee_of(actor) if actor is not None else None


def lock_contract(actor: Any, contract: Contract) -> Contract:
    """The contract re-read under a row lock; NotFound if it is outside the actor's scope."""
    if actor is not None and not scoped(
        Contract.objects.filter(pk=contract.pk), actor
    ).exists():
        raise NotFound(_("This contract does not exist or is outside what you may see."))
    return Contract.objects.select_for_update().get(pk=contract.pk)


def _day(value: Any, field: str) -> dt.date:
    if isinstance(value, dt.datetime):
        value = value.date()
    if isinstance(value, str) and value:
        try:
            value = dt.date.fromisoformat(value)
        except ValueError:
            value = None
    if not isinstance(value, dt.date):
        raise ValidationFailed(_("Give a date as YYYY-MM-DD."), code="date_required", field=field)
    return value


def _not_future(day: dt.date, field: str) -> dt.date:
    if day > timezone.localdate():
        raise ValidationFailed(
            _("%(date)s is in the future; record it on or after the day it happens.")
            % {"date": day.isoformat()},
            code="date_in_future", field=field,
        )
    return day


def _not_before(day: dt.date, earlier: dt.date | None, field: str, message: str) -> None:
    if earlier is not None and day < earlier:
        raise ValidationFailed(message % {"date": earlier.isoformat()}, code="date_order",
                               field=field)


def _reason(reason: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed(_("Give a reason, so the team knows why."),
                               code="reason_required", field="reason")
    return reason[:255]


def approval_threshold() -> Decimal:
    return Decimal(str(settings.WEIYING.get("DISCOUNT_APPROVAL_THRESHOLD", "0.10")))


def _state(contract: Contract) -> dict[str, Any]:
    return audit.snapshot(contract, [
        "status", "submitted_at", "approved_by", "approved_at", "rejection_reason",
        "cancel_reason", "signed_on", "delivered_on", "accepted_on", "completed_on",
    ]) or {}


# --- The state machine ----------------------------------------------------------------------
@dataclass(frozen=True)
class Transition:
    """One action on a contract: from which states, to which, who may, and what it needs."""

    action: str
    label: Any
    sources: tuple[str, ...]
    target: str
    permission: str
    needs: tuple[str, ...] = ()
    guard: Callable[[Any, Contract], None] | None = None


def _guard_has_lines(actor: Any, contract: Contract) -> None:
    if not contract.lines.exists():
        raise ValidationFailed(_("Add at least one line before submitting this contract."),
                               code="no_lines")


def _guard_not_own(actor: Any, contract: Contract) -> None:
    me = employee_of(actor) if actor is not None else None
    if me is not None and me.pk == contract.owner_id:
        raise PermissionDenied(
            _("You cannot approve your own contract; ask your manager to approve it."),
            code="self_approval",
        )


def _guard_not_accepted(actor: Any, contract: Contract) -> None:
    if contract.accepted_on is not None:
        raise InvalidTransition(
            _("Acceptance was already recorded on %(date)s; complete the contract next.")
            % {"date": contract.accepted_on.isoformat()}
        )


def _guard_accepted(actor: Any, contract: Contract) -> None:
    if contract.accepted_on is None:
        raise InvalidTransition(
            _("This contract is in delivery and the customer has not accepted it yet; "
              "record the acceptance before completing it.")
        )


def _guard_not_yet_accepted(actor: Any, contract: Contract) -> None:
    """Money received stays on a cancelled contract as a refund owed to the customer (the
    finance layer books it and its refund); what the customer accepted cannot be cancelled."""
    if contract.accepted_on is not None:
        raise InvalidTransition(
            _("The customer accepted this contract's delivery on %(date)s; it can no longer be "
              "cancelled. Complete it, or record a sales return with finance.")
            % {"date": contract.accepted_on.isoformat()}
        )


_OPEN = (S.DRAFT, S.PENDING_APPROVAL, S.APPROVED, S.SIGNED, S.IN_DELIVERY)
TRANSITIONS: dict[str, Transition] = {
    t.action: t
    for t in [
        # submit goes straight to approved when no discount exceeds the threshold.
        Transition("submit", gettext_lazy("Submit"), (S.DRAFT,), S.PENDING_APPROVAL,
                   "contract.edit", guard=_guard_has_lines),
        Transition("approve", gettext_lazy("Approve"), (S.PENDING_APPROVAL,), S.APPROVED,
                   "contract.approve", guard=_guard_not_own),
        Transition("reject", gettext_lazy("Reject"), (S.PENDING_APPROVAL,), S.DRAFT,
                   "contract.approve", needs=("reason",)),
        Transition("sign", gettext_lazy("Mark signed"), (S.APPROVED,), S.SIGNED,
                   "contract.sign", needs=("signed_on",)),
        Transition("deliver", gettext_lazy("Record delivery"), (S.SIGNED,), S.IN_DELIVERY,
                   "delivery.record", needs=("delivered_on",)),
        Transition("accept", gettext_lazy("Record acceptance"), (S.IN_DELIVERY,),
                   S.IN_DELIVERY, "delivery.record", needs=("accepted_on",),
                   guard=_guard_not_accepted),
        Transition("complete", gettext_lazy("Complete"), (S.IN_DELIVERY,), S.COMPLETED,
                   "delivery.record", guard=_guard_accepted),
        Transition("cancel", gettext_lazy("Cancel"), _OPEN, S.CANCELLED, "contract.sign",
                   needs=("reason",), guard=_guard_not_yet_accepted),
    ]
}

# What a contract in each state is waiting for: the second half of every refusal.
_NEXT_STEP = {
    S.DRAFT: gettext_lazy("This contract is a draft; submit it for approval first."),
    S.PENDING_APPROVAL: gettext_lazy(
        "This contract is pending approval; a manager must approve or reject it first."),
    S.APPROVED: gettext_lazy("This contract is approved; mark it signed first."),
    S.SIGNED: gettext_lazy("This contract is signed; record the delivery first."),
    S.IN_DELIVERY: gettext_lazy(
        "This contract is in delivery; record the acceptance, then complete it."),
    S.COMPLETED: gettext_lazy("This contract is completed; it can no longer change."),
    S.CANCELLED: gettext_lazy(
        "This contract is cancelled; it can no longer change. Start a new contract instead."),
}
# Refusals that read better said for the action itself.
_SPECIFIC = {
    ("sign", S.PENDING_APPROVAL): gettext_lazy(
        "This contract is pending approval; it can be signed once a manager approves it."),
    ("sign", S.DRAFT): gettext_lazy(
        "This contract is a draft; submit it and have it approved before signing."),
    ("submit", S.PENDING_APPROVAL): gettext_lazy(
        "This contract is already pending approval; wait for a manager to approve or reject "
        "it."),
    ("submit", S.APPROVED): gettext_lazy(
        "This contract is already approved; it can be signed now."),
    ("approve", S.APPROVED): gettext_lazy(
        "This contract is already approved; it can be signed now."),
    ("approve", S.DRAFT): gettext_lazy(
        "This contract is a draft; the owner must submit it before it can be approved."),
    ("reject", S.DRAFT): gettext_lazy(
        "This contract is a draft; the owner must submit it before it can be rejected."),
    ("cancel", S.COMPLETED): gettext_lazy(
        "This contract is completed; a completed contract cannot be cancelled."),
    ("cancel", S.CANCELLED): gettext_lazy("This contract is already cancelled."),
}


def refusal(action: str, contract: Contract) -> str:
    """The message for `action` refused because of the contract's state."""
    return str(_SPECIFIC.get((action, contract.status)) or _NEXT_STEP[contract.status])


def check_action(action: str, actor: Any, contract: Contract) -> Transition:
    """Raise the refusal `action` would meet on `contract` (permission, state, guard)."""
    transition = TRANSITIONS[action]
    if actor is not None:
        require(actor, transition.permission)
    if contract.status not in transition.sources:
        raise InvalidTransition(refusal(action, contract))
    if transition.guard is not None:
        transition.guard(actor, contract)
    return transition


def allowed_actions(user: Any, contract: Contract) -> list[str]:
    """The actions `user` may take on `contract` now, in table order. The caller has read
    the contract through the user's scope."""
    allowed = []
    for action in TRANSITIONS:
        try:
            check_action(action, user, contract)
        except DomainError:
            continue
        allowed.append(action)
    return allowed


def lines_editable(user: Any, contract: Contract) -> bool:
    return contract.status == S.DRAFT and has_perm(user, "contract.edit")


# --- Creating and editing -------------------------------------------------------------------
@transaction.atomic
def create_contract(
    *, actor: Any, customer: Customer, title: str, lines: Iterable[dict[str, Any]] = (),
    owner: Any = None, opportunity: Opportunity | None = None, quote: Any = None,
    start_on: dt.date | None = None, end_on: dt.date | None = None, note: str = "",
) -> Contract:
    """A draft contract with its lines priced. `lines` are dicts of product, quantity,
    unit_price (default the list price), discount (default 0), vat_rate (default the
    product's), description."""
    if actor is not None:
        require(actor, "contract.edit")
    visible_customer(actor, customer)
    title = (title or "").strip()
    if not title:
        raise ValidationFailed(_("A contract needs a title."), field="title")
    if opportunity is not None and opportunity.customer_id != customer.pk:
        raise ValidationFailed(_("This opportunity belongs to another customer."),
                               field="opportunity")
    if start_on and end_on and end_on < start_on:
        raise ValidationFailed(_("The contract cannot end before it starts."), field="end_on")
    owner = owner_for(actor, customer, owner)
    priced = price_lines(lines, customer=customer)
    contract = create_numbered(
        Contract, "HT", title=title[:128], customer=customer, opportunity=opportunity,
        quote=quote, owner=owner, department=owner.department if owner else None,
        start_on=start_on, end_on=end_on, note=note or "", created_at=timezone.now(),
        **totals(priced),
    )
    write_lines(priced, contract=contract)
    audit.record(actor, "contract.create", contract,
                 after={**(audit.snapshot(contract) or {}), "lines": len(priced)})
    return contract


_UNSET: Any = object()


@transaction.atomic
def update_contract(
    *, actor: Any, contract: Contract, title: str = _UNSET, lines: Any = _UNSET,
    start_on: Any = _UNSET, end_on: Any = _UNSET, note: str = _UNSET,
) -> Contract:
    """Edit a draft. A new total drops the collection plan, which must add up to it."""
    if actor is not None:
        require(actor, "contract.edit")
    contract = lock_contract(actor, contract)
    if contract.status != S.DRAFT:
        raise InvalidTransition(
            _("This contract is %(status)s; only a draft can be edited. A rejected contract "
              "comes back as a draft.") % {"status": str(contract.get_status_display()).lower()},
            code="contract_locked",
        )
    before = audit.snapshot(contract, ["title", "start_on", "end_on", "note", "total"])
    if title is not _UNSET:
        title = (title or "").strip()
        if not title:
            raise ValidationFailed(_("A contract needs a title."), field="title")
        contract.title = title[:128]
    if start_on is not _UNSET:
        contract.start_on = start_on
    if end_on is not _UNSET:
        contract.end_on = end_on
    if contract.start_on and contract.end_on and contract.end_on < contract.start_on:
        raise ValidationFailed(_("The contract cannot end before it starts."), field="end_on")
    if note is not _UNSET:
        contract.note = note or ""
    dropped_plan = False
    if lines is not _UNSET:
        priced = price_lines(lines, customer=contract.customer)
        for name, value in totals(priced).items():
            setattr(contract, name, value)
        write_lines(priced, contract=contract)
        if contract.total != to_decimal(before["total"]) and contract.instalments.exists():
            contract.instalments.all().delete()
            dropped_plan = True
    contract.save()
    after = audit.snapshot(contract, ["title", "start_on", "end_on", "note", "total"])
    audit.record(actor, "contract.update", contract, before=before,
                 after={**(after or {}), "plan_dropped": dropped_plan})
    return contract


# --- Transitions ----------------------------------------------------------------------------
def _finish(actor: Any, action: str, contract: Contract, before: dict[str, Any],
            **extra: Any) -> None:
    contract.save()
    audit.record(actor, f"contract.{action}", contract, before=before,
                 after={**_state(contract), **extra})


@transaction.atomic
def submit_contract(*, actor: Any, contract: Contract) -> Contract:
    """Draft → pending approval, or straight to approved when no line's discount is above
    DISCOUNT_APPROVAL_THRESHOLD (approved_by stays empty: auto-approved)."""
    contract = lock_contract(actor, contract)
    check_action("submit", actor, contract)
    before = _state(contract)
    now = timezone.now()
    threshold = approval_threshold()
    auto = contract.max_discount <= threshold
    contract.submitted_at = now
    contract.rejection_reason = ""
    contract.status = S.APPROVED if auto else S.PENDING_APPROVAL
    contract.approved_by = None
    contract.approved_at = now if auto else None
    _finish(actor, "submit", contract, before, auto_approved=auto)
    emit("contract.submitted", contract, actor=actor, max_discount=contract.max_discount,
         threshold=threshold, auto_approved=auto, total=contract.total)
    if auto:
        emit("contract.approved", contract, actor=actor, auto_approved=True,
             total=contract.total)
    return contract


@transaction.atomic
def approve_contract(*, actor: Any, contract: Contract) -> Contract:
    contract = lock_contract(actor, contract)
    check_action("approve", actor, contract)
    before = _state(contract)
    contract.status = S.APPROVED
    contract.approved_by = employee_of(actor) if actor is not None else None
    contract.approved_at = timezone.now()
    _finish(actor, "approve", contract, before, auto_approved=False)
    emit("contract.approved", contract, actor=actor, auto_approved=False,
         approved_by=contract.approved_by_id, total=contract.total)
    return contract


@transaction.atomic
def reject_contract(*, actor: Any, contract: Contract, reason: str) -> Contract:
    contract = lock_contract(actor, contract)
    check_action("reject", actor, contract)
    reason = _reason(reason)
    before = _state(contract)
    contract.status = S.DRAFT
    contract.rejection_reason = reason
    _finish(actor, "reject", contract, before)
    emit("contract.rejected", contract, actor=actor, reason=reason)
    return contract


@transaction.atomic
def sign_contract(*, actor: Any, contract: Contract, signed_on: Any) -> Contract:
    """Approved → signed. Adds the total to the customer's signed value and marks the
    customer signed; last_purchase_at only moves forward."""
    contract = lock_contract(actor, contract)
    check_action("sign", actor, contract)
    signed_on = _not_future(_day(signed_on, "signed_on"), "signed_on")
    before = _state(contract)
    contract.status = S.SIGNED
    contract.signed_on = signed_on
    _finish(actor, "sign", contract, before)
    customers = Customer.objects.filter(pk=contract.customer_id)
    customers.update(total_signed=F("total_signed") + contract.total,
                     status=FollowStatus.SIGNED, last_activity_at=timezone.now())
    customers.filter(Q(last_purchase_at__isnull=True) | Q(last_purchase_at__lt=signed_on)
                     ).update(last_purchase_at=signed_on)
    emit("contract.signed", contract, actor=actor, customer_id=contract.customer_id,
         owner_id=contract.owner_id, signed_on=signed_on, total=contract.total,
         total_net=contract.total_net, total_vat=contract.total_vat)
    return contract


@transaction.atomic
def record_delivery(*, actor: Any, contract: Contract, delivered_on: Any) -> Contract:
    contract = lock_contract(actor, contract)
    check_action("deliver", actor, contract)
    delivered_on = _not_future(_day(delivered_on, "delivered_on"), "delivered_on")
    _not_before(delivered_on, contract.signed_on, "delivered_on",
                _("Delivery cannot be before the contract was signed (%(date)s)."))
    before = _state(contract)
    contract.status = S.IN_DELIVERY
    contract.delivered_on = delivered_on
    _finish(actor, "deliver", contract, before)
    emit("delivery.recorded", contract, actor=actor, contract_id=contract.pk,
         delivered_on=delivered_on)
    return contract


@transaction.atomic
def record_acceptance(*, actor: Any, contract: Contract, accepted_on: Any) -> Contract:
    """The customer accepted the delivery (签收/验收): the point where the finance layer
    recognises revenue, so the event carries the amounts and the lines."""
    contract = lock_contract(actor, contract)
    check_action("accept", actor, contract)
    accepted_on = _not_future(_day(accepted_on, "accepted_on"), "accepted_on")
    _not_before(accepted_on, contract.delivered_on, "accepted_on",
                _("Acceptance cannot be before the delivery (%(date)s)."))
    before = _state(contract)
    contract.accepted_on = accepted_on
    _finish(actor, "accept", contract, before)
    lines = [
        {"line_id": line.pk, "product_id": line.product_id, "amount": line.amount,
         "net": line.net, "vat": line.vat, "vat_rate": line.vat_rate}
        for line in contract.lines.order_by("pk")
    ]
    emit("delivery.accepted", contract, actor=actor, contract_id=contract.pk,
         customer_id=contract.customer_id, owner_id=contract.owner_id,
         accepted_on=accepted_on, total=contract.total, total_net=contract.total_net,
         total_vat=contract.total_vat, collected=contract.collected, lines=lines)
    return contract


@transaction.atomic
def complete_contract(*, actor: Any, contract: Contract,
                      completed_on: Any = None) -> Contract:
    contract = lock_contract(actor, contract)
    check_action("complete", actor, contract)
    completed_on = _not_future(
        _day(completed_on or timezone.localdate(), "completed_on"), "completed_on"
    )
    _not_before(completed_on, contract.accepted_on, "completed_on",
                _("Completion cannot be before the acceptance (%(date)s)."))
    before = _state(contract)
    contract.status = S.COMPLETED
    contract.completed_on = completed_on
    _finish(actor, "complete", contract, before)
    emit("contract.completed", contract, actor=actor, completed_on=completed_on,
         total=contract.total, collected=contract.collected)
    return contract


@transaction.atomic
def cancel_contract(*, actor: Any, contract: Contract, reason: str) -> Contract:
    """Any state before completed → cancelled. A signed contract's total leaves the
    customer's signed value again."""
    contract = lock_contract(actor, contract)
    check_action("cancel", actor, contract)
    reason = _reason(reason)
    was_sold = contract.status in SOLD_STATUSES
    before = _state(contract)
    contract.status = S.CANCELLED
    contract.cancel_reason = reason
    _finish(actor, "cancel", contract, before)
    if was_sold:
        last = Contract.objects.filter(
            customer_id=contract.customer_id, status__in=SOLD_STATUSES
        ).aggregate(m=Max("signed_on"))["m"]
        Customer.objects.filter(pk=contract.customer_id).update(
            total_signed=F("total_signed") - contract.total, last_purchase_at=last
        )
    emit("contract.cancelled", contract, actor=actor, reason=reason,
         was_signed=was_sold, total=contract.total)
    return contract


_RUNNERS: dict[str, Callable[..., Contract]] = {
    "submit": submit_contract, "approve": approve_contract, "reject": reject_contract,
    "sign": sign_contract, "deliver": record_delivery, "accept": record_acceptance,
    "complete": complete_contract, "cancel": cancel_contract,
}


def run_action(*, actor: Any, contract: Contract, action: str, **inputs: Any) -> Contract:
    """Run the transition named `action` with the inputs its table row needs (for views and
    the API, which take the action from the URL)."""
    if action not in TRANSITIONS:
        raise NotFound(_("There is no such action on a contract."))
    needed = {name: inputs.get(name) for name in TRANSITIONS[action].needs}
    if action == "complete" and inputs.get("completed_on"):
        needed["completed_on"] = inputs["completed_on"]
    return _RUNNERS[action](actor=actor, contract=contract, **needed)


# --- Collection plan and receipts -----------------------------------------------------------
def _amount(value: Any, field: str, message: str) -> Decimal:
    amount = _number(value, field, message)
    if amount <= 0 or amount != money(amount):
        raise ValidationFailed(message, code="invalid_amount", field=field)
    return amount


def _allocate(contract: Contract, amount: Decimal,
              first: Instalment | None = None) -> list[tuple[Instalment, Decimal]]:
    """Spread `amount` over open instalments: the one named first, then the oldest due.
    Returns (instalment, part) pairs; what no instalment can hold stays on the contract."""
    open_ones = list(
        contract.instalments.filter(collected__lt=F("amount")).order_by("due_on", "seq")
    )
    if first is not None:
        open_ones.sort(key=lambda i: i.pk != first.pk)
    parts = []
    remaining = amount
    for instalment in open_ones:
        if remaining <= 0:
            break
        part = min(remaining, instalment.outstanding)
        Instalment.objects.filter(pk=instalment.pk).update(collected=F("collected") + part)
        instalment.collected += part
        parts.append((instalment, part))
        remaining -= part
    return parts


@transaction.atomic
def plan_instalments(
    *, actor: Any, contract: Contract, plan: Iterable[tuple[Any, Any]]
) -> list[Instalment]:
    """Set the collection plan: (due_on, amount) pairs, each above zero. Instalments that
    already hold money stay as they are; the plan replaces the others, and together they
    must add up to the contract total exactly. Money received beyond what the kept
    instalments hold is then allocated to the new ones, oldest first."""
    if actor is not None:
        require(actor, "contract.edit")
    contract = lock_contract(actor, contract)
    if contract.status in (S.COMPLETED, S.CANCELLED):
        raise InvalidTransition(
            _("This contract is %(status)s; its collection plan can no longer change.")
            % {"status": str(contract.get_status_display()).lower()}
        )
    entries = []
    for i, pair in enumerate(plan):
        try:
            due_on, amount = pair
        except (TypeError, ValueError):
            raise ValidationFailed(_("Each instalment needs a due date and an amount."),
                                   field=f"plan.{i}") from None
        due_on = _day(due_on, f"plan.{i}.due_on")
        amount = _amount(amount, f"plan.{i}.amount",
                         _("Instalment %(n)s: the amount must be above zero, in yuan and fen.")
                         % {"n": i + 1})
        entries.append((due_on, amount))
    kept = list(contract.instalments.filter(
        Q(collected__gt=0) | Q(receipts__isnull=False)).distinct().order_by("seq"))
    if not entries and not kept:
        raise ValidationFailed(_("A collection plan needs at least one instalment."),
                               field="plan")
    kept_sum = sum((i.amount for i in kept), ZERO)
    planned = kept_sum + sum((a for _d, a in entries), ZERO)
    if planned != contract.total:
        message = _("The instalments add up to %(planned)s but the contract total is "
                    "%(total)s; make them equal.")
        if kept:
            message += " " + _("Instalments already collected on (%(kept)s) stay in the plan.")
        raise ValidationFailed(
            message % {"planned": format_cny(planned), "total": format_cny(contract.total),
                       "kept": format_cny(kept_sum)},
            code="plan_total_mismatch", field="plan",
        )
    before = [{"seq": i.seq, "due_on": i.due_on, "amount": i.amount, "collected": i.collected}
              for i in contract.instalments.order_by("seq")]
    contract.instalments.exclude(pk__in=[i.pk for i in kept]).delete()
    seq = max((i.seq for i in kept), default=0)
    created = []
    for due_on, amount in sorted(entries, key=lambda e: e[0]):
        seq += 1
        created.append(Instalment(contract=contract, seq=seq, due_on=due_on, amount=amount))
    Instalment.objects.bulk_create(created)
    held = contract.instalments.aggregate(s=Sum("collected"))["s"] or ZERO
    if contract.collected > held:
        _allocate(contract, contract.collected - held)
    instalments = list(contract.instalments.order_by("due_on", "seq"))
    audit.record(actor, "contract.plan_instalments", contract, before={"plan": before},
                 after={"plan": [{"seq": i.seq, "due_on": i.due_on, "amount": i.amount,
                                  "collected": i.collected} for i in instalments]})
    return instalments


def give_back_collected(*, contract: Contract, amount: Decimal) -> list[tuple[Instalment, Decimal]]:
    """Money given back (a refund the finance layer books): the contract's and the customer's
    collected figures drop by `amount`, and the instalments give it back newest first. The
    caller holds the contract's lock, has checked the amount and writes the audit row."""
    if amount <= 0 or amount > contract.collected:
        raise ValidationFailed(
            _("At most %(collected)s can be given back on this contract.")
            % {"collected": format_cny(contract.collected)},
            code="give_back_exceeds_collected", field="amount",
        )
    Contract.objects.filter(pk=contract.pk).update(collected=F("collected") - amount)
    contract.collected -= amount
    Customer.objects.filter(pk=contract.customer_id).update(
        total_collected=F("total_collected") - amount
    )
    parts = []
    remaining = amount
    for instalment in contract.instalments.filter(collected__gt=0).order_by("-due_on", "-seq"):
        if remaining <= 0:
            break
        part = min(remaining, instalment.collected)
        Instalment.objects.filter(pk=instalment.pk).update(collected=F("collected") - part)
        parts.append((instalment, part))
        remaining -= part
    return parts


@transaction.atomic
def record_receipt(
    *, actor: Any, contract: Contract, amount: Any, received_on: Any, method: str,
    reference: str = "", instalment: Instalment | None = None, external_id: str | None = None,
) -> Receipt:
    """Money received on a signed contract. A repeated `external_id` returns the receipt
    already recorded and changes nothing. The amount goes to `instalment` (if given) and then
    to the oldest open instalments; contract, instalments and the customer's collected value
    move in the same transaction, with conditional updates so two receipts racing cannot
    take a contract beyond its total."""
    if actor is not None:
        require(actor, "receipt.record")
    contract = lock_contract(actor, contract)
    external_id = (external_id or "").strip() or None
    if external_id:
        existing = Receipt.objects.filter(external_id=external_id).first()
        if existing is not None:
            if existing.contract_id != contract.pk:
                raise Conflict(
                    _("External id %(id)s was already used for a receipt on another contract.")
                    % {"id": external_id},
                    code="external_id_reused", field="external_id",
                )
            return existing
    if contract.status not in SOLD_STATUSES:
        if contract.status == S.CANCELLED:
            message = _("This contract is cancelled; it takes no receipts.")
        else:
            message = _("This contract is %(status)s; receipts can be recorded once it is "
                        "signed.") % {"status": str(contract.get_status_display()).lower()}
        raise InvalidTransition(message)
    amount = _amount(amount, "amount", _("The amount must be above zero, in yuan and fen."))
    received_on = _not_future(_day(received_on, "received_on"), "received_on")
    if method not in PaymentMethod.values:
        raise ValidationFailed(_("Pick how the money was paid."), code="invalid_method",
                               field="method")
    if instalment is not None and instalment.contract_id != contract.pk:
        raise ValidationFailed(_("This instalment belongs to another contract."),
                               code="instalment_mismatch", field="instalment")

    # 1. The receipt row first: a racing duplicate of external_id stops here.
    try:
        with transaction.atomic():
            receipt = Receipt.objects.create(
                contract=contract, instalment=instalment, amount=amount,
                received_on=received_on, method=method, reference=(reference or "")[:64],
                external_id=external_id,
                recorded_by=employee_of(actor) if actor is not None else None,
            )
    except IntegrityError:
        existing = Receipt.objects.filter(external_id=external_id).first()
        if existing is None or existing.contract_id != contract.pk:
            raise
        return existing
    # 2. The contract, only if the amount fits what is outstanding (else all rolls back).
    # Half a fen of slack: every amount here is whole fen, so on PostgreSQL this is exactly
    # "fits", and on SQLite (which compares decimals as floats) paying exactly what is
    # outstanding is not refused by a rounding error in the last bit.
    fits = Contract.objects.filter(
        pk=contract.pk, collected__lte=F("total") - amount + Value(Decimal("0.005"))
    ).update(collected=F("collected") + amount)
    if not fits:
        raise ValidationFailed(
            _("This receipt of %(amount)s is more than the %(outstanding)s still due on the "
              "contract; record at most that.")
            % {"amount": format_cny(amount), "outstanding": format_cny(contract.outstanding)},
            code="receipt_exceeds_due", field="amount",
        )
    # 3. The instalments, then the customer's value figure.
    parts = _allocate(contract, amount, first=instalment)
    if receipt.instalment_id is None and parts:
        receipt.instalment = parts[0][0]
        receipt.save(update_fields=["instalment"])
    Customer.objects.filter(pk=contract.customer_id).update(
        total_collected=F("total_collected") + amount
    )
    contract.collected += amount
    allocation = [{"instalment_id": i.pk, "seq": i.seq, "amount": part} for i, part in parts]
    audit.record(actor, "receipt.record", receipt,
                 after={**(audit.snapshot(receipt) or {}), "allocation": allocation})
    emit("receipt.recorded", receipt, actor=actor, contract_id=contract.pk,
         customer_id=contract.customer_id, owner_id=contract.owner_id, amount=amount,
         received_on=received_on, method=method, allocation=allocation,
         contract_collected=contract.collected, contract_total=contract.total)
    return receipt
