"""Leads (线索): capture, routing, assignment, disqualification and conversion.

A lead is born `new` (waiting in a team's queue) or `assigned` (it has an owner). The
follow-up service moves it to `contacted` on the first follow-up; `converted` and
`disqualified` are terminal. Every change checks the actor's permission and scope, writes
an audit row and emits a domain event in the same transaction.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from weiying.core import audit, events
from weiying.core.errors import InvalidTransition, NotFound, ValidationFailed
from weiying.core.masking import normalise_phone
from weiying.core.permissions import employee_of, has_perm, require
from weiying.core.scope import scoped, visible_employees
from weiying.customers.choices import Source
from weiying.org.choices import EmployeeStatus
from weiying.org.models import Department, Employee
from weiying.pipeline.choices import AssignmentKind, DisqualifyReason, LeadStatus
from weiying.pipeline.models import AssignmentRule, Lead

logger = logging.getLogger(__name__)

# A mainland mobile (1[3-9] + 9 digits), a landline with its area code (0 + 2–3 digits, then
# 7–8 digits, optionally an extension), or a 400/800 service number.
_MOBILE = re.compile(r"^1[3-9]\d{9}$")
_LANDLINE = re.compile(r"^0\d{9,11}(\d{1,6})?$")
_SERVICE = re.compile(r"^[48]00\d{7}$")
_WECHAT = re.compile(r"^[A-Za-z][-_A-Za-z0-9]{5,19}$|^1[3-9]\d{9}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

OPEN_STATUSES = (LeadStatus.NEW, LeadStatus.ASSIGNED, LeadStatus.CONTACTED)
_SNAPSHOT = ["name", "company_name", "phone", "wechat", "email", "city", "region", "source",
             "channel", "interest", "external_id", "status", "owner", "department",
             "customer"]


def is_valid_phone(digits: str) -> bool:
    """A normalised (digits only) Chinese mobile, landline or 400/800 number."""
    return bool(_MOBILE.match(digits) or _LANDLINE.match(digits) or _SERVICE.match(digits))


def _visible(queryset: Any, actor: Any) -> Any:
    """The system (actor None) sees everything; a person sees their scope."""
    return queryset if actor is None else scoped(queryset, actor)


def _locked(actor: Any, lead: Lead) -> Lead:
    """Re-read the lead under a row lock, inside the actor's scope (outside it: not found)."""
    locked = _visible(Lead.objects.select_for_update(of=("self",)), actor).filter(
        pk=lead.pk
    ).first()
    if locked is None:
        raise NotFound(_("That lead does not exist or is outside what you may see."))
    return locked


def _check_open(lead: Lead) -> None:
    if lead.status == LeadStatus.CONVERTED:
        raise InvalidTransition(
            _("This lead is already converted; work it on its customer instead."),
            code="lead_converted",
        )
    if lead.status == LeadStatus.DISQUALIFIED:
        raise InvalidTransition(
            _("This lead was disqualified; capture it again if the contact comes back."),
            code="lead_disqualified",
        )


def _text(value: Any, field: str, limit: int, label: str) -> str:
    text = str(value or "").strip()
    if len(text) > limit:
        raise ValidationFailed(
            _("%(field)s is too long (%(limit)s characters at most).")
            % {"field": label, "limit": limit},
            field=field,
        )
    return text


