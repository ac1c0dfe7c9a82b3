"""Desktop pages for service tickets: list, detail with SLA timers and history, new, actions."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from weiying.core.errors import Conflict, ValidationFailed
from weiying.core.scope import scoped, visible_employees
from weiying.customers.models import Customer
from weiying.org.choices import EmployeeStatus
from weiying.pipeline.choices import TicketPriority, TicketStatus
from weiying.pipeline.models import Contract, Ticket
from weiying.pipeline.selectors import tickets as selectors
from weiying.pipeline.services import tickets as services
from weiying.web.errors import domain_errors, scoped_or_404
from weiying.web.exports import Column, export_links, export_response, name_of, wants_export
from weiying.web.lists import list_page, whole_list

# Limitation: pickers list at most this many people; someone further away is assigned
# through the API (POST /api/tickets/{id}/reassign) meanwhile.
PICKER_LIMIT = 200


def time_left(seconds: int) -> str:
    """A deadline's distance, e.g. 2h 05min, or "2h 05min overdue" once it has passed."""
    late = seconds < 0
    seconds = abs(int(seconds))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        text = _("%(d)sd %(h)sh") % {"d": days, "h": hours}
    elif hours:
        text = _("%(h)sh %(m)02dmin") % {"h": hours, "m": minutes}
    else:
        text = _("%(m)smin") % {"m": minutes}
    return _("%(time)s overdue") % {"time": text} if late else text


def _people(user: Any) -> list[Any]:
    return list(
        visible_employees(user).exclude(status=EmployeeStatus.LEFT)
        .select_related("department").order_by("department__path", "name")[:PICKER_LIMIT]
    )


def _sla_view(ticket: Ticket, now: dt.datetime) -> dict[str, Any]:
    state = selectors.sla_state(ticket, now)
    return {
        **state,
        "respond_text": time_left(state["respond_left_seconds"]),
        "resolve_text": time_left(state["resolve_left_seconds"]),
    }


# --- list -----------------------------------------------------------------------------------
_SLA_LABELS = {"met": gettext_lazy("Met"), "breached": gettext_lazy("Breached"),
               "due": gettext_lazy("Due")}


def _export_columns(now: dt.datetime) -> list[Column]:
    """The columns of the tickets export (?export=csv|xlsx); SLA states as of `now`."""

    def sla(ticket: Ticket, step: str) -> str:
        return str(_SLA_LABELS[selectors.sla_state(ticket, now)[step]])

    return [
        (gettext_lazy("Number"), lambda t: t.number),
        (gettext_lazy("Title"), lambda t: t.title),
        (gettext_lazy("Customer"), lambda t: t.customer.name),
        (gettext_lazy("Contract"), lambda t: t.contract.number if t.contract else ""),
        (gettext_lazy("Priority"), lambda t: t.get_priority_display()),
        (gettext_lazy("Status"), lambda t: t.get_status_display()),
        (gettext_lazy("Assignee"), lambda t: name_of(t.owner)),
        (gettext_lazy("Opened"), lambda t: t.opened_at),
        (gettext_lazy("Respond by"), lambda t: t.respond_by),
        (gettext_lazy("Response"), lambda t: sla(t, "respond")),
        (gettext_lazy("Resolve by"), lambda t: t.resolve_by),
        (gettext_lazy("Resolution"), lambda t: sla(t, "resolve")),
        (gettext_lazy("Resolved at"), lambda t: t.resolved_at),
        (gettext_lazy("Closed at"), lambda t: t.closed_at),
    ]


