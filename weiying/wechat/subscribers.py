"""What the WeChat layer does when other layers change.

- A departure with a successor asks WeCom to move the leaver's external contacts (see
  weiying.wechat.departure).
- Pushes: a WeCom card to the person who must act (weiying.wechat.push). Each push
  subscriber reads the subject as it is now (a lead given to someone else since the event
  tells the old owner nothing) and writes through push.enqueue with a key per event and
  recipient, so a replayed event never sends twice. The daily pushes live in
  weiying.wechat.jobs.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from collections.abc import Iterator
from typing import Any

from django.conf import settings
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from weiying.core import events
from weiying.core.models import DomainEvent
from weiying.core.money import format_cny
from weiying.customers.models import Customer
from weiying.org.models import Employee
from weiying.pipeline.choices import ContractStatus
from weiying.pipeline.models import Contract, FollowUp, Lead
from weiying.wechat import audience, push

logger = logging.getLogger(__name__)


@events.subscribe("employee.left")
def transfer_wecom_contacts(event: DomainEvent) -> None:
    from weiying.wechat import departure
    from weiying.wechat.client import NotConfigured

    successor_id = (event.data or {}).get("successor_id")
    if not successor_id:
        return
    leaver = Employee.objects.get(pk=int(event.subject_id))
    successor = Employee.objects.get(pk=successor_id)
    try:
        departure.request_transfers(leaver=leaver, successor=successor)
    except NotConfigured:
        return  # no WeCom here: nothing to move


# --- Pushes -----------------------------------------------------------------------------------
@contextlib.contextmanager
def in_company_language() -> Iterator[None]:
    """Messages are written in a background job: in the installation's language."""
    with translation.override(settings.LANGUAGE_CODE):
        yield


def local(at: dt.datetime) -> str:
    return timezone.localtime(at).strftime("%Y-%m-%d %H:%M")


def lead_card(lead: Lead) -> dict[str, Any]:
    with in_company_language():
        # Only the lines that say something: no "Company: —" for a person on their own.
        lines = []
        if lead.company_name:
            lines.append(_("Company: %(company)s") % {"company": lead.company_name})
        if lead.channel:
            lines.append(_("Source: %(source)s · channel: %(channel)s") % {
                "source": lead.get_source_display(), "channel": lead.channel})
        else:
            lines.append(_("Source: %(source)s") % {"source": lead.get_source_display()})
        if lead.interest:
            lines.append(_("Interested in: %(what)s") % {"what": lead.interest})
        return push.textcard(
            title=_("New lead for you: %(name)s") % {"name": lead.name},
            lines=lines, url=push.absolute_url("mobile:lead_detail", lead.pk),
            button=_("Details"),
        )


@events.subscribe("lead.assigned")
def push_lead_assigned(event: DomainEvent) -> None:
    owner_id = event.data.get("owner_id")
    lead = Lead.objects.select_related("owner").filter(pk=event.subject_id).first()
    if lead is None or owner_id is None or lead.owner_id != owner_id:
        return  # given to someone else since: the card would name a lead they no longer hold
    push.enqueue(kind="lead.assigned", employee=lead.owner, content=lead_card(lead),
                 dedup_key=f"lead.assigned:{lead.pk}:to:{owner_id}:{event.pk}")


@events.subscribe("customer.recycle_warning")
def push_recycle_warning(event: DomainEvent) -> None:
    owner_id = event.data.get("owner_id")
    customer = Customer.objects.select_related("owner").filter(pk=event.subject_id).first()
    if customer is None or customer.in_pool or customer.owner_id != owner_id:
        return
    due = event.data.get("due_at")
    due_text = timezone.localdate(dt.datetime.fromisoformat(due)).isoformat() if due else "—"
    with in_company_language():
        content = push.textcard(
            title=_("%(name)s is about to go back to the shared pool") % {"name": customer.name},
            lines=[
                _("Back to the pool on %(date)s unless you follow up.") % {"date": due_text},
                _("Last follow-up: %(date)s") % {
                    "date": local(customer.last_followup_at)
                    if customer.last_followup_at else _("never")},
            ],
            url=push.absolute_url("mobile:customer_detail", customer.pk), button=_("Details"),
        )
    push.enqueue(kind="customer.recycle_warning", employee=customer.owner, content=content,
                 dedup_key=f"customer.recycle_warning:{customer.pk}:to:{owner_id}:{event.pk}")


@events.subscribe("contract.submitted")
def push_approval_requested(event: DomainEvent) -> None:
    if event.data.get("auto_approved"):
        return
    contract = (Contract.objects.select_related("owner__department", "customer")
                .filter(pk=event.subject_id).first())
    if contract is None or contract.status != ContractStatus.PENDING_APPROVAL:
        return  # approved, rejected or withdrawn since
    with in_company_language():
        content = push.textcard(
            title=_("Approval requested: %(number)s") % {"number": contract.number},
            lines=[
                contract.title,
                _("Customer: %(name)s") % {"name": contract.customer.name},
                _("Total: %(amount)s, largest discount %(discount)s%%") % {
                    "amount": format_cny(contract.total),
                    "discount": f"{contract.max_discount * 100:.1f}"},
                _("Submitted by %(name)s") % {"name": contract.owner.name},
            ],
            url=push.absolute_url("mobile:contract_detail", contract.pk),
            button=_("Review"),
        )
    for approver in audience.approvers_for(contract):
        push.enqueue(kind="contract.submitted", employee=approver, content=content,
                     dedup_key=f"contract.submitted:{contract.pk}:{event.pk}:to:{approver.pk}")


