"""The performance layer listens to the spine, the HR history and the finance layer, and
keeps the daily facts in step (weiying.performance.facts). Each handler names the people
whose facts may have moved — the record's owner now, and the owner before when the event
says — and the measure families, and recomputes those: idempotent, so replays are harmless.
The nightly rebuild repairs anything an event could not name.

The finance layer books its movements in its own handlers of the same events; it is listed
before this app, so its handlers run first and the facts read what it booked.
"""

from __future__ import annotations

from typing import Any

from weiying.core.events import subscribe
from weiying.core.models import DomainEvent
from weiying.performance import facts

OWNER_KEYS = ("owner_id", "previous_owner_id", "from_owner_id")


def _people(event: DomainEvent, *current: Any) -> set[int]:
    found = {int(v) for k in OWNER_KEYS if (v := event.data.get(k))}
    found.update(int(v) for v in current if v)
    return found


def _owner(model_label: str, pk: Any, field: str = "owner_id") -> Any:
    from django.apps import apps

    model = apps.get_model(model_label)
    return model.objects.filter(pk=pk).values_list(field, flat=True).first()


@subscribe("lead.created")
@subscribe("lead.assigned")
@subscribe("lead.converted")
@subscribe("lead.disqualified")
def lead_changed(event: DomainEvent) -> None:
    facts.recompute(_people(event, _owner("pipeline.Lead", event.subject_id)), ["lead"])


@subscribe("followup.logged")
def followup_logged(event: DomainEvent) -> None:
    families = ["followup", "lead"] if event.data.get("lead_id") else ["followup"]
    facts.recompute(_people(event), families)


@subscribe("opportunity.created")
@subscribe("opportunity.stage_changed")
@subscribe("opportunity.won")
@subscribe("opportunity.lost")
@subscribe("opportunity.reassigned")
def opportunity_changed(event: DomainEvent) -> None:
    facts.recompute(_people(event, _owner("pipeline.Opportunity", event.subject_id)),
                    ["opportunity"])


def _contract_people(contract_id: Any) -> set[int]:
    """The owners of every contract of the contract's customer: whether a signing is the
    customer's first (a new customer) or a repeat depends on the others."""
    from weiying.pipeline.models import Contract

    customer = Contract.objects.filter(pk=contract_id).values_list("customer_id", flat=True)
    return set(Contract.objects.filter(customer_id__in=customer)
               .values_list("owner_id", flat=True).distinct()) - {None}


@subscribe("contract.signed")
@subscribe("contract.cancelled")
@subscribe("contract.completed")
def contract_changed(event: DomainEvent) -> None:
    facts.recompute(_contract_people(event.subject_id) | _people(event),
                    ["contract", "receipt", "finance"])


@subscribe("receipt.recorded")
def receipt_recorded(event: DomainEvent) -> None:
    owner = _owner("pipeline.Contract", event.data.get("contract_id"))
    facts.recompute(_people(event, owner), ["receipt", "finance"])


@subscribe("delivery.accepted")
@subscribe("delivery_order.accepted")
@subscribe("refund.recorded")
def finance_booked(event: DomainEvent) -> None:
    owner = _owner("pipeline.Contract", event.data.get("contract_id"))
    facts.recompute(_people(event, owner), ["finance"])


@subscribe("period.closed")
def period_closed(event: DomainEvent) -> None:
    # The close books a month of service revenue for every open service: rewrite the finance
    # facts in one pass rather than person by person.
    facts.rebuild(families=["finance"])


@subscribe("employee.transferred")
def employee_transferred(event: DomainEvent) -> None:
    # The HR history moved the days from the effective date on to the new department.
    facts.recompute([int(event.subject_id)])


@subscribe("department.moved")
def department_moved(event: DomainEvent) -> None:
    # The path copies of the facts move with the tree (one UPDATE per table).
    old, new = event.data.get("from_path"), event.data.get("to_path")
    if old and new:
        facts.move_paths(old, new)