@login_required
@domain_errors
def ticket_list(request: HttpRequest) -> HttpResponse:
    g = request.GET
    now = timezone.now()
    qs = selectors.filter_tickets(
        request.user, now=now,
        status=g.get("status", "") if g.get("status") in TicketStatus.values else "",
        priority=g.get("priority", "") if g.get("priority") in TicketPriority.values else "",
        sla=g.get("sla", "") if g.get("sla") in selectors.SLA_FILTERS else "",
        owner_id=int(g["owner"]) if g.get("owner", "").isdigit() else None,
        customer_id=int(g["customer"]) if g.get("customer", "").isdigit() else None,
        q=g.get("q", "")[:64],
    )
    fmt = wants_export(request)
    if fmt:
        qs = whole_list(request, qs.select_related("customer", "owner", "contract"),
                        sorts=selectors.TICKET_SORTS, default=selectors.DEFAULT_SORT)
        return export_response(request, qs, _export_columns(now), name="tickets", fmt=fmt)
    state = list_page(request, qs, sorts=selectors.TICKET_SORTS, default=selectors.DEFAULT_SORT)
    rows = [{"ticket": t, "sla": _sla_view(t, now)} for t in state.page.items]
    return render(request, "pipeline/ticket_list.html", {
        "state": state, "rows": rows, "statuses": TicketStatus.choices,
        "priorities": TicketPriority.choices, "people": _people(request.user),
        "sla_filters": [("breached", _("Breached")), ("due_soon", _("Due within 2 h"))],
        "sort_choices": [
            ("-opened", _("Newest first")), ("opened", _("Oldest first")),
            ("respond_by", _("Respond by")), ("resolve_by", _("Resolve by")),
        ],
        "next_url": state.with_params(after=state.page.next_cursor),
        "first_url": state.with_params(),
        "export_links": export_links(request),
    })


# --- detail ---------------------------------------------------------------------------------
_ACTION_LABELS = {
    "start": gettext_lazy("Start work"),
    "wait": gettext_lazy("Wait for the customer"),
    "resolve": gettext_lazy("Resolve"),
    "close": gettext_lazy("Close"),
    "reopen": gettext_lazy("Reopen"),
}
_HISTORY_LABELS = {
    "ticket.open": gettext_lazy("Opened"),
    "ticket.start": gettext_lazy("Work started"),
    "ticket.wait": gettext_lazy("Waiting for the customer"),
    "ticket.resolve": gettext_lazy("Resolved"),
    "ticket.close": gettext_lazy("Closed"),
    "ticket.reopen": gettext_lazy("Reopened"),
    "ticket.reassign": gettext_lazy("Reassigned"),
    "ticket.priority": gettext_lazy("Priority changed"),
}


def _history(ticket: Ticket) -> list[dict[str, Any]]:
    entries = []
    for row in selectors.ticket_history(ticket):
        after = row.after or {}
        employee = getattr(row.actor, "employee", None) if row.actor_id else None
        entries.append({
            "at": row.at,
            "label": _HISTORY_LABELS.get(row.action, row.action),
            "who": employee.name if employee else (row.actor.username if row.actor else ""),
            "status": after.get("status", ""),
            "note": after.get("reason") or (after.get("resolution")
                                            if row.action == "ticket.resolve" else ""),
            "priority": after.get("priority", "") if row.action == "ticket.priority" else "",
        })
    return entries


@login_required
@domain_errors
def ticket_detail(request: HttpRequest, pk: int) -> HttpResponse:
    ticket = selectors.get_ticket(request.user, pk)
    now = timezone.now()
    actions = [(a, _ACTION_LABELS[a]) for a in services.allowed_actions(ticket)]
    return render(request, "pipeline/ticket_detail.html", {
        "ticket": ticket, "sla": _sla_view(ticket, now), "actions": actions,
        "history": _history(ticket), "people": _people(request.user),
        "priorities": TicketPriority.choices,
        "can_change": ticket.status != TicketStatus.CLOSED,
    })


