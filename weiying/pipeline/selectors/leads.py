"""Reads of leads, always through the caller's data scope."""

from __future__ import annotations

from typing import Any

from django.db.models import Q, QuerySet

from weiying.core.errors import NotFound, ValidationFailed
from weiying.core.masking import normalise_phone
from weiying.core.pagination import Page, keyset_page
from weiying.core.scope import scoped
from weiying.pipeline.choices import LeadStatus
from weiying.pipeline.models import FollowUp, Lead

# Public sort key -> ordering; the last field is unique so keyset paging is exact.
SORTS: dict[str, list[str]] = {
    "-activity": ["-last_activity_at", "-id"],
    "-created": ["-created_at", "-id"],
    "name": ["name", "id"],
}
# "No response yet": an open lead nobody has logged a follow-up on.
NO_RESPONSE = "no_response"


def _search(q: str) -> Q:
    """Name or company contains the text; a phone matches whole numbers only, so masked
    numbers cannot be guessed digit by digit."""
    q = q.strip()
    cond = Q(name__icontains=q) | Q(company_name__icontains=q)
    digits = normalise_phone(q)
    if len(digits) >= 7 and len(digits) == len(q.replace("-", "").replace(" ", "")):
        cond |= Q(phone=digits)
    return cond


def leads_queryset(
    user: Any, *, q: str = "", status: str = "", source: str = "", owner_id: Any = None,
    department_id: Any = None,
) -> QuerySet[Lead]:
    """The scoped, filtered leads (no ordering, no paging)."""
    qs = scoped(Lead.objects.all(), user)
    if status == NO_RESPONSE:
        qs = qs.filter(first_response_at__isnull=True,
                       status__in=[LeadStatus.NEW, LeadStatus.ASSIGNED])
    elif status:
        qs = qs.filter(status=status)
    if source:
        qs = qs.filter(source=source)
    if owner_id not in (None, ""):
        qs = qs.filter(owner_id=_int(owner_id, "owner_id"))
    if department_id not in (None, ""):
        qs = qs.filter(department_id=_int(department_id, "department_id"))
    if q and q.strip():
        qs = qs.filter(_search(q))
    return qs


def _int(value: Any, field: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        from django.utils.translation import gettext as _

        raise ValidationFailed(_("%(field)s must be a number.") % {"field": field},
                               field=field) from None


def list_leads(
    user: Any, *, q: str = "", status: str = "", source: str = "", owner_id: Any = None,
    department_id: Any = None, sort: str = "-activity", cursor: str | None = None,
    size: int = 50,
) -> Page:
    """One keyset page of the leads `user` may see.

    Query cost: one query for the page (plus one for the user's employee and role, cached
    on the user); never a COUNT over the set. The scope filter is an indexed range on the
    department path and the ordering walks lead_activity_idx / lead_owner_act_idx.
    `status="no_response"` lists open leads without a first response.
    """
    ordering = SORTS.get(sort, SORTS["-activity"])
    qs = leads_queryset(user, q=q, status=status, source=source, owner_id=owner_id,
                        department_id=department_id).select_related("owner")
    return keyset_page(qs, ordering, cursor=cursor, size=size)


def lead_detail(user: Any, pk: Any) -> Lead:
    """One lead the user may see, with its owner, team, customer and opportunity."""
    try:
        pk = int(pk)
    except (TypeError, ValueError):
        raise NotFound() from None
    lead = (
        scoped(Lead.objects.all(), user)
        .select_related("owner", "department", "customer", "opportunity")
        .filter(pk=pk)
        .first()
    )
    if lead is None:
        raise NotFound()
    return lead


def lead_followups(user: Any, lead: Lead, *, limit: int = 50) -> list[FollowUp]:
    """The newest follow-ups on the lead that the user may see."""
    return list(
        scoped(FollowUp.objects.filter(lead=lead), user)
        .select_related("owner")
        .order_by("-at", "-id")[:limit]
    )
