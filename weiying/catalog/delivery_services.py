"""Delivery orders (交付单): made from a signed contract, shipped, delivered and accepted by
the customer (签收 / 验收), or cancelled before acceptance.

Every change checks the permission, runs in one transaction, writes an audit row and emits a
`delivery_order.*` event whose data is exactly: contract_id, order_id, number, warehouse_id,
the date of the step and the lines ({contract_line_id, product_id, quantity}). The finance
layer recognises revenue from delivery_order.accepted, the stock layer issues stock on
delivery_order.shipped.

The contract moves with its orders: the first shipment of a signed contract records the
contract's delivery (→ in delivery), and once every goods and milestone line's sold quantity
is accepted the contract's acceptance is recorded with the last acceptance date. Both are
automatic consequences, so they run as the system (actor None) inside the same transaction.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import URLValidator
from django.db import transaction
from django.db.models import Max, Sum
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from weiying.catalog.delivery import (
    STATUS_ORDER,
    AcceptanceKind,
    DeliveryLine,
    DeliveryOrder,
    DeliveryStatus,
)
from weiying.catalog.models import Fulfilment, Warehouse
from weiying.core import audit
from weiying.core.errors import (
    Conflict,
    InvalidTransition,
    NotFound,
    PermissionDenied,
    ValidationFailed,
)
from weiying.core.events import emit
from weiying.core.money import to_decimal
from weiying.core.permissions import employee_of, has_perm, require
from weiying.core.scope import scoped
from weiying.pipeline.choices import ContractStatus
from weiying.pipeline.models import Contract, ContractLine
from weiying.pipeline.services import contracts as contract_services

logger = logging.getLogger(__name__)

S = DeliveryStatus
PERMISSION = "delivery.manage"
# Contracts that take delivery orders.
OPEN_CONTRACT = (ContractStatus.SIGNED, ContractStatus.IN_DELIVERY)
DELIVERABLE = (Fulfilment.GOODS, Fulfilment.MILESTONE)
QUANTUM = Decimal("0.001")
EVIDENCE_MAX_BYTES = 10 * 1024 * 1024
EVIDENCE_SUFFIXES = (".pdf", ".jpg", ".jpeg", ".png", ".webp", ".heic", ".gif", ".doc",
                     ".docx", ".xls", ".xlsx", ".txt")
_FIELDS = ["status", "promised_on", "shipped_on", "delivered_on", "accepted_on",
           "acceptance_kind", "evidence_note", "evidence_url", "carrier", "tracking_number",
           "warehouse", "cancel_reason"]
TRACKING = ("carrier", "tracking_number", "warehouse")


# --- What is left to deliver ----------------------------------------------------------------
@dataclass
class LineProgress:
    """One contract line: what was sold, what sits on live delivery orders, what was
    accepted, and what may still go on a new order."""

    line: ContractLine
    n: int
    deliverable: bool
    sold: Decimal
    ordered: Decimal
    accepted: Decimal

    @property
    def remaining(self) -> Decimal:
        return self.sold - self.ordered if self.deliverable else Decimal(0)


def line_progress(contract: Contract) -> list[LineProgress]:
    """Every line of the contract in order, with its quantities (two queries)."""
    lines = list(contract.lines.select_related("product").order_by("pk"))
    live = DeliveryLine.objects.filter(contract_line__contract=contract).exclude(
        order__status=S.CANCELLED)
    ordered = dict(live.values("contract_line").annotate(s=Sum("quantity"))
                   .values_list("contract_line", "s"))
    accepted = dict(live.filter(order__status=S.ACCEPTED).values("contract_line")
                    .annotate(s=Sum("quantity")).values_list("contract_line", "s"))
    return [
        LineProgress(line=line, n=i + 1, deliverable=line.product.fulfilment in DELIVERABLE,
                     sold=line.quantity, ordered=ordered.get(line.pk) or Decimal(0),
                     accepted=accepted.get(line.pk) or Decimal(0))
        for i, line in enumerate(lines)
    ]


def _qty(value: Decimal) -> str:
    """A quantity as people write it: 3, 2.5 (no trailing zeros)."""
    return f"{value.normalize():f}"


# --- Shared checks --------------------------------------------------------------------------
def may_create(user: Any, contract: Contract) -> bool:
    """Operations staff may make delivery orders for any contract they see; a rep for the
    contracts they own."""
    if has_perm(user, PERMISSION):
        return True
    me = employee_of(user)
    return me is not None and contract.owner_id == me.pk


def _require_create(actor: Any, contract: Contract) -> None:
    if actor is not None and not may_create(actor, contract):
        raise PermissionDenied(
            _("Only operations staff or the contract's owner can make delivery orders for "
              "it. Ask operations to do it."),
            code="forbidden",
        )


def _require(actor: Any) -> None:
    if actor is not None:
        require(actor, PERMISSION)


def _lock_contract(actor: Any, contract: Contract) -> Contract:
    if actor is not None and not scoped(Contract.objects.filter(pk=contract.pk),
                                        actor).exists():
        raise NotFound(_("This contract does not exist or is outside what you may see."))
    return Contract.objects.select_for_update().get(pk=contract.pk)


def _lock_order(actor: Any, order: DeliveryOrder) -> DeliveryOrder:
    """The order re-read under a row lock (its contract locked first, the order every path
    takes); NotFound outside the actor's scope."""
    if actor is not None and not scoped(DeliveryOrder.objects.filter(pk=order.pk),
                                        actor).exists():
        raise NotFound(_("This delivery order does not exist or is outside what you may see."))
    contract_id = DeliveryOrder.objects.values_list("contract_id", flat=True).get(pk=order.pk)
    Contract.objects.select_for_update().filter(pk=contract_id).first()
    return DeliveryOrder.objects.select_for_update().select_related("contract").get(pk=order.pk)


