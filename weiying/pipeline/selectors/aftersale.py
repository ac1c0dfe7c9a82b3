"""After-sale lists: repurchase reminders, upsell candidates and the customer value list.

All three start from the customers the user may see (held by an owner, not in the shared
pool, not merged away) and are computed with grouped queries, never a query per customer.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from django.db.models import (
    Count,
    DecimalField,
    Exists,
    ExpressionWrapper,
    F,
    IntegerField,
    Max,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
)
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext as _

from weiying.catalog.models import Product
from weiying.core.errors import ValidationFailed
from weiying.core.money import MONEY_FIELD, money
from weiying.core.pagination import PAGE_SIZE, Page, _decode, _encode, keyset_page
from weiying.core.scope import scoped
from weiying.customers.models import Customer
from weiying.pipeline.choices import (
    ContractStatus,
    OpportunityStatus,
    TicketPriority,
    TicketStatus,
)
from weiying.pipeline.models import Contract, ContractLine, Opportunity, Ticket

# A contract counts as a purchase once signed; one still being drafted or approved is a
# repurchase already under way.
PURCHASED = [ContractStatus.SIGNED, ContractStatus.IN_DELIVERY, ContractStatus.COMPLETED]
UNDER_WAY = [ContractStatus.DRAFT, ContractStatus.PENDING_APPROVAL, ContractStatus.APPROVED]
ACTIVE_TICKET = [TicketStatus.OPEN, TicketStatus.IN_PROGRESS, TicketStatus.WAITING]
SUGGESTIONS = 3


def _size(size: int) -> int:
    return max(1, min(int(size), 200))


def owned_customers(user: Any) -> QuerySet[Customer]:
    """Customers in the user's scope that an owner looks after."""
    return scoped(
        Customer.objects.filter(in_pool=False, owner__isnull=False, merged_into__isnull=True),
        user,
    )


# --- Repurchase reminders -------------------------------------------------------------------
@dataclass
class RepurchaseRow:
    customer: Customer
    product: Product
    last_purchase: dt.date
    due_on: dt.date
    days_overdue: int  # negative: due in that many days

    @property
    def days_until(self) -> int:
        return max(0, -self.days_overdue)


def repurchase_due(
    user: Any, *, within_days: int = 30, today: dt.date | None = None,
    cursor: str | None = None, size: int = PAGE_SIZE,
) -> Page:
    """(customer, product) pairs due for a repurchase, most overdue first.

    A pair is due when the customer's last signed contract holding the product (an active
    product with a repurchase cycle) was signed more than `lifecycle_days − within_days`
    days ago and no contract with that product is under way since. due_on = last purchase +
    lifecycle_days.
    """
    if not 0 <= within_days <= 365:
        raise ValidationFailed(_("Look ahead between 0 and 365 days."), field="within_days")
    today = today or timezone.localdate()
    size = _size(size)
    after = _decode(cursor) if cursor else None
    if after is not None and (len(after) != 3 or not isinstance(after[0], dt.date)):
        raise ValidationFailed(
            _("The page cursor does not match this list's order; start from the first page."),
            field="cursor",
        )

    lines = ContractLine.objects.filter(
        contract__status__in=PURCHASED,
        contract__signed_on__isnull=False,
        contract__customer__in=owned_customers(user).values("pk"),
        product__is_active=True,
    ).exclude(
        Exists(ContractLine.objects.filter(
            contract__customer_id=OuterRef("contract__customer_id"),
            product_id=OuterRef("product_id"),
            contract__status__in=UNDER_WAY,
        ))
    )
    cycles = sorted(set(
        Product.objects.filter(is_active=True, lifecycle_days__isnull=False)
        .values_list("lifecycle_days", flat=True)
    ))

    # 1. One grouped query per distinct cycle length (a handful: 30, 90, 365 days…): with
    #    one cycle, due_on orders like the last purchase date, so the keyset stays in SQL.
    found: list[tuple[dt.date, int, int, dt.date]] = []
    for days in cycles:
        cutoff = today - dt.timedelta(days=days - within_days)
        qs = (
            lines.filter(product__lifecycle_days=days)
            .values("contract__customer_id", "product_id")
            .annotate(last=Max("contract__signed_on"))
            .filter(last__lt=cutoff)
        )
        if after is not None:
            last_c = after[0] - dt.timedelta(days=days)
            cust_c, prod_c = after[1], after[2]
            qs = qs.filter(
                Q(last__gt=last_c)
                | Q(last=last_c, contract__customer_id__gt=cust_c)
                | Q(last=last_c, contract__customer_id=cust_c, product_id__gt=prod_c)
            )
        qs = qs.order_by("last", "contract__customer_id", "product_id")[: size + 1]
        found += [
            (row["last"] + dt.timedelta(days=days), row["contract__customer_id"],
             row["product_id"], row["last"])
            for row in qs
        ]

    # 2. Merge the per-cycle pages and keep one page.
    found.sort()
    next_cursor = None
    if len(found) > size:
        found = found[:size]
        next_cursor = _encode(list(found[-1][:3]))

    # 3. Names for the page: two queries.
    customers = Customer.objects.select_related("owner").in_bulk({r[1] for r in found})
    products = Product.objects.in_bulk({r[2] for r in found})
    items = [
        RepurchaseRow(
            customer=customers[cust], product=products[prod], last_purchase=last,
            due_on=due, days_overdue=(today - due).days,
        )
        for due, cust, prod, last in found
    ]
    return Page(items=items, next_cursor=next_cursor)


