"""What the pipeline does when other layers change."""

from __future__ import annotations

from weiying.core import events
from weiying.core.models import DomainEvent
from weiying.org.models import Employee
from weiying.pipeline.services.leads import hand_over_leads
from weiying.pipeline.services.opportunities import hand_over_opportunities


@events.subscribe("employee.left")
def hand_over_to_successor(event: DomainEvent) -> None:
    """A leaver's open opportunities and open leads go to the successor named on the
    departure. Won, lost, converted and disqualified ones keep their owner's name."""
    successor_id = (event.data or {}).get("successor_id")
    if not successor_id:
        return
    leaver = Employee.objects.get(pk=int(event.subject_id))
    successor = Employee.objects.get(pk=successor_id)
    if successor.is_active:
        hand_over_opportunities(actor=None, from_employee=leaver, to_employee=successor)
        hand_over_leads(actor=None, from_employee=leaver, to_employee=successor)
