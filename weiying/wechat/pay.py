"""WeChat Pay: collect an instalment with a Native order (a QR code the customer scans) and
record the money exactly once, however it is learnt of — a notification, a repeat of it, an
administrator's replay, or the order query that finds a payment whose notification was lost.

Money stays Decimal everywhere; fen (an int) exists only at Tencent's boundary, converted in
`to_fen` / `from_fen` and nowhere else.

Life of an order: open (waiting, with a QR code for two hours) → paid (a receipt recorded
once, keyed on the transaction id) | closed (expired, or closed by Tencent). A payment that
arrives for a closed order is still money received and is recorded the same way.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from weiying.core import audit
from weiying.core.errors import (
    DomainError,
    InvalidTransition,
    NotFound,
    PermissionDenied,
    ValidationFailed,
)
from weiying.core.events import emit
from weiying.core.money import FEN
from weiying.core.permissions import employee_of, has_perm
from weiying.core.scope import scoped
from weiying.pipeline.choices import ContractStatus, PaymentMethod
from weiying.pipeline.models import Contract, Instalment
from weiying.pipeline.services.contracts import record_receipt
from weiying.wechat import client, config, inbox
from weiying.wechat.choices import InboxSource, PayOrderStatus
from weiying.wechat.models import InboxMessage, PayOrder, SecurityEvent

logger = logging.getLogger(__name__)

SHANGHAI = ZoneInfo("Asia/Shanghai")
ORDER_LIFETIME = dt.timedelta(hours=2)
# An open order is reused only while the customer still has this long to pay it.
REUSE_MARGIN = dt.timedelta(minutes=15)
# The query job looks at open orders this old, at most once per this interval each.
QUERY_AFTER = dt.timedelta(minutes=5)
QUERY_EVERY = dt.timedelta(minutes=5)
# After a network error the job pauses this long (a rate limit says how long itself).
NETWORK_PAUSE_SECONDS = 60
PAUSE_KEY = "wechat:pay:query_paused"
# The contract states in which an instalment may be collected by WeChat Pay.
COLLECTABLE = (ContractStatus.SIGNED, ContractStatus.IN_DELIVERY)
# Trade states that mean the customer paid (REFUND: paid, and a refund was started since).
PAID_STATES = ("SUCCESS", "REFUND")
OPEN = PayOrderStatus.OPEN


# --- Money at the boundary ------------------------------------------------------------------
def to_fen(amount: Decimal) -> int:
    """Yuan (Decimal) → fen (int) for Tencent. Refuses floats and fractions of a fen: an
    amount that is not a whole number of fen is a bug upstream, never something to round."""
    if not isinstance(amount, Decimal):
        raise TypeError(f"an amount in yuan must be a Decimal, not {type(amount).__name__}")
    if not amount.is_finite():
        raise ValueError(f"{amount} is not an amount")
    fen = amount.scaleb(2)
    if fen != fen.to_integral_value():
        raise ValueError(f"{amount} has a fraction of a fen")
    return int(fen)


def from_fen(fen: int) -> Decimal:
    """Fen (int) from Tencent → yuan (Decimal, two places)."""
    if isinstance(fen, bool) or not isinstance(fen, int):
        raise TypeError(f"an amount in fen must be an int, not {type(fen).__name__}")
    return Decimal(fen).scaleb(-2).quantize(FEN)


def rfc3339(moment: dt.datetime) -> str:
    """Tencent's time format: Beijing time with its offset, to the second."""
    return moment.astimezone(SHANGHAI).isoformat(timespec="seconds")


def available() -> bool:
    """WeChat Pay is configured (the pages offer it only then)."""
    return config.current().pay_ready


# --- Who may collect ------------------------------------------------------------------------
def may_collect(actor: Any, contract: Contract) -> bool:
    """Finance and managers (receipt.record) may, and so may the contract's owner: the rep
    who sits with the customer shows the code; the money itself is recorded by the system
    when Tencent confirms it, never on the rep's word. The caller has read the contract
    through the actor's scope."""
    if has_perm(actor, "receipt.record"):
        return True
    me = employee_of(actor)
    return me is not None and contract.owner_id is not None and me.pk == contract.owner_id