def clean_contact(
    *, name: str, phone: str = "", wechat: str = "", email: str = "", source: str = "form",
    reachable: bool = False,
) -> dict[str, str]:
    """The shared edge checks of a captured or imported lead; raises ValidationFailed.

    `reachable`: the contact can already be reached another way (a WeCom contact, an
    Official Account follower), so neither a phone nor a WeChat id is required."""
    name = _text(name, "name", 64, _("The name"))
    if not name:
        raise ValidationFailed(_("Enter the contact's name."), field="name")
    raw_phone = (phone or "").strip()
    digits = normalise_phone(raw_phone)
    wechat = _text(wechat, "wechat", 64, _("The WeChat id"))
    if not digits and not wechat and not reachable:
        raise ValidationFailed(
            _("Enter a phone number or a WeChat id, so the lead can be contacted."),
            field="phone",
        )
    if raw_phone and not is_valid_phone(digits):
        raise ValidationFailed(
            _("%(phone)s is not a valid mobile or landline number (e.g. 13812345678 or "
              "021-12345678).") % {"phone": raw_phone},
            field="phone",
        )
    email = _text(email, "email", 254, _("The email"))
    if email and not _EMAIL.match(email):
        raise ValidationFailed(
            _("%(email)s is not an email address.") % {"email": email}, field="email"
        )
    if source not in Source.values:
        raise ValidationFailed(
            _("Unknown source %(source)s; use one of: %(choices)s.")
            % {"source": source, "choices": ", ".join(Source.values)},
            field="source",
        )
    return {"name": name, "phone": digits, "wechat": wechat, "email": email, "source": source}


def _check_owner(actor: Any, owner: Employee) -> None:
    if owner.status == EmployeeStatus.LEFT:
        raise ValidationFailed(
            _("%(name)s has left the company; pick someone else.") % {"name": owner.name},
            field="owner",
        )
    if actor is None:
        return
    me = employee_of(actor)
    if me is not None and owner.pk == me.pk:
        return
    require(actor, "lead.assign")
    if not visible_employees(actor).filter(pk=owner.pk).exists():
        raise ValidationFailed(
            _("You may only give leads to people in your own scope."), field="owner"
        )


# --- Capture ---------------------------------------------------------------------------------
@transaction.atomic
def capture_lead(
    *, actor: Any, name: str, phone: str = "", company_name: str = "", wechat: str = "",
    email: str = "", city: str = "", region: str = "", source: str = "form", channel: str = "",
    interest: str = "", note: str = "", external_id: str | None = None,
    owner: Employee | None = None, department: Department | None = None,
    consent_at: dt.datetime | None = None, customer: Any = None, reachable: bool = False,
) -> Lead:
    """Record a new lead from a form, the API, WeChat or a person.

    The same `external_id` returns the existing lead unchanged (API retries). Without an
    owner, the assignment rules route it; a lead nobody is given waits in `department` (or
    the actor's department). `consent_at` (the web form's consent tick) goes to the audit row.
    `customer` links the lead to the customer it came in as (a WeChat add of a known
    contact); `reachable` says the contact is reachable without a phone or WeChat id (a
    WeCom contact, an Official Account follower) and is implied by a customer.
    """
    if actor is not None:
        require(actor, "lead.edit")
    external_id = (external_id or "").strip() or None
    if external_id is not None:
        if len(external_id) > 64:
            raise ValidationFailed(
                _("The external id is too long (64 characters at most)."), field="external_id"
            )
        existing = Lead.objects.filter(external_id=external_id).first()
        if existing is not None:
            return existing

    if customer is not None and actor is not None:
        from weiying.customers.models import Customer

        if not _visible(Customer.objects, actor).filter(pk=customer.pk).exists():
            raise NotFound(_("That customer does not exist or is outside what you may see."))
    contact = clean_contact(name=name, phone=phone, wechat=wechat, email=email, source=source,
                            reachable=reachable or customer is not None)
    fields = {
        **contact,
        "company_name": _text(company_name, "company_name", 128, _("The company")),
        "city": _text(city, "city", 64, _("The city")),
        "region": _text(region, "region", 64, _("The region")),
        "channel": _text(channel, "channel", 64, _("The channel")),
        "interest": _text(interest, "interest", 255, _("The interest")),
        "note": (note or "").strip(),
    }
    if owner is not None:
        _check_owner(actor, owner)

    now = timezone.now()
    lead = Lead(**fields, external_id=external_id, created_at=now, last_activity_at=now,
                status=LeadStatus.NEW, customer=customer)
    routed = False
    if owner is None:
        owner = apply_assignment_rules(lead)
        routed = owner is not None
    if owner is not None:
        lead.owner = owner
        lead.department_id = owner.department_id
        lead.status = LeadStatus.ASSIGNED
        lead.assigned_at = now
    else:
        me = employee_of(actor) if actor is not None else None
        lead.department = department or (me.department if me is not None else None)

    if external_id is not None:
        # Two retries racing with the same external id: the loser returns the winner's lead.
        try:
            with transaction.atomic():
                lead.save(force_insert=True)
        except IntegrityError:
            existing = Lead.objects.filter(external_id=external_id).first()
            if existing is None:
                raise
            return existing
    else:
        lead.save(force_insert=True)

    after = audit.snapshot(lead, _SNAPSHOT)
    if consent_at is not None:
        after = {**(after or {}), "consent_at": consent_at.isoformat()}
    audit.record(actor, "lead.create", lead, after=after)
    events.emit("lead.created", lead, actor=actor, source=lead.source, channel=lead.channel,
                owner_id=lead.owner_id, department_id=lead.department_id)
    if lead.owner_id is not None:
        events.emit("lead.assigned", lead, actor=actor, owner_id=lead.owner_id,
                    previous_owner_id=None, by_rule=routed)
    logger.info("lead captured", extra={"lead_id": lead.pk, "source": lead.source})
    return lead