def _day(value: Any, field: str) -> dt.date:
    if isinstance(value, dt.datetime):
        value = value.date()
    if isinstance(value, str) and value:
        try:
            value = dt.date.fromisoformat(value)
        except ValueError:
            value = None
    if not isinstance(value, dt.date):
        raise ValidationFailed(_("Give a date as YYYY-MM-DD."), code="date_required",
                               field=field)
    return value


def _past_day(value: Any, field: str) -> dt.date:
    day = _day(value, field)
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


def _text(value: Any, limit: int) -> str:
    return (str(value) if value is not None else "").strip()[:limit]


def _warehouse(value: Any) -> Warehouse | None:
    """A warehouse (or its id, or its code) goods can ship from; None for none."""
    if value in (None, ""):
        return None
    if isinstance(value, Warehouse):
        found: Warehouse | None = value
    elif isinstance(value, int) or (isinstance(value, str) and value.isdigit()):
        found = Warehouse.objects.filter(pk=int(value)).first()
    else:
        found = Warehouse.objects.filter(code=str(value).strip()).first()
    if found is None or not found.is_active:
        raise ValidationFailed(_("Pick an active warehouse, or none."),
                               code="invalid_warehouse", field="warehouse")
    return found


def _state(order: DeliveryOrder) -> dict[str, Any]:
    return audit.snapshot(order, _FIELDS) or {}


def event_lines(order: DeliveryOrder) -> list[dict[str, Any]]:
    return [
        {"contract_line_id": line.contract_line_id,
         "product_id": line.contract_line.product_id, "quantity": line.quantity}
        for line in order.lines.select_related("contract_line").order_by("contract_line_id")
    ]


def _emit(name: str, order: DeliveryOrder, actor: Any, **dates: Any) -> None:
    emit(f"delivery_order.{name}", order, actor=actor, contract_id=order.contract_id,
         order_id=order.pk, number=order.number, warehouse_id=order.warehouse_id, **dates,
         lines=event_lines(order))


# --- The state machine ----------------------------------------------------------------------
@dataclass(frozen=True)
class Step:
    action: str
    label: Any
    sources: tuple[str, ...]
    target: str


