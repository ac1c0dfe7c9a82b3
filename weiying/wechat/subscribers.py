"""What the WeChat layer does when other layers change: a departure with a successor asks
WeCom to move the leaver's external contacts (see weiying.wechat.departure)."""

from __future__ import annotations

from weiying.core import events
from weiying.core.models import DomainEvent
from weiying.org.models import Employee


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