# --- Routing and assignment ------------------------------------------------------------------
def rule_matches(rule: AssignmentRule, *, region: str, source: str) -> bool:
    if rule.kind == AssignmentKind.REGION:
        return bool(rule.match_region) and rule.match_region == (region or "").strip()
    if rule.kind == AssignmentKind.SOURCE:
        return bool(rule.match_source) and rule.match_source == source
    return rule.kind == AssignmentKind.ROUND_ROBIN


def eligible_reps(team_id: int) -> list[tuple[int, int]]:
    """(employee id, department id) of the team's active reps, in id order."""
    return list(
        Employee.objects.filter(department_id=team_id, role__code="rep")
        .exclude(status=EmployeeStatus.LEFT)
        .order_by("pk")
        .values_list("pk", "department_id")
    )


def next_in_turn(rep_ids: list[int], last_id: int | None) -> int:
    """The first rep after `last_id` in id order, wrapping round to the first."""
    if last_id is not None:
        for rep_id in rep_ids:
            if rep_id > last_id:
                return rep_id
    return rep_ids[0]


@transaction.atomic
def apply_assignment_rules(lead: Lead) -> Employee | None:
    """The rep the first matching active rule (by priority) gives `lead` to, or None.

    The chosen rule's pointer moves under a row lock, so concurrent captures take turns
    instead of landing on the same rep. A matching rule whose team has no active rep is
    skipped (and logged). The lead itself is not saved here.
    """
    for rule in AssignmentRule.objects.filter(is_active=True).order_by("priority", "pk"):
        if not rule_matches(rule, region=lead.region, source=lead.source):
            continue
        locked = AssignmentRule.objects.select_for_update().get(pk=rule.pk)
        reps = [rep_id for rep_id, _dept in eligible_reps(locked.team_id)]
        if not reps:
            logger.warning("assignment rule has no active rep", extra={"rule_id": rule.pk})
            continue
        chosen = next_in_turn(reps, locked.last_assigned_id)
        AssignmentRule.objects.filter(pk=locked.pk).update(last_assigned_id=chosen)
        return Employee.objects.select_related("department").get(pk=chosen)
    return None