STEPS: dict[str, Step] = {
    s.action: s
    for s in [
        Step("ship", gettext_lazy("Ship"), (S.PLANNED,), S.SHIPPED),
        Step("deliver", gettext_lazy("Mark delivered"), (S.SHIPPED,), S.DELIVERED),
        Step("accept", gettext_lazy("Record acceptance"), (S.DELIVERED,), S.ACCEPTED),
        Step("cancel", gettext_lazy("Cancel"), (S.PLANNED, S.SHIPPED, S.DELIVERED),
             S.CANCELLED),
    ]
}
_NEXT = {
    S.PLANNED: gettext_lazy("This delivery order is planned; ship it first."),
    S.SHIPPED: gettext_lazy("This delivery order is shipped; mark it delivered next."),
    S.DELIVERED: gettext_lazy(
        "This delivery order is delivered; record the customer's acceptance next."),
    S.ACCEPTED: gettext_lazy(
        "This delivery order was accepted by the customer; it can no longer change."),
    S.CANCELLED: gettext_lazy(
        "This delivery order is cancelled; it can no longer change. Make a new one instead."),
}
_SPECIFIC = {
    ("ship", S.SHIPPED): gettext_lazy("This delivery order was already shipped on %(date)s."),
    ("ship", S.DELIVERED): gettext_lazy("This delivery order was already shipped on %(date)s."),
    ("deliver", S.DELIVERED): gettext_lazy(
        "This delivery order was already delivered on %(date)s."),
    ("cancel", S.ACCEPTED): gettext_lazy(
        "This delivery order was accepted by the customer on %(date)s; an accepted delivery "
        "cannot be cancelled."),
    ("cancel", S.CANCELLED): gettext_lazy("This delivery order is already cancelled."),
}
_SPECIFIC_DATE = {("ship", S.SHIPPED): "shipped_on", ("ship", S.DELIVERED): "shipped_on",
                  ("deliver", S.DELIVERED): "delivered_on", ("cancel", S.ACCEPTED): "accepted_on"}


def _check_step(action: str, order: DeliveryOrder) -> Step:
    step = STEPS[action]
    if order.status not in step.sources:
        message = _SPECIFIC.get((action, order.status)) or _NEXT[order.status]
        date_field = _SPECIFIC_DATE.get((action, order.status))
        text = str(message)
        if date_field:
            day = getattr(order, date_field)
            text = text % {"date": day.isoformat() if day else "—"}
        raise InvalidTransition(text)
    return step


def allowed_actions(user: Any, order: DeliveryOrder) -> list[str]:
    """The steps `user` may take on `order` now (the caller read it through their scope)."""
    if not has_perm(user, PERMISSION):
        return []
    return [a for a, step in STEPS.items() if order.status in step.sources]


def _contract_takes_delivery(contract: Contract) -> None:
    if contract.status not in OPEN_CONTRACT:
        raise InvalidTransition(
            _("Contract %(number)s is %(status)s; delivery orders are for signed contracts "
              "and contracts in delivery.")
            % {"number": contract.number,
               "status": str(contract.get_status_display()).lower()},
            code="contract_not_open",
        )


# --- Creating -------------------------------------------------------------------------------
def _wanted_lines(contract: Contract, progress: list[LineProgress],
                  lines: Iterable[dict[str, Any]] | None) -> list[tuple[LineProgress, Decimal]]:
    """The (line, quantity) pairs of a new order, checked against what is left to deliver.
    No `lines` means everything still open on the contract's goods and milestone lines."""
    by_id = {p.line.pk: p for p in progress}
    if lines is None:
        chosen = [(p, p.remaining) for p in progress if p.deliverable and p.remaining > 0]
        if not chosen:
            raise ValidationFailed(
                _("Everything sold on contract %(number)s that can be delivered is already on "
                  "delivery orders.") % {"number": contract.number},
                code="nothing_to_deliver",
            )
        return chosen
    chosen = []
    seen: set[int] = set()
    for i, raw in enumerate(lines):
        field = f"lines.{i}"
        ref = raw.get("contract_line")
        line_id = ref.pk if isinstance(ref, ContractLine) else ref
        try:
            line_id = int(line_id)
        except (TypeError, ValueError):
            line_id = None
        p = by_id.get(line_id) if line_id is not None else None
        if p is None:
            raise ValidationFailed(
                _("Line %(n)s of the order is not a line of contract %(number)s; pick one of "
                  "its lines.") % {"n": i + 1, "number": contract.number},
                code="line_not_on_contract", field=field + ".contract_line",
            )
        if p.line.pk in seen:
            raise ValidationFailed(
                _("Contract line %(n)s (%(product)s) is named twice; give it once with the "
                  "whole quantity.") % {"n": p.n, "product": p.line.product.name},
                code="duplicate_line", field=field + ".contract_line",
            )
        seen.add(p.line.pk)
        if not p.deliverable:
            raise ValidationFailed(
                _("Contract line %(n)s (%(product)s) is a service; services are not shipped, "
                  "so they take no delivery order.")
                % {"n": p.n, "product": p.line.product.name},
                code="service_line", field=field + ".contract_line",
            )
        try:
            quantity = to_decimal(raw.get("quantity"))
        except (TypeError, ValueError):
            quantity = None
        if (quantity is None or not quantity.is_finite() or quantity <= 0
                or quantity != quantity.quantize(QUANTUM)):
            raise ValidationFailed(
                _("Contract line %(n)s (%(product)s): the quantity must be a number above "
                  "zero.") % {"n": p.n, "product": p.line.product.name},
                code="invalid_quantity", field=field + ".quantity",
            )
        if quantity > p.remaining:
            raise ValidationFailed(
                _("Contract line %(n)s (%(product)s): %(sold)s sold and %(ordered)s already on "
                  "delivery orders, so at most %(left)s more can be delivered, not "
                  "%(asked)s.")
                % {"n": p.n, "product": p.line.product.name, "sold": _qty(p.sold),
                   "ordered": _qty(p.ordered), "left": _qty(p.remaining),
                   "asked": _qty(quantity)},
                code="over_delivery", field=field + ".quantity",
            )
        chosen.append((p, quantity))
    if not chosen:
        raise ValidationFailed(_("A delivery order needs at least one line with a quantity."),
                               code="no_lines", field="lines")
    return chosen


