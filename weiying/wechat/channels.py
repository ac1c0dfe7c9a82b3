"""Channel codes (渠道活码) and their attribution.

A channel is a WeCom "contact way" (externalcontact/add_contact_way) carrying a `state`, or
an Official Account parametric QR code (weiying.wechat.oa) whose scene is the state. When a
customer adds a rep through the code (or scans the OA code), WeChat hands the state back;
`record_arrival` turns that into one ChannelArrival and one lead attributed to the channel.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from weiying.core import audit, events
from weiying.customers.choices import Source
from weiying.customers.models import Customer
from weiying.org.choices import EmployeeStatus
from weiying.org.models import Employee
from weiying.wechat.models import Channel, ChannelArrival

logger = logging.getLogger(__name__)


# --- Arrivals --------------------------------------------------------------------------------
def record_arrival(
    *, state: str, external_id: str, employee: Employee | None, customer: Customer | None,
    at: dt.datetime,
) -> ChannelArrival | None:
    """Record that `external_id` arrived through the active channel whose state is `state`.

    Returns None when no active channel has that state (a personal QR code, an old code).
    The arrival is created once per (channel, external id): a repeat returns the existing one
    and changes nothing. A new arrival creates the lead (source WeCom or Official Account,
    attributed to the channel, owned by the employee who was added), linked to the customer.
    Runs in the caller's transaction (an inbox handler's); the system is the actor.
    """
    state = (state or "").strip()
    if not state or not external_id:
        return None
    channel = Channel.objects.filter(state=state, is_active=True).first()
    if channel is None:
        return None
    existing = ChannelArrival.objects.filter(channel=channel, external_id=external_id).first()
    if existing is not None:
        return existing
    try:
        with transaction.atomic():
            arrival = ChannelArrival.objects.create(
                channel=channel, external_id=external_id, employee=employee,
                customer=customer, at=at,
            )
    except IntegrityError:
        # A concurrent delivery of the same add won the race: theirs is the arrival.
        return ChannelArrival.objects.get(channel=channel, external_id=external_id)

    arrival.lead = _arrival_lead(channel, arrival, employee, customer)
    arrival.save(update_fields=["lead"])
    audit.record(None, "wechat.channel_arrival", arrival, after={
        "channel": channel.pk, "state": channel.state, "employee": arrival.employee_id,
        "customer": arrival.customer_id, "lead": arrival.lead_id,
    })
    events.emit("channel.arrived", arrival, channel_id=channel.pk, lead_id=arrival.lead_id,
                employee_id=arrival.employee_id, customer_id=arrival.customer_id)
    logger.info("channel arrival", extra={"channel_id": channel.pk, "lead_id": arrival.lead_id})
    return arrival


def _arrival_lead(channel: Channel, arrival: ChannelArrival, employee: Employee | None,
                  customer: Customer | None) -> Any:
    from weiying.pipeline.services.leads import capture_lead

    oa = channel.kind == Channel.Kind.OA
    owner = employee if employee is not None and employee.status != EmployeeStatus.LEFT else None
    if customer is not None:
        name = customer.name[:64]
    else:
        name = _("WeChat contact %(id)s") % {"id": arrival.external_id[-6:]}
    prefix = "oa" if oa else "wecom"
    return capture_lead(
        actor=None, name=name, source=Source.OFFICIAL_ACCOUNT if oa else Source.WECOM,
        channel=channel.name, owner=owner,
        department=None if owner is not None else channel.department,
        external_id=f"{prefix}:{arrival.external_id}"[:64], customer=customer, reachable=True,
    )