@transaction.atomic
def assign_lead(*, actor: Any, lead: Lead, owner: Employee) -> Lead:
    """Give a lead to `owner` (someone the actor may see). Re-assigning to the same owner
    changes nothing."""
    if actor is not None:
        require(actor, "lead.assign")
    lead = _locked(actor, lead)
    _check_open(lead)
    if owner.status == EmployeeStatus.LEFT:
        raise ValidationFailed(
            _("%(name)s has left the company; pick someone else.") % {"name": owner.name},
            field="owner",
        )
    if actor is not None and not visible_employees(actor).filter(pk=owner.pk).exists():
        raise ValidationFailed(
            _("You may only give leads to people in your own scope."), field="owner"
        )
    if lead.owner_id == owner.pk:
        return lead

    before = audit.snapshot(lead, ["owner", "department", "status", "assigned_at"])
    previous = lead.owner_id
    now = timezone.now()
    lead.owner = owner
    lead.department_id = owner.department_id
    lead.assigned_at = now
    lead.last_activity_at = now
    if lead.status == LeadStatus.NEW:
        lead.status = LeadStatus.ASSIGNED
    lead.save(update_fields=["owner", "department", "assigned_at", "last_activity_at", "status"])
    audit.record(actor, "lead.assign", lead, before=before,
                 after=audit.snapshot(lead, ["owner", "department", "status", "assigned_at"]))
    events.emit("lead.assigned", lead, actor=actor, owner_id=owner.pk,
                previous_owner_id=previous, by_rule=False)
    return lead


# --- Disqualification ------------------------------------------------------------------------
@transaction.atomic
def disqualify_lead(*, actor: Any, lead: Lead, reason: str, note: str = "") -> Lead:
    """Close a lead as not worth pursuing; "other" needs a note saying why."""
    if actor is not None:
        require(actor, "lead.edit")
    if reason not in DisqualifyReason.values:
        raise ValidationFailed(_("Pick a reason for disqualifying this lead."), field="reason")
    note = (note or "").strip()
    if reason == DisqualifyReason.OTHER and not note:
        raise ValidationFailed(
            _("With the reason \"other\", write a note saying why."), field="note"
        )
    if len(note) > 255:
        raise ValidationFailed(_("The note is too long (255 characters at most)."),
                               field="note")
    lead = _locked(actor, lead)
    _check_open(lead)

    before = audit.snapshot(lead, ["status", "disqualify_reason", "disqualify_note"])
    lead.status = LeadStatus.DISQUALIFIED
    lead.disqualify_reason = reason
    lead.disqualify_note = note
    lead.last_activity_at = timezone.now()
    lead.save(update_fields=["status", "disqualify_reason", "disqualify_note",
                             "last_activity_at"])
    audit.record(actor, "lead.disqualify", lead, before=before,
                 after=audit.snapshot(lead, ["status", "disqualify_reason", "disqualify_note"]))
    events.emit("lead.disqualified", lead, actor=actor, reason=reason,
                owner_id=lead.owner_id)
    return lead