@transaction.atomic
def create_delivery_order(
    *, actor: Any, contract: Contract, lines: Iterable[dict[str, Any]] | None = None,
    promised_on: Any = None, warehouse: Any = None, carrier: str = "", note: str = "",
    external_id: str | None = None,
) -> DeliveryOrder:
    """A planned order for some or all of what is left to deliver on a signed contract.
    `lines` are dicts of contract_line (a line or its id) and quantity; None takes every open
    quantity of the goods and milestone lines. (Limitation: an ERP/WMS names lines by contract
    line id; it cannot name them by product or SKU code.) A repeated `external_id` returns the order
    already made for it and changes nothing."""
    external_id = _text(external_id, 64) or None
    contract = _lock_contract(actor, contract)
    _require_create(actor, contract)
    if external_id:
        existing = DeliveryOrder.objects.filter(external_id=external_id).first()
        if existing is not None:
            if existing.contract_id != contract.pk:
                raise Conflict(
                    _("External id %(id)s is already used by delivery order %(number)s of "
                      "another contract.") % {"id": external_id, "number": existing.number},
                    code="external_id_reused", field="external_id",
                )
            return existing
    _contract_takes_delivery(contract)
    place = _warehouse(warehouse)
    chosen = _wanted_lines(contract, line_progress(contract),
                           None if lines is None else list(lines))
    promised = _day(promised_on, "promised_on") if promised_on not in (None, "") else None
    order = contract_services.create_numbered(
        DeliveryOrder, "DO", contract=contract, owner_id=contract.owner_id,
        department_id=contract.department_id, promised_on=promised,
        warehouse=place, carrier=_text(carrier, 64),
        note=_text(note, 2000), external_id=external_id,
        created_by=employee_of(actor) if actor is not None else None,
        created_at=timezone.now(),
    )
    DeliveryLine.objects.bulk_create([
        DeliveryLine(order=order, contract_line=p.line, quantity=quantity)
        for p, quantity in chosen
    ])
    audit.record(actor, "delivery_order.create", order, after={
        **_state(order), "contract": contract.pk, "external_id": external_id,
        "lines": [{"contract_line": p.line.pk, "quantity": q} for p, q in chosen]})
    _emit("created", order, actor, promised_on=promised)
    return order


# --- Transitions ----------------------------------------------------------------------------
def _finish(actor: Any, action: str, order: DeliveryOrder, before: dict[str, Any]) -> None:
    order.save()
    audit.record(actor, f"delivery_order.{action}", order, before=before, after=_state(order))