# --- Upsell candidates ----------------------------------------------------------------------
@dataclass
class UpsellRow:
    customer: Customer
    suggestions: list[Product] = field(default_factory=list)


def upsell_queryset(user: Any) -> QuerySet[Customer]:
    """Customers with a completed contract, no open opportunity and no open high or urgent
    ticket (an unhappy customer is not sold to)."""
    return (
        owned_customers(user)
        .filter(Exists(Contract.objects.filter(
            customer=OuterRef("pk"), status=ContractStatus.COMPLETED)))
        .exclude(Exists(Opportunity.objects.filter(
            customer=OuterRef("pk"), status=OpportunityStatus.OPEN)))
        .exclude(Exists(Ticket.objects.filter(
            customer=OuterRef("pk"), status__in=ACTIVE_TICKET,
            priority__in=[TicketPriority.HIGH, TicketPriority.URGENT])))
        .select_related("owner")
    )


def upsell_candidates(user: Any, *, cursor: str | None = None, size: int = PAGE_SIZE) -> Page:
    """Upsell candidates ranked by money collected, each with up to three products from the
    categories they already buy and have not bought yet (the most widely bought first)."""
    page = keyset_page(upsell_queryset(user), ["-total_collected", "-id"], cursor=cursor,
                       size=_size(size))
    ids = [c.pk for c in page.items]
    if not ids:
        return Page(items=[], next_cursor=page.next_cursor)

    bought: dict[int, set[int]] = defaultdict(set)
    categories: dict[int, set[str]] = defaultdict(set)
    for customer_id, product_id, category in (
        ContractLine.objects.filter(contract__customer_id__in=ids, contract__status__in=PURCHASED)
        .values_list("contract__customer_id", "product_id", "product__category").distinct()
    ):
        bought[customer_id].add(product_id)
        if category:
            categories[customer_id].add(category)

    wanted = set().union(*categories.values()) if categories else set()
    candidates = list(Product.objects.filter(is_active=True, category__in=wanted))
    # Limitation: popularity counts buyers across the whole company at request time; on a
    # very large history this wants a daily roll-up per product.
    buyers = dict(
        ContractLine.objects.filter(product__in=candidates, contract__status__in=PURCHASED)
        .values("product_id")
        .annotate(n=Count("contract__customer_id", distinct=True))
        .values_list("product_id", "n")
    )
    candidates.sort(key=lambda p: (-buyers.get(p.pk, 0), p.code))

    items = []
    for customer in page.items:
        mine = categories.get(customer.pk, set())
        owned = bought.get(customer.pk, set())
        picks = [p for p in candidates if p.category in mine and p.pk not in owned]
        items.append(UpsellRow(customer=customer, suggestions=picks[:SUGGESTIONS]))
    return Page(items=items, next_cursor=page.next_cursor)


# --- Customer value -------------------------------------------------------------------------
VALUE_SORTS: dict[str, list[str]] = {
    "-signed": ["-total_signed", "-id"],
    "-collected": ["-total_collected", "-id"],
    "-outstanding": ["-outstanding", "-id"],
    "-last_purchase": ["-last_purchase_key", "-id"],
    "-contracts": ["-contract_count", "-id"],
    "-open_tickets": ["-open_ticket_count", "-id"],
}
DEFAULT_VALUE_SORT = "-signed"
_NEVER = dt.date(1970, 1, 1)


def _count(qs: QuerySet[Any]) -> Coalesce:
    counted = qs.order_by().values("customer_id").annotate(n=Count("pk")).values("n")
    return Coalesce(Subquery(counted, output_field=IntegerField()), Value(0))


def customer_value_queryset(user: Any) -> QuerySet[Customer]:
    """Customers who have bought, with their value figures. Signed, collected and last
    purchase are the roll-ups the contract services keep on the customer row."""
    return (
        owned_customers(user)
        .filter(total_signed__gt=0)
        .annotate(
            outstanding=ExpressionWrapper(
                F("total_signed") - F("total_collected"), output_field=DecimalField(**MONEY_FIELD)
            ),
            last_purchase_key=Coalesce(F("last_purchase_at"), Value(_NEVER)),
            contract_count=_count(Contract.objects.filter(
                customer_id=OuterRef("pk"), status__in=PURCHASED)),
            open_ticket_count=_count(Ticket.objects.filter(
                customer_id=OuterRef("pk"), status__in=ACTIVE_TICKET)),
        )
        .select_related("owner")
    )


def customer_value(
    user: Any, *, sort: str = DEFAULT_VALUE_SORT, cursor: str | None = None,
    size: int = PAGE_SIZE,
) -> Page:
    if sort not in VALUE_SORTS:
        raise ValidationFailed(
            _("Sort by one of: %(keys)s.") % {"keys": ", ".join(VALUE_SORTS)}, field="sort"
        )
    page = keyset_page(customer_value_queryset(user), VALUE_SORTS[sort], cursor=cursor,
                       size=_size(size))
    for customer in page.items:
        customer.outstanding = money(customer.outstanding)
    return page