# --- Conversion ------------------------------------------------------------------------------
@transaction.atomic
def convert_lead(
    *, actor: Any, lead: Lead, customer: Any = None, create_opportunity: bool = True,
    opportunity_name: str = "", amount: Any = None, expected_close: dt.date | None = None,
) -> tuple[Any, Any]:
    """Turn a lead into a customer (new, the existing `customer` given, or else the one the
    lead came in as) and, unless told otherwise, an opportunity. A new customer that duplicates an existing one raises
    Conflict "duplicate_customer": offer to link the lead to that customer instead.

    The lead keeps its history (its follow-ups are also linked to the customer).
    """
    from weiying.customers.models import Customer
    from weiying.customers.services import create_customer
    from weiying.pipeline.services.opportunities import create_opportunity as open_opportunity

    if actor is not None:
        require(actor, "lead.edit")
    lead = _locked(actor, lead)
    _check_open(lead)

    if customer is None and lead.customer_id is not None:
        # The lead came in as a known customer (a WeCom add): convert to that one rather
        # than make a second record of the same person (one outside the actor's scope is
        # not theirs to use: a new customer then, as for any lead).
        customer = _visible(Customer.objects, actor).filter(pk=lead.customer_id).first()
    if customer is not None:
        customer = _visible(Customer.objects, actor).filter(pk=customer.pk).first()
        if customer is None:
            raise NotFound(_("That customer does not exist or is outside what you may see."))
        if customer.merged_into_id is not None:
            raise ValidationFailed(
                _("That customer was merged into another; link the lead to that one."),
                field="customer",
            )
    else:
        me = employee_of(actor) if actor is not None else None
        customer = create_customer(
            actor=actor, name=lead.company_name or lead.name,
            kind="company" if lead.company_name else "individual",
            phone=lead.phone, email=lead.email, owner=lead.owner or me,
            source=lead.source, channel=lead.channel, city=lead.city, region=lead.region,
            note=lead.note,
        )

    opportunity = None
    if create_opportunity:
        name = (opportunity_name or "").strip() or (
            f"{customer.name} · {lead.interest}" if lead.interest else customer.name
        )[:128]
        opportunity = open_opportunity(
            actor=actor, customer=customer, name=name,
            amount=amount if amount not in (None, "") else Decimal(0),
            expected_close=expected_close, owner=lead.owner, lead=lead,
        )

    before = audit.snapshot(lead, ["status", "customer", "opportunity", "converted_at"])
    now = timezone.now()
    lead.status = LeadStatus.CONVERTED
    lead.customer = customer
    lead.opportunity = opportunity
    lead.converted_at = now
    lead.last_activity_at = now
    lead.save(update_fields=["status", "customer", "opportunity", "converted_at",
                             "last_activity_at"])
    lead.followups.filter(customer__isnull=True).update(customer=customer)
    audit.record(actor, "lead.convert", lead, before=before,
                 after=audit.snapshot(lead, ["status", "customer", "opportunity",
                                             "converted_at"]))
    events.emit("lead.converted", lead, actor=actor, customer_id=customer.pk,
                opportunity_id=opportunity.pk if opportunity else None,
                owner_id=lead.owner_id, source=lead.source)
    return customer, opportunity


def may_assign(user: Any) -> bool:
    return has_perm(user, "lead.assign")


@transaction.atomic
def hand_over_leads(*, actor: Any, from_employee: Employee, to_employee: Employee) -> list[int]:
    """Give every open lead of `from_employee` (new, assigned or contacted) to `to_employee`,
    a departure's successor. One audit row for the hand-over, one "lead.assigned" event per
    lead; a replay finds nothing left to move. `actor` None is the system."""
    if actor is not None:
        require(actor, "lead.assign")
        if not visible_employees(actor).filter(pk=to_employee.pk).exists():
            raise ValidationFailed(
                _("You may only give leads to people in your own scope."), field="owner"
            )
    to_employee = Employee.objects.get(pk=to_employee.pk)
    if to_employee.status == EmployeeStatus.LEFT:
        raise ValidationFailed(
            _("%(name)s has left the company; pick someone else.") % {"name": to_employee.name},
            field="owner",
        )
    open_leads = _visible(Lead.objects.select_for_update(of=("self",)), actor).filter(
        owner=from_employee, status__in=OPEN_STATUSES)
    ids = sorted(open_leads.values_list("pk", flat=True))
    if not ids:
        return []
    now = timezone.now()
    Lead.objects.filter(pk__in=ids).update(
        owner=to_employee, department=to_employee.department_id, assigned_at=now,
        last_activity_at=now)
    Lead.objects.filter(pk__in=ids, status=LeadStatus.NEW).update(status=LeadStatus.ASSIGNED)
    audit.record(actor, "lead.hand_over", from_employee, before={"owner": from_employee.pk},
                 after={"owner": to_employee.pk, "leads": ids})
    for pk in ids:
        events.emit("lead.assigned", Lead(pk=pk), actor=actor, owner_id=to_employee.pk,
                    previous_owner_id=from_employee.pk, by_rule=False, hand_over=True)
    return ids