@transaction.atomic
def ship_delivery_order(
    *, actor: Any, order: DeliveryOrder, shipped_on: Any, carrier: str | None = None,
    tracking_number: str | None = None, warehouse: Any = None,
) -> DeliveryOrder:
    """Planned → shipped. The first shipment of a signed contract records its delivery."""
    _require(actor)
    order = _lock_order(actor, order)
    _check_step("ship", order)
    contract = order.contract
    _contract_takes_delivery(contract)
    shipped_on = _past_day(shipped_on, "shipped_on")
    _not_before(shipped_on, contract.signed_on, "shipped_on",
                _("A shipment cannot be before the contract was signed (%(date)s)."))
    before = _state(order)
    order.status = S.SHIPPED
    order.shipped_on = shipped_on
    for name, value in (("carrier", carrier), ("tracking_number", tracking_number)):
        if value is not None:
            setattr(order, name, _text(value, 64))
    if warehouse is not None:
        order.warehouse = _warehouse(warehouse)
    _finish(actor, "ship", order, before)
    _emit("shipped", order, actor, shipped_on=shipped_on)
    if contract.status == ContractStatus.SIGNED:
        contract_services.record_delivery(actor=None, contract=contract,
                                          delivered_on=shipped_on)
    return order


@transaction.atomic
def mark_delivered(*, actor: Any, order: DeliveryOrder, delivered_on: Any) -> DeliveryOrder:
    """Shipped → delivered: the goods reached the customer."""
    _require(actor)
    order = _lock_order(actor, order)
    _check_step("deliver", order)
    delivered_on = _past_day(delivered_on, "delivered_on")
    _not_before(delivered_on, order.shipped_on, "delivered_on",
                _("A delivery cannot be before the shipment (%(date)s)."))
    before = _state(order)
    order.status = S.DELIVERED
    order.delivered_on = delivered_on
    _finish(actor, "deliver", order, before)
    _emit("delivered", order, actor, delivered_on=delivered_on)
    return order


def _evidence_file(upload: Any) -> Any:
    if upload is None:
        return None
    name = Path(getattr(upload, "name", "") or "").name
    if not name.lower().endswith(EVIDENCE_SUFFIXES):
        raise ValidationFailed(
            _("The evidence file must be a PDF, a picture, an Office document or a text file."),
            code="invalid_file", field="evidence_file",
        )
    if (getattr(upload, "size", 0) or 0) > EVIDENCE_MAX_BYTES:
        raise ValidationFailed(_("The evidence file is larger than 10 MB; send a smaller one."),
                               code="file_too_large", field="evidence_file")
    return upload


def _evidence_url(value: Any) -> str:
    url = _text(value, 500)
    if not url:
        return ""
    try:
        URLValidator(schemes=["http", "https"])(url)
    except DjangoValidationError:
        raise ValidationFailed(_("The evidence link must be a web address (http or https)."),
                               code="invalid_url", field="evidence_url") from None
    return url


@transaction.atomic
def accept_delivery_order(
    *, actor: Any, order: DeliveryOrder, accepted_on: Any, kind: str, evidence_note: str = "",
    evidence_file: Any = None, evidence_url: str = "",
) -> DeliveryOrder:
    """Delivered → accepted (签收 receipt signed, or 验收 inspection passed), with what proves
    it. When this accepts the last open quantity of the contract's goods and milestone lines,
    the contract's acceptance is recorded with the latest acceptance date."""
    _require(actor)
    order = _lock_order(actor, order)
    _check_step("accept", order)
    accepted_on = _past_day(accepted_on, "accepted_on")
    _not_before(accepted_on, order.shipped_on, "accepted_on",
                _("Acceptance cannot be before the shipment (%(date)s)."))
    _not_before(accepted_on, order.delivered_on, "accepted_on",
                _("Acceptance cannot be before the delivery (%(date)s)."))
    if kind not in AcceptanceKind.values:
        raise ValidationFailed(_("Say how the customer accepted: receipt signed (签收) or "
                                 "inspection passed (验收)."),
                               code="invalid_kind", field="kind")
    note = _text(evidence_note, 4000)
    url = _evidence_url(evidence_url)
    upload = _evidence_file(evidence_file)
    if not (note or url or upload):
        raise ValidationFailed(
            _("Say what proves the acceptance: a note, a file or a link."),
            code="evidence_required", field="evidence_note",
        )
    before = _state(order)
    order.status = S.ACCEPTED
    order.accepted_on = accepted_on
    order.acceptance_kind = kind
    order.evidence_note = note
    order.evidence_url = url
    if upload is not None:
        order.evidence_file.save(upload.name, upload, save=False)
    _finish(actor, "accept", order, before)
    _emit("accepted", order, actor, accepted_on=accepted_on)
    _record_contract_acceptance(order.contract)
    return order