@events.subscribe("followup.due")
def push_followup_due(event: DomainEvent) -> None:
    plan = (FollowUp.objects.select_related("owner", "customer", "lead")
            .filter(pk=event.subject_id).first())
    if plan is None or plan.next_done or plan.next_at is None:
        return  # done since
    subject = plan.customer or plan.lead
    key, pk = ("customer", plan.customer_id) if plan.customer_id else ("lead", plan.lead_id)
    with in_company_language():
        content = push.textcard(
            title=_("Follow up with %(name)s at %(time)s") % {
                "name": str(subject), "time": timezone.localtime(plan.next_at).strftime("%H:%M")},
            lines=[_("Last time: %(note)s") % {"note": plan.note}],
            url=push.absolute_url("mobile:followup_new", query=f"?{key}={pk}"),
            button=_("Log it"),
        )
    push.enqueue(kind="followup.due", employee=plan.owner, content=content,
                 dedup_key=f"followup.due:{plan.pk}:{int(plan.next_at.timestamp())}")


@events.subscribe("ticket.sla_breached")
def push_sla_breached(event: DomainEvent) -> None:
    """A service ticket past a deadline: its assignee and the person they answer to."""
    from weiying.pipeline.models import Ticket

    ticket = (Ticket.objects.select_related("owner__department", "owner__user", "customer")
              .filter(pk=event.subject_id).first())
    step = event.data.get("step")
    if ticket is None or ticket.owner is None or ticket.owner_id != event.data.get("owner_id"):
        return  # reassigned since: the new assignee's own deadline counts
    done = ticket.responded_at if step == "respond" else ticket.resolved_at
    if done is not None:
        return  # done since
    deadline = ticket.respond_by if step == "respond" else ticket.resolve_by
    with in_company_language():
        content = push.textcard(
            title=_("Past its deadline: %(number)s") % {"number": ticket.number},
            lines=[
                ticket.title,
                _("Customer: %(name)s") % {"name": ticket.customer.name},
                (_("The first response was due at %(time)s") if step == "respond"
                 else _("The resolution was due at %(time)s")) % {"time": local(deadline)},
                _("Assigned to %(name)s") % {"name": ticket.owner.name},
            ],
            url=push.absolute_url("pipeline:ticket_detail", ticket.pk), button=_("Open it"),
        )
    people = [ticket.owner]
    manager = audience.managers_of([ticket.owner]).get(ticket.owner_id)
    if manager is not None and manager.pk != ticket.owner_id and audience.sees(
            manager, Ticket, [ticket.pk]):
        people.append(manager)
    for person in people:
        push.enqueue(kind="ticket.sla_breached", employee=person, content=content,
                     dedup_key=f"ticket.sla_breached:{ticket.pk}:{step}:"
                               f"{int(deadline.timestamp())}:to:{person.pk}")


@events.subscribe("delivery_order.late")
def push_delivery_late(event: DomainEvent) -> None:
    """A delivery order past the day promised to the customer: its owner and the person they
    answer to."""
    from weiying.catalog.delivery import DeliveryOrder

    order = (DeliveryOrder.objects.select_related("owner__department", "owner__user",
                                                  "contract__customer")
             .filter(pk=event.subject_id).first())
    if order is None or order.owner is None or order.owner_id != event.data.get("owner_id"):
        return  # the contract changed hands since: the new owner hears of it on the page
    if not order.is_late(timezone.localdate()):
        return  # delivered or cancelled since
    with in_company_language():
        content = push.textcard(
            title=_("Delivery late: %(number)s") % {"number": order.number},
            lines=[
                _("Contract %(number)s · %(customer)s") % {
                    "number": order.contract.number, "customer": order.contract.customer.name},
                _("Promised for %(date)s; still %(status)s.") % {
                    "date": order.promised_on.isoformat(),
                    "status": str(order.get_status_display()).lower()},
                _("Owner: %(name)s") % {"name": order.owner.name},
            ],
            url=push.absolute_url("mobile:delivery_detail", order.pk), button=_("Open it"),
        )
    people = [order.owner]
    manager = audience.managers_of([order.owner]).get(order.owner_id)
    if manager is not None and manager.pk != order.owner_id and audience.sees(
            manager, DeliveryOrder, [order.pk]):
        people.append(manager)
    for person in people:
        push.enqueue(kind="delivery_order.late", employee=person, content=content,
                     dedup_key=f"delivery_order.late:{order.pk}:"
                               f"{order.promised_on.isoformat()}:to:{person.pk}")