@require_POST
@login_required
@domain_errors
def ticket_action(request: HttpRequest, pk: int) -> HttpResponse:
    ticket = selectors.get_ticket(request.user, pk)
    action = request.POST.get("action", "")
    p = request.POST
    done = {
        "start": _("Work on the ticket has started."),
        "wait": _("The ticket now waits for the customer."),
        "resolve": _("The ticket is resolved."),
        "close": _("The ticket is closed."),
        "reopen": _("The ticket is open again."),
        "reassign": _("The ticket has a new assignee."),
        "priority": _("The priority is changed and the deadlines recomputed."),
    }
    try:
        if action == "start":
            services.start_ticket(actor=request.user, ticket=ticket)
        elif action == "wait":
            services.wait_for_customer(actor=request.user, ticket=ticket)
        elif action == "resolve":
            services.resolve_ticket(actor=request.user, ticket=ticket,
                                    resolution=p.get("resolution", ""))
        elif action == "close":
            services.close_ticket(actor=request.user, ticket=ticket)
        elif action == "reopen":
            services.reopen_ticket(actor=request.user, ticket=ticket, reason=p.get("reason", ""))
        elif action == "reassign":
            owner = None
            if p.get("owner", "").isdigit():
                owner = visible_employees(request.user).filter(pk=int(p["owner"])).first()
            if owner is None:
                raise ValidationFailed(_("Choose whom to assign the ticket to."), field="owner")
            services.reassign_ticket(actor=request.user, ticket=ticket, owner=owner)
        elif action == "priority":
            services.change_priority(actor=request.user, ticket=ticket,
                                     priority=p.get("priority", ""))
        else:
            raise ValidationFailed(_("Unknown action; use one of the buttons on the page."))
    except (ValidationFailed, Conflict) as exc:
        messages.error(request, str(exc.message))
    else:
        messages.success(request, done[action])
    return redirect("pipeline:ticket_detail", pk=ticket.pk)


# --- new ------------------------------------------------------------------------------------
class TicketForm(forms.Form):
    title = forms.CharField(label=gettext_lazy("Title"), max_length=128)
    description = forms.CharField(label=gettext_lazy("Description"), required=False,
                                  widget=forms.Textarea(attrs={"rows": 5}))
    priority = forms.ChoiceField(label=gettext_lazy("Priority"), choices=TicketPriority.choices,
                                 initial=TicketPriority.NORMAL)
    contract = forms.ModelChoiceField(label=gettext_lazy("Contract"), required=False,
                                      queryset=Contract.objects.none())

    def __init__(self, *args: Any, customer: Customer, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["contract"].queryset = scoped(
            Contract.objects.filter(customer=customer), user
        ).order_by("-created_at")


@login_required
@domain_errors
def ticket_new(request: HttpRequest) -> HttpResponse:
    raw = request.GET.get("customer") or request.POST.get("customer") or ""
    if not raw.isdigit():
        # No customer yet: let the user find one of theirs first.
        q = request.GET.get("q", "").strip()[:64]
        found = []
        if q:
            found = list(scoped(Customer.objects.filter(name__icontains=q), request.user)
                         .order_by("name", "pk")[:20])
        return render(request, "pipeline/ticket_new.html", {"q": q, "found": found})

    customer = scoped_or_404(Customer.objects.select_related("owner"), request.user,
                             pk=int(raw))
    form = TicketForm(request.POST or None, customer=customer, user=request.user)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            ticket = services.open_ticket(
                actor=request.user, customer=customer, title=data["title"],
                description=data["description"], priority=data["priority"],
                contract=data["contract"],
            )
        except ValidationFailed as exc:
            form.add_error(exc.field if exc.field in form.fields else None, str(exc.message))
        else:
            messages.success(request, _("Ticket %(number)s is open.") % {"number": ticket.number})
            return redirect(reverse("pipeline:ticket_detail", args=[ticket.pk]))
    return render(request, "pipeline/ticket_new.html", {"customer": customer, "form": form})


urlpatterns = [
    path("tickets/", ticket_list, name="ticket_list"),
    path("tickets/new/", ticket_new, name="ticket_new"),
    path("tickets/<int:pk>/", ticket_detail, name="ticket_detail"),
    path("tickets/<int:pk>/action/", ticket_action, name="ticket_action"),
]