def _record_contract_acceptance(contract: Contract) -> None:
    """Once every goods and milestone line is accepted in full, the contract's acceptance."""
    contract.refresh_from_db()
    if contract.status != ContractStatus.IN_DELIVERY or contract.accepted_on is not None:
        return
    progress = [p for p in line_progress(contract) if p.deliverable]
    if not progress or any(p.accepted < p.sold for p in progress):
        return
    last = DeliveryOrder.objects.filter(contract=contract, status=S.ACCEPTED).aggregate(
        m=Max("accepted_on"))["m"]
    if contract.delivered_on is not None and last < contract.delivered_on:
        # Limitation: the contract's delivery was recorded by hand after these orders were
        # accepted; its acceptance is left for a person to record on the contract.
        logger.warning("contract delivery recorded after its orders were accepted",
                       extra={"contract_id": contract.pk})
        return
    contract_services.record_acceptance(actor=None, contract=contract, accepted_on=last)


@transaction.atomic
def cancel_delivery_order(*, actor: Any, order: DeliveryOrder, reason: str) -> DeliveryOrder:
    """Any state before acceptance → cancelled; its quantities are free for a new order."""
    # Limitation: cancelling an order after it shipped returns no stock; the event says what it
    # was (previous_status), and operations count the goods back in.
    _require(actor)
    order = _lock_order(actor, order)
    _check_step("cancel", order)
    reason = _text(reason, 255)
    if not reason:
        raise ValidationFailed(_("Give a reason, so the team knows why."),
                               code="reason_required", field="reason")
    before = _state(order)
    previous = order.status
    order.status = S.CANCELLED
    order.cancel_reason = reason
    _finish(actor, "cancel", order, before)
    _emit("cancelled", order, actor, cancelled_on=timezone.localdate(),
          previous_status=previous)
    return order


@transaction.atomic
def update_tracking(*, actor: Any, order: DeliveryOrder, **fields: Any) -> DeliveryOrder:
    """Change carrier, tracking number or warehouse of an order not yet accepted or
    cancelled. Nothing written when nothing changes."""
    _require(actor)
    order = _lock_order(actor, order)
    unknown = sorted(set(fields) - set(TRACKING))
    if unknown:
        raise ValidationFailed(_("These fields cannot be changed here: %(fields)s.")
                               % {"fields": ", ".join(unknown)})
    if order.status in (S.ACCEPTED, S.CANCELLED):
        raise InvalidTransition(str(_NEXT[order.status]))
    cleaned: dict[str, Any] = {k: _text(v, 64) for k, v in fields.items()
                               if v is not None and k != "warehouse"}
    if fields.get("warehouse") is not None:
        cleaned["warehouse"] = _warehouse(fields["warehouse"])
    if all(getattr(order, k) == v for k, v in cleaned.items()):
        return order
    before = _state(order)
    for name, value in cleaned.items():
        setattr(order, name, value)
    _finish(actor, "update_tracking", order, before)
    return order


# --- Updates from an ERP/WMS ----------------------------------------------------------------
@dataclass
class ExternalUpdate:
    """What an ERP/WMS says about one of its orders now."""

    status: str
    shipped_on: dt.date | None = None
    delivered_on: dt.date | None = None
    accepted_on: dt.date | None = None
    acceptance_kind: str | None = None
    carrier: str | None = None
    tracking_number: str | None = None
    warehouse: Any = None
    evidence_note: str | None = None
    evidence_url: str | None = None
    reason: str | None = None


_DATE_OF = {S.SHIPPED: "shipped_on", S.DELIVERED: "delivered_on", S.ACCEPTED: "accepted_on"}


def _same_as_stored(order: DeliveryOrder, update: ExternalUpdate) -> None:
    """The update names the order's current status: its dates must be the stored ones
    (a retry), else it contradicts what was recorded."""
    for field in _DATE_OF.values():
        given, stored = getattr(update, field), getattr(order, field)
        if given is not None and stored is not None and given != stored:
            raise Conflict(
                _("Delivery order %(number)s was recorded with %(field)s %(stored)s; this "
                  "update says %(given)s. Send the recorded date, or correct it in Weiying.")
                % {"number": order.number, "field": field, "stored": stored.isoformat(),
                   "given": given.isoformat()},
                code="conflicting_update", field=field,
            )
    if (update.acceptance_kind and order.acceptance_kind
            and update.acceptance_kind != order.acceptance_kind):
        raise Conflict(
            _("Delivery order %(number)s was accepted as %(stored)s; this update says "
              "%(given)s.") % {"number": order.number, "stored": order.acceptance_kind,
                               "given": update.acceptance_kind},
            code="conflicting_update", field="acceptance_kind",
        )