def collectable_amount(instalment: Instalment, contract: Contract) -> Decimal:
    """What is still due on the instalment (never more than is due on the contract)."""
    return max(min(instalment.outstanding, contract.outstanding), Decimal("0.00"))


def _check_collectable(instalment: Instalment, contract: Contract) -> Decimal:
    if contract.status not in COLLECTABLE:
        raise InvalidTransition(
            _("This contract is %(status)s; WeChat Pay can collect only on a signed contract "
              "or one in delivery.")
            % {"status": str(contract.get_status_display()).lower()},
            code="contract_not_collectable",
        )
    amount = collectable_amount(instalment, contract)
    if amount <= 0:
        raise ValidationFailed(
            _("Instalment %(n)s is fully collected; there is nothing left to pay.")
            % {"n": instalment.seq},
            code="nothing_due", field="instalment",
        )
    return amount


def description_for(contract: Contract, instalment: Instalment) -> str:
    """What the customer reads on the payment screen (at most 127 characters), in the
    company's language rather than the language of whoever pressed the button."""
    with translation.override(settings.LANGUAGE_CODE):
        text = _("Contract %(number)s, instalment %(n)s") % {"number": contract.number,
                                                            "n": instalment.seq}
    return text[:127]


# --- Creating an order ----------------------------------------------------------------------
def create_pay_order(*, actor: Any, instalment: Instalment) -> PayOrder:
    """A Native order for what is still due on `instalment`, with its QR link.

    An open order for the same instalment and amount that the customer still has time to pay
    is returned instead of a new one. The call to Tencent happens outside the database
    transaction (no lock is held over the network); an order whose call failed keeps its
    number and its expiry, so trying again sends Tencent the very same order, which Tencent
    treats as one.
    """
    order = _open_or_new_order(actor, instalment)
    if order.code_url:
        return order
    try:
        pay = client.Pay()
        try:
            code_url = pay.native_order(
                out_trade_no=order.out_trade_no, description=order.description,
                amount_fen=to_fen(order.amount), expires_at=rfc3339(order.expires_at),
            )
        finally:
            pay.close()
    except client.WeChatError as exc:
        logger.warning("pay order not created at Tencent",
                       extra={"out_trade_no": order.out_trade_no, "code": exc.code})
        raise _tencent_refused(exc) from None
    with transaction.atomic():
        updated = PayOrder.objects.filter(pk=order.pk, code_url="").update(code_url=code_url)
        order.refresh_from_db()
        if updated:
            audit.record(actor, "payorder.create", order, after=audit.snapshot(order))
            emit("payorder.created", order, actor=actor, contract_id=order.contract_id,
                 instalment_id=order.instalment_id, amount=order.amount,
                 out_trade_no=order.out_trade_no, expires_at=order.expires_at)
    logger.info("pay order created", extra={"out_trade_no": order.out_trade_no,
                                            "pay_order_id": order.pk})
    _close_superseded(actor, order)
    return order


def _close_superseded(actor: Any, order: PayOrder) -> None:
    """Close the instalment's other open orders (an older amount), at Tencent first, so the
    customer cannot pay a stale code as well. Best effort: an order Tencent will not close
    stays open, and the query job settles or closes it later."""
    others = PayOrder.objects.filter(instalment_id=order.instalment_id, status=OPEN).exclude(
        pk=order.pk)
    for other in others:
        try:
            pay = client.Pay()
            try:
                pay.request("POST", f"/v3/pay/transactions/out-trade-no/{other.out_trade_no}"
                                    "/close", {"mchid": pay.conf.pay_mch_id})
            finally:
                pay.close()
        except client.ApiError as exc:
            if exc.code != 404:  # 404: Tencent never had it; anything else: it may be paid
                logger.info("superseded pay order not closed",
                            extra={"out_trade_no": other.out_trade_no, "code": exc.code})
                continue
        except client.WeChatError:
            logger.info("superseded pay order not closed (network)",
                        extra={"out_trade_no": other.out_trade_no})
            continue
        close_pay_order(actor=actor, order=other, reason="superseded")


