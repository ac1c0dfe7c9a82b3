"""Reads of customers, always through the caller's data scope."""

from __future__ import annotations

from typing import Any

from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils.translation import gettext as _

from weiying.core.errors import NotFound, ValidationFailed
from weiying.core.masking import normalise_phone
from weiying.core.pagination import PAGE_SIZE, Page, keyset_page
from weiying.core.scope import scoped
from weiying.customers.models import Consent, Contact, Customer, OwnershipChange
from weiying.customers.naming import name_key

# Public sort keys → orderings; the last field is unique, as keyset paging needs.
SORTS: dict[str, list[str]] = {
    "-activity": ["-last_activity_at", "-id"],
    "name": ["name_key", "id"],
    "-created": ["-created_at", "-id"],
    "-value": ["-total_signed", "-id"],
}
DEFAULT_SORT = "-activity"


def customers_queryset(
    user: Any, *, q: str = "", status: str = "", level: str = "", source: str = "",
    tag: str = "", owner_id: int | None = None, pool: bool = False,
) -> QuerySet[Customer]:
    """The filtered, scoped customers (merged-away rows left out), unordered."""
    qs = scoped(Customer.objects.filter(merged_into__isnull=True), user).select_related(
        "owner", "department", "pool_department"
    ).prefetch_related("tags")
    if pool:
        qs = qs.filter(in_pool=True)
    if status:
        qs = qs.filter(status=status)
    if level:
        qs = qs.filter(level=level)
    if source:
        qs = qs.filter(source=source)
    if owner_id:
        qs = qs.filter(owner_id=owner_id)
    if tag:
        qs = qs.filter(Exists(Customer.tags.through.objects.filter(
            customer_id=OuterRef("pk"), tag__name=tag)))
    q = (q or "").strip()
    if q:
        # Name, normalised name, contact names; and phone digits once there are enough of
        # them to mean something (a contains on a short run matches half the table).
        match = Q(name__icontains=q) | Exists(
            Contact.objects.filter(customer_id=OuterRef("pk"), name__icontains=q)
        )
        key = name_key(q)
        if key:
            match |= Q(name_key__contains=key)
        digits = normalise_phone(q)
        if len(digits) >= 4 and len(digits) >= len(q.replace(" ", "").replace("-", "")) - 1:
            match |= Q(phone__contains=digits) | Exists(
                Contact.objects.filter(customer_id=OuterRef("pk"), phone__contains=digits)
            )
        qs = qs.filter(match)
    return qs


def list_customers(
    user: Any, *, q: str = "", status: str = "", level: str = "", source: str = "",
    tag: str = "", owner_id: int | None = None, pool: bool = False, sort: str = DEFAULT_SORT,
    cursor: str | None = None, size: int = PAGE_SIZE,
) -> Page:
    if sort not in SORTS:
        raise ValidationFailed(
            _("Sort by one of: %(keys)s.") % {"keys": ", ".join(SORTS)}, field="sort"
        )
    qs = customers_queryset(user, q=q, status=status, level=level, source=source, tag=tag,
                            owner_id=owner_id, pool=pool)
    return keyset_page(qs, SORTS[sort], cursor=cursor, size=size)


def pool_customers(user: Any, *, q: str = "", level: str = "", source: str = "",
                   tag: str = "", sort: str = DEFAULT_SORT, cursor: str | None = None,
                   size: int = PAGE_SIZE) -> Page:
    """The shared pools the user may see: their branch's, their ancestors', the company's."""
    return list_customers(user, q=q, level=level, source=source, tag=tag, pool=True, sort=sort,
                          cursor=cursor, size=size)


def customer_detail(user: Any, pk: int) -> Customer:
    """One customer in the user's scope (a merged-away row too: callers follow merged_into)."""
    customer = (
        scoped(Customer.objects.all(), user)
        .select_related("owner", "department", "pool_department", "merged_into")
        .filter(pk=pk)
        .first()
    )
    if customer is None:
        raise NotFound()
    return customer


def ownership_history(customer: Customer) -> QuerySet[OwnershipChange]:
    return customer.ownership_changes.select_related("from_owner", "to_owner", "by").order_by(
        "-at", "-pk"
    )


def consent_state(customer: Customer) -> dict[str, Consent | None]:
    """The standing consent per purpose: the newest record, or None if never asked."""
    from weiying.customers.choices import ConsentPurpose

    state: dict[str, Consent | None] = {p: None for p in ConsentPurpose.values}
    for consent in customer.consents.order_by("-at", "-pk"):
        if state.get(consent.purpose) is None:
            state[consent.purpose] = consent
    return state


def has_consent(customer: Customer, purpose: str) -> bool:
    """True only when the newest record for the purpose grants it (no record: no consent)."""
    latest = customer.consents.filter(purpose=purpose).order_by("-at", "-pk").first()
    return bool(latest and latest.granted)