@transaction.atomic
def apply_external_update(*, actor: Any, order: DeliveryOrder,
                          update: ExternalUpdate) -> tuple[DeliveryOrder, bool]:
    """Bring the order to the status an ERP/WMS reports, taking the steps in between with the
    dates given (a step's date defaults to the next step's). Idempotent: an update that says
    what is already recorded changes nothing and writes nothing. An update that would move the
    order backwards, or contradicts a recorded date, is refused. Returns (order, changed)."""
    _require(actor)
    order = _lock_order(actor, order)
    target = update.status
    if target not in S.values:
        raise ValidationFailed(
            _("Unknown status %(status)s; use planned, shipped, delivered, accepted or "
              "cancelled.") % {"status": target},
            code="invalid_status", field="status",
        )
    current = order.status
    if current == S.CANCELLED or (target == S.CANCELLED and current == S.ACCEPTED) or (
            target != S.CANCELLED and STATUS_ORDER.index(target) < STATUS_ORDER.index(current)):
        if target == current:
            return order, False
        raise InvalidTransition(
            _("Delivery order %(number)s is already %(current)s; it cannot become %(target)s. "
              "An update may only move an order forward (planned → shipped → delivered → "
              "accepted) or cancel it before acceptance.")
            % {"number": order.number, "current": current, "target": target},
            code="conflicting_update",
        )
    _same_as_stored(order, update)
    changed = False
    if target == S.CANCELLED:
        order = cancel_delivery_order(
            actor=actor, order=order,
            reason=update.reason or _("Cancelled by the sending system."))
        return order, True
    tracking = {k: getattr(update, k) for k in TRACKING if getattr(update, k) is not None}
    dates = {
        "shipped_on": update.shipped_on or update.delivered_on or update.accepted_on,
        "delivered_on": update.delivered_on or update.accepted_on,
    }
    if STATUS_ORDER.index(current) < STATUS_ORDER.index(S.SHIPPED) <= STATUS_ORDER.index(
            target):
        order = ship_delivery_order(actor=actor, order=order, shipped_on=dates["shipped_on"],
                                    **tracking)
        tracking = {}
        changed = True
    if STATUS_ORDER.index(order.status) < STATUS_ORDER.index(S.DELIVERED) <= \
            STATUS_ORDER.index(target):
        order = mark_delivered(actor=actor, order=order, delivered_on=dates["delivered_on"])
        changed = True
    if order.status != S.ACCEPTED and target == S.ACCEPTED:
        order = accept_delivery_order(
            actor=actor, order=order, accepted_on=update.accepted_on,
            kind=update.acceptance_kind or "", evidence_note=update.evidence_note or "",
            evidence_url=update.evidence_url or "")
        changed = True
    if tracking and order.status not in (S.ACCEPTED, S.CANCELLED):
        before = _state(order)
        order = update_tracking(actor=actor, order=order, **tracking)
        changed = changed or _state(order) != before
    return order, changed


# --- For the pages: what each step needs ----------------------------------------------------
def run_step(*, actor: Any, order: DeliveryOrder, action: str, **inputs: Any) -> DeliveryOrder:
    """Run the step named `action` with the inputs it takes (for views, which take the action
    from the URL)."""
    if action == "ship":
        return ship_delivery_order(
            actor=actor, order=order, shipped_on=inputs.get("shipped_on"),
            carrier=inputs.get("carrier"), tracking_number=inputs.get("tracking_number"),
            warehouse=inputs.get("warehouse") or None)
    if action == "deliver":
        return mark_delivered(actor=actor, order=order, delivered_on=inputs.get("delivered_on"))
    if action == "accept":
        return accept_delivery_order(
            actor=actor, order=order, accepted_on=inputs.get("accepted_on"),
            kind=inputs.get("kind") or "", evidence_note=inputs.get("evidence_note") or "",
            evidence_file=inputs.get("evidence_file"),
            evidence_url=inputs.get("evidence_url") or "")
    if action == "cancel":
        return cancel_delivery_order(actor=actor, order=order, reason=inputs.get("reason") or "")
    raise NotFound(_("There is no such action on a delivery order."))