def _tencent_refused(exc: client.WeChatError) -> DomainError:
    if isinstance(exc, client.NotConfigured):
        return ValidationFailed(
            _("WeChat Pay is not set up for this company; an administrator must enter the "
              "merchant credentials first."), code="pay_not_configured")
    if isinstance(exc, client.RateLimited):
        return DomainError(_("WeChat Pay is busy right now; try again in a minute."),
                           code="pay_rate_limited")
    return DomainError(
        _("WeChat Pay did not create the order (%(reason)s); try again in a moment.")
        % {"reason": str(exc)[:120]}, code="pay_failed")


@transaction.atomic
def _open_or_new_order(actor: Any, instalment: Instalment) -> PayOrder:
    contract = Contract.objects.filter(pk=instalment.contract_id).first()
    if contract is None or (actor is not None and not scoped(
            Contract.objects.filter(pk=contract.pk), actor).exists()):
        raise NotFound(_("This contract does not exist or is outside what you may see."))
    if actor is not None and not may_collect(actor, contract):
        raise PermissionDenied(
            _("Only the contract's owner or someone who records receipts can collect by "
              "WeChat Pay; ask the owner or finance."), code="forbidden")
    if not config.current().pay_ready:
        raise ValidationFailed(
            _("WeChat Pay is not set up for this company; an administrator must enter the "
              "merchant credentials first."), code="pay_not_configured")
    # The contract's row lock orders two people pressing the button at once.
    contract = Contract.objects.select_for_update().get(pk=contract.pk)
    instalment = Instalment.objects.get(pk=instalment.pk)
    amount = _check_collectable(instalment, contract)
    now = timezone.now()
    reusable = PayOrder.objects.filter(
        instalment=instalment, status=OPEN, amount=amount, expires_at__gt=now + REUSE_MARGIN,
    ).order_by("-created_at", "-pk").first()
    if reusable is not None:
        return reusable
    order = PayOrder.objects.create(
        contract=contract, instalment=instalment, amount=amount,
        out_trade_no=f"tmp{uuid.uuid4().hex[:29]}", description=description_for(
            contract, instalment),
        created_by=employee_of(actor) if actor is not None else None,
        expires_at=(now + ORDER_LIFETIME).replace(microsecond=0),
    )
    # "WY" + the day in Beijing + the row id: unique, readable on a bank statement, 20 chars.
    order.out_trade_no = f"WY{timezone.localtime(now, SHANGHAI):%Y%m%d}{order.pk:010d}"
    order.save(update_fields=["out_trade_no"])
    return order


# --- Recording a payment --------------------------------------------------------------------
def mismatches(order: PayOrder | None, resource: dict[str, Any], conf: config.WeChatConfig,
               *, states: tuple[str, ...] = ("SUCCESS",)) -> list[str]:
    """The fields of a transaction that do not match the order and the configuration."""
    if order is None:
        return ["out_trade_no"]
    wrong = []
    if str(resource.get("mchid", "")) != conf.pay_mch_id:
        wrong.append("mchid")
    if str(resource.get("appid", "")) != conf.pay_app_id:
        wrong.append("appid")
    amount = resource.get("amount") if isinstance(resource.get("amount"), dict) else {}
    total = amount.get("total")
    if isinstance(total, bool) or not isinstance(total, int) or total != to_fen(order.amount):
        wrong.append("amount.total")
    if amount.get("currency") != "CNY":
        wrong.append("amount.currency")
    if resource.get("trade_state") not in states:
        wrong.append("trade_state")
    transaction_id = resource.get("transaction_id")
    if not isinstance(transaction_id, str) or not 0 < len(transaction_id) <= 50:
        wrong.append("transaction_id")
    elif order.transaction_id and order.transaction_id != transaction_id:
        wrong.append("transaction_id")
    if _success_time(resource) is None:
        wrong.append("success_time")
    return wrong


