"""Follow-ups (跟进记录): every touch with a customer or lead, and the next one planned."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import transaction
from django.db.models import Min
from django.db.models.functions import Greatest
from django.utils import timezone
from django.utils.translation import gettext as _

from weiying.core import audit, events
from weiying.core.errors import NotFound, ValidationFailed
from weiying.core.permissions import employee_of, require
from weiying.core.scope import scoped
from weiying.customers.choices import FollowStatus
from weiying.customers.models import Customer
from weiying.pipeline.choices import FollowUpKind, LeadStatus
from weiying.pipeline.models import FollowUp, Lead, Opportunity

NOTE_MAX = 4000


def _seconds_between(start: dt.datetime, end: dt.datetime) -> int:
    return max(0, int((end - start).total_seconds()))


@transaction.atomic
def log_followup(
    *, actor: Any, kind: str, note: str, at: dt.datetime | None = None,
    customer: Customer | None = None, lead: Lead | None = None,
    opportunity: Opportunity | None = None, next_at: dt.datetime | None = None,
) -> FollowUp:
    """Record a follow-up by the actor and bring the customer, lead and opportunity up to date.

    In the same transaction: the customer's last/next follow-up and activity times (and "new"
    becomes "contacted"); the lead's activity time, its first response (once, from
    assignment) and "new"/"assigned" becoming "contacted"; the opportunity's activity time.
    The owner's earlier planned follow-ups on the same customer or lead are marked done: this
    follow-up supersedes them, so one plan stays open at a time.
    """
    me = employee_of(actor)
    if me is None:
        raise ValidationFailed(
            _("Only an employee can log a follow-up; link your login to an employee first.")
        )
    require(actor, "customer.edit" if customer is not None or lead is None else "lead.edit")

    if kind not in FollowUpKind.values:
        raise ValidationFailed(_("Choose how you followed up (call, visit, WeChat…)."),
                               field="kind")
    note = (note or "").strip()
    if not note:
        raise ValidationFailed(_("Write a note about what was said or agreed."), field="note")
    if len(note) > NOTE_MAX:
        raise ValidationFailed(
            _("The note is too long (%(max)s characters at most).") % {"max": NOTE_MAX},
            field="note",
        )
    now = timezone.now()
    at = at or now
    if timezone.is_naive(at) or (next_at is not None and timezone.is_naive(next_at)):
        raise ValidationFailed(_("Give times with their time zone."), field="at")
    if at > now:
        raise ValidationFailed(
            _("A follow-up cannot be in the future; plan it as the next follow-up instead."),
            field="at",
        )
    if next_at is not None and next_at <= at:
        raise ValidationFailed(
            _("The next follow-up must be later than this one."), field="next_at"
        )

    if opportunity is not None:
        opportunity = scoped(Opportunity.objects, actor).filter(pk=opportunity.pk).first()
        if opportunity is None:
            raise NotFound(_("That opportunity does not exist or is outside what you may see."))
        if customer is None:
            customer = opportunity.customer
        elif opportunity.customer_id != customer.pk:
            raise ValidationFailed(
                _("That opportunity belongs to another customer."), field="opportunity"
            )
    if customer is None and lead is None:
        raise ValidationFailed(_("Choose the customer or lead you followed up."),
                               field="customer")
    if customer is None and lead is not None and lead.customer_id is not None:
        # A lead that came in as a known customer (a WeCom add through a channel code):
        # following up the lead is following up the customer, so the customer's timeline,
        # last follow-up and pool clock move too. Outside the actor's scope: the lead only.
        customer = scoped(Customer.objects.all(), actor).filter(pk=lead.customer_id).first()
    if customer is not None:
        customer = (
            scoped(Customer.objects.select_for_update(of=("self",)), actor)
            .filter(pk=customer.pk).first()
        )
        if customer is None:
            raise NotFound(_("That customer does not exist or is outside what you may see."))
    if lead is not None:
        lead = (
            scoped(Lead.objects.select_for_update(of=("self",)), actor)
            .filter(pk=lead.pk).first()
        )
        if lead is None:
            raise NotFound(_("That lead does not exist or is outside what you may see."))

    followup = FollowUp.objects.create(
        kind=kind, note=note, at=at, next_at=next_at, customer=customer, lead=lead,
        opportunity=opportunity, owner=me,
    )

    # 1. Earlier plans of this owner on the same customer or lead are superseded.
    subject = {"customer": customer} if customer is not None else {"lead": lead}
    superseded = (
        FollowUp.objects.filter(owner=me, next_done=False, next_at__isnull=False, **subject)
        .exclude(pk=followup.pk)
        .update(next_done=True)
    )

    # 2. The customer: times move forward only (a back-dated note does not rewind them).
    first_response = False
    if customer is not None:
        next_plan = FollowUp.objects.filter(
            customer=customer, next_done=False, next_at__isnull=False
        ).aggregate(m=Min("next_at"))["m"]
        Customer.objects.filter(pk=customer.pk).update(
            last_followup_at=_later(customer.last_followup_at, at),
            last_activity_at=_later(customer.last_activity_at, at),
            next_followup_at=next_plan,
        )
        Customer.objects.filter(pk=customer.pk, status=FollowStatus.NEW).update(
            status=FollowStatus.CONTACTED
        )

    # 3. The lead: first response is set once, by a conditional update, so two reps logging
    #    at the same moment cannot both claim it.
    if lead is not None:
        Lead.objects.filter(pk=lead.pk).update(last_activity_at=Greatest("last_activity_at", at))
        started = lead.assigned_at or lead.created_at
        first_response = bool(
            Lead.objects.filter(pk=lead.pk, first_response_at__isnull=True).update(
                first_response_at=at, first_response_seconds=_seconds_between(started, at)
            )
        )
        Lead.objects.filter(
            pk=lead.pk, status__in=[LeadStatus.NEW, LeadStatus.ASSIGNED]
        ).update(status=LeadStatus.CONTACTED)

    # 4. The opportunity.
    if opportunity is not None:
        Opportunity.objects.filter(pk=opportunity.pk).update(
            last_activity_at=Greatest("last_activity_at", at)
        )

    audit.record(actor, "followup.log", followup, after=audit.snapshot(followup))
    events.emit(
        "followup.logged", followup, actor=actor, kind=kind, at=at, next_at=next_at,
        owner_id=me.pk, customer_id=customer.pk if customer else None,
        lead_id=lead.pk if lead else None,
        opportunity_id=opportunity.pk if opportunity else None,
        first_response=first_response, superseded=superseded,
    )
    return followup


def _later(current: dt.datetime | None, candidate: dt.datetime) -> dt.datetime:
    return candidate if current is None or candidate > current else current


@transaction.atomic
def mark_next_done(*, actor: Any, followup: FollowUp) -> FollowUp:
    """Dismiss a planned follow-up without logging a new one (e.g. the customer cancelled)."""
    me = employee_of(actor)
    row = scoped(FollowUp.objects.select_for_update(of=("self",)), actor).filter(
        pk=followup.pk
    ).first()
    if row is None:
        raise NotFound()
    if me is None or row.owner_id != me.pk:
        raise ValidationFailed(_("Only the person who planned a follow-up can dismiss it."))
    if row.next_done or row.next_at is None:
        return row
    row.next_done = True
    row.save(update_fields=["next_done"])
    if row.customer_id:
        next_plan = FollowUp.objects.filter(
            customer_id=row.customer_id, next_done=False, next_at__isnull=False
        ).aggregate(m=Min("next_at"))["m"]
        Customer.objects.filter(pk=row.customer_id).update(next_followup_at=next_plan)
    audit.record(actor, "followup.dismiss", row, before={"next_done": False},
                 after={"next_done": True})
    return row
