"""What the customers layer does when other layers change."""

from __future__ import annotations

from weiying.core import events
from weiying.core.models import DomainEvent
from weiying.customers import services
from weiying.org.models import Employee


@events.subscribe("employee.left")
def hand_over_to_successor(event: DomainEvent) -> None:
    """A leaver's customers go to the successor named on the departure (none: they stay
    until a manager hands them over). A replay finds nothing left to move."""
    successor_id = (event.data or {}).get("successor_id")
    if not successor_id:
        return
    leaver = Employee.objects.get(pk=int(event.subject_id))
    successor = Employee.objects.get(pk=successor_id)
    if successor.is_active:
        services.hand_over_customers(actor=None, from_employee=leaver, to_employee=successor)