def _success_time(resource: dict[str, Any]) -> dt.datetime | None:
    try:
        moment = dt.datetime.fromisoformat(str(resource.get("success_time", "")))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def _security(reason: str, out_trade_no: Any, **detail: Any) -> None:
    """A refused payment fact, in the security log: the order number and what was wrong,
    never the payer."""
    SecurityEvent.objects.create(source=InboxSource.PAY, reason=reason[:32], detail={
        "out_trade_no": str(out_trade_no or "")[:32], **detail})
    logger.warning("pay transaction refused", extra={"reason": reason,
                                                     "out_trade_no": str(out_trade_no)[:32]})


@transaction.atomic
def settle(resource: dict[str, Any], *, via: str,
           states: tuple[str, ...] = ("SUCCESS",)) -> PayOrder | None:
    """Record a paid transaction once: check it against the order and the configuration,
    record the receipt (its external id makes a repeat a no-op), mark the order paid.

    The one path for the notification handler and the order query (`via` says which).
    Returns the paid order, or None when the transaction was refused (a security-log row
    says why; nothing else changes).
    """
    conf = config.current()
    out_trade_no = resource.get("out_trade_no")
    order = None
    if isinstance(out_trade_no, str) and out_trade_no:
        order = PayOrder.objects.select_for_update().filter(out_trade_no=out_trade_no).first()
    wrong = mismatches(order, resource, conf, states=states)
    if wrong:
        _security("mismatch", out_trade_no, fields=wrong, via=via)
        return None
    assert order is not None
    transaction_id = str(resource["transaction_id"])
    if order.status == PayOrderStatus.PAID:
        return order  # a repeat: recorded already
    success_time = _success_time(resource)
    assert success_time is not None
    contract = Contract.objects.get(pk=order.contract_id)
    receipt = None
    try:
        receipt = record_receipt(
            actor=None, contract=contract, amount=order.amount,
            received_on=success_time.astimezone(SHANGHAI).date(),
            method=PaymentMethod.WECHAT_PAY, reference=transaction_id,
            instalment=order.instalment, external_id=f"wxpay:{transaction_id}",
        )
    except DomainError as exc:
        # Limitation: the money arrived, but the contract no longer takes it (cancelled
        # meanwhile, or collected by other means): the order is paid without a receipt and
        # the security log says so; finance refunds it or records it elsewhere by hand.
        _security("not_receivable", out_trade_no, code=exc.code, via=via)
        logger.error("WeChat Pay money arrived that the contract does not take: a person "
                     "must refund or re-assign it",
                     extra={"out_trade_no": order.out_trade_no, "code": exc.code})
    before = audit.snapshot(order, ["status", "transaction_id", "paid_at", "receipt"])
    paid = PayOrder.objects.filter(pk=order.pk).exclude(status=PayOrderStatus.PAID).update(
        status=PayOrderStatus.PAID, transaction_id=transaction_id, paid_at=success_time,
        receipt=receipt,
    )
    order.refresh_from_db()
    if paid:
        audit.record(None, "payorder.paid", order, before=before, after=audit.snapshot(
            order, ["status", "transaction_id", "paid_at", "receipt"]) | {"via": via})
        emit("payorder.paid", order, contract_id=order.contract_id,
             instalment_id=order.instalment_id, amount=order.amount,
             receipt_id=order.receipt_id, via=via)
        logger.info("pay order paid", extra={"out_trade_no": order.out_trade_no, "via": via,
                                             "receipt_id": order.receipt_id})
    return order


# Limitation: REFUND.* notifications have no handler: the inbox stores and acknowledges them,
# but a refund does not yet come off the receipt; finance records it by hand meanwhile.
@inbox.handles(InboxSource.PAY, "pay:TRANSACTION.SUCCESS")
def on_transaction_success(row: InboxMessage, message: dict[str, Any]) -> None:
    """A payment notification (signature checked and resource decrypted by the endpoint).
    A mismatch ends here too, in the security log: retrying would not make it match."""
    resource = message.get("resource")
    if not isinstance(resource, dict):
        _security("mismatch", "", fields=["resource"], via="notification", inbox_id=row.pk)
        return
    settle(resource, via="notification")


# --- Closing --------------------------------------------------------------------------------
@transaction.atomic
def close_pay_order(*, actor: Any, order: PayOrder, reason: str) -> bool:
    """Open → closed (expired, or closed by Tencent). False when it was no longer open."""
    closed = PayOrder.objects.filter(pk=order.pk, status=OPEN).update(
        status=PayOrderStatus.CLOSED)
    if not closed:
        return False
    order.refresh_from_db()
    audit.record(actor, "payorder.close", order, before={"status": OPEN},
                 after={"status": order.status, "reason": reason})
    emit("payorder.closed", order, actor=actor, contract_id=order.contract_id,
         instalment_id=order.instalment_id, reason=reason)
    return True


# --- Lost notifications ---------------------------------------------------------------------
def due_for_query(now: dt.datetime | None = None, limit: int = 100) -> list[PayOrder]:
    """Open orders older than QUERY_AFTER, not queried within QUERY_EVERY, oldest first."""
    from django.db.models import Q

    now = now or timezone.now()
    return list(
        PayOrder.objects.filter(status=OPEN, created_at__lte=now - QUERY_AFTER)
        .filter(Q(last_queried_at__isnull=True) | Q(last_queried_at__lte=now - QUERY_EVERY))
        .order_by("created_at", "pk")[:limit]
    )


def query_open_orders(limit: int = 100) -> dict[str, int]:
    """Ask Tencent about open orders whose payment notification may have been lost. A paid
    one goes through `settle` like a notification; a closed or expired one is closed here.
    A rate limit or a network error stops the run and pauses the job."""
    counts: dict[str, int] = {}
    if cache.get(PAUSE_KEY):
        return {"paused": 1}
    if not available():
        return counts
    orders = due_for_query(limit=limit)
    if not orders:
        return counts
    pay = client.Pay()
    try:
        for order in orders:
            outcome = _query_one(pay, order)
            counts[outcome] = counts.get(outcome, 0) + 1
            if outcome in ("rate_limited", "network"):
                break
    finally:
        pay.close()
    logger.info("pay query run done", extra=counts)
    return counts


def _query_one(pay: client.Pay, order: PayOrder) -> str:
    now = timezone.now()
    PayOrder.objects.filter(pk=order.pk).update(last_queried_at=now)
    expired = order.expires_at is not None and order.expires_at <= now
    try:
        data = pay.query_order(order.out_trade_no)
    except client.RateLimited as exc:
        cache.set(PAUSE_KEY, True, timeout=max(int(exc.retry_after), 1))
        logger.warning("pay query rate limited; pausing",
                       extra={"retry_after": exc.retry_after})
        return "rate_limited"
    except client.ApiError as exc:
        if exc.code == 404 and expired:
            # Tencent never had it (the create call failed) and its time is up.
            close_pay_order(actor=None, order=order, reason="not_at_tencent")
            return "closed"
        logger.warning("pay query refused", extra={"out_trade_no": order.out_trade_no,
                                                    "code": exc.code})
        return "error"
    except client.WeChatError:
        cache.set(PAUSE_KEY, True, timeout=NETWORK_PAUSE_SECONDS)
        logger.warning("pay query failed (network); pausing",
                       extra={"out_trade_no": order.out_trade_no})
        return "network"
    state = data.get("trade_state")
    if state in PAID_STATES:
        return "paid" if settle(data, via="query", states=PAID_STATES) else "refused"
    if state in ("CLOSED", "REVOKED"):
        close_pay_order(actor=None, order=order, reason=str(state).lower())
        return "closed"
    if expired and state in ("NOTPAY", "PAYERROR"):
        close_pay_order(actor=None, order=order, reason="expired")
        return "closed"
    return "open"


# --- Reads ----------------------------------------------------------------------------------
def orders_for(user: Any) -> Any:
    """Pay orders through the user's scope (their contracts')."""
    return scoped(PayOrder.objects.select_related("contract", "contract__customer",
                                                  "instalment", "receipt"), user)
