"""Channel codes (渠道活码) and their attribution.

A channel is a WeCom "contact way" (externalcontact/add_contact_way) carrying a `state`, or
an Official Account parametric QR code (weiying.wechat.oa) whose scene is the state. When a
customer adds a rep through the code (or scans the OA code), WeChat hands the state back;
`record_arrival` turns that into one ChannelArrival and one lead attributed to the channel.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import secrets
from collections.abc import Iterable
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import (
    Count,
    DecimalField,
    Exists,
    F,
    Func,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
)
from django.utils.translation import gettext as _

from weiying.core import audit, events
from weiying.core.errors import Conflict, InvalidTransition, NotFound, ValidationFailed
from weiying.core.money import MONEY_FIELD, money
from weiying.core.permissions import employee_of, require
from weiying.core.scope import scoped, visible_employees
from weiying.customers.choices import Source
from weiying.customers.models import Customer
from weiying.org.choices import EmployeeStatus
from weiying.org.models import Department, Employee
from weiying.wechat import client
from weiying.wechat.models import Channel, ChannelArrival

logger = logging.getLogger(__name__)

# Managers set channels up: a channel decides who receives the leads it brings, which is
# lead assignment (a rep may not route leads to others), so it takes "lead.assign".
PERMISSION = "lead.assign"
STATE_MAX = 30  # WeCom's limit for add_contact_way's state
_STATE = re.compile(r"^[A-Za-z0-9_-]+$")
_SNAPSHOT = ["kind", "name", "state", "cost", "owner", "department", "config_id", "qr_url",
             "skip_verify", "is_active"]


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


# --- Management ------------------------------------------------------------------------------
def clean_name(name: str) -> str:
    name = (name or "").strip()
    if not name:
        raise ValidationFailed(_("Enter the channel's name."), field="name")
    if len(name) > 64:
        raise ValidationFailed(_("The name is too long (64 characters at most)."), field="name")
    return name


def clean_cost(cost: Any) -> Decimal:
    try:
        value = Decimal(str(cost if cost not in (None, "") else "0"))
    except (InvalidOperation, ValueError):
        raise ValidationFailed(
            _("The cost must be an amount in yuan, e.g. 1200 or 1200.50."), field="cost"
        ) from None
    if not value.is_finite() or value < 0:
        raise ValidationFailed(
            _("The cost cannot be negative; enter 0 for a free channel."), field="cost"
        )
    return money(value)


def clean_state(state: str, *, limit: int = STATE_MAX) -> str:
    """A state the actor typed (checked) or, when empty, a new random one."""
    state = (state or "").strip()
    if not state:
        return "ch" + secrets.token_hex(8)
    if len(state) > limit:
        raise ValidationFailed(
            _("The state is %(length)s characters long; WeChat accepts at most %(limit)s. "
              "Shorten it or leave it empty to have one generated.")
            % {"length": len(state), "limit": limit},
            field="state",
        )
    if not _STATE.match(state):
        raise ValidationFailed(
            _("The state may hold only letters, digits, - and _; change it or leave it empty "
              "to have one generated."),
            field="state",
        )
    if Channel.objects.filter(state=state).exists():
        raise Conflict(
            _("Another channel already uses the state %(state)s; choose another one.")
            % {"state": state},
            code="state_taken", field="state",
        )
    return state


def _clean_people(actor: Any, members: Iterable[Employee], teams: Iterable[Department]
                  ) -> tuple[list[Employee], list[Department]]:
    """The reps and teams behind a WeCom code: inside the actor's scope, in WeCom."""
    from weiying.org.selectors import visible_departments

    member_ids = {m.pk for m in members}
    team_ids = {t.pk for t in teams}
    found = list(visible_employees(actor).filter(pk__in=member_ids).order_by("pk"))
    if len(found) != len(member_ids):
        raise ValidationFailed(
            _("You may only put people in your own scope behind a channel."), field="members"
        )
    found_teams = list(visible_departments(actor).filter(pk__in=team_ids).order_by("pk"))
    if len(found_teams) != len(team_ids):
        raise ValidationFailed(
            _("You may only put teams in your own scope behind a channel."), field="teams"
        )
    if not found and not found_teams:
        raise ValidationFailed(
            _("Choose at least one rep or team who will receive the customers."),
            field="members",
        )
    for employee in found:
        if employee.status == EmployeeStatus.LEFT:
            raise ValidationFailed(
                _("%(name)s has left the company; pick someone else.") % {"name": employee.name},
                field="members",
            )
        if not employee.wecom_userid:
            raise ValidationFailed(
                _("%(name)s has no WeCom account linked; sync the directory from WeCom or "
                  "pick someone else.") % {"name": employee.name},
                field="members",
            )
    for team in found_teams:
        if not team.wecom_id:
            raise ValidationFailed(
                _("The team %(name)s is not linked to a WeCom department; sync the directory "
                  "from WeCom or pick reps instead.") % {"name": team.name},
                field="teams",
            )
    return found, found_teams


def _way_body(state: str, members: list[Employee], teams: list[Department],
              skip_verify: bool) -> dict[str, Any]:
    return {
        "type": 2 if len(members) > 1 or teams else 1,
        "scene": 2,
        "skip_verify": skip_verify,
        "state": state,
        "user": [m.wecom_userid for m in members],
        "party": [int(t.wecom_id) if t.wecom_id.isdigit() else t.wecom_id for t in teams],
    }


def wecom_failure(exc: Exception, doing: str) -> ValidationFailed:
    """A WeCom refusal as a message a manager can act on (nothing was stored)."""
    if isinstance(exc, client.NotConfigured):
        return ValidationFailed(
            _("WeCom is not set up yet: an administrator enters the corp id and the "
              "customer-contact secret in the WeChat settings."), code="wecom_not_configured")
    if isinstance(exc, client.RateLimited):
        return ValidationFailed(
            _("WeCom is rate-limiting us; wait a minute and %(doing)s again.")
            % {"doing": doing}, code="wecom_rate_limited")
    code = getattr(exc, "code", -1)
    if code == 60111:
        reason = _("one of the reps is not a member of the WeCom directory")
    elif code == 60123:
        reason = _("one of the teams is not a department in WeCom")
    elif code in (41054, 84061, 60020, 48002):
        reason = _("customer contact is not enabled for this app or one of the reps")
    elif code == -1:
        return ValidationFailed(
            _("WeCom did not answer; nothing was saved. Try again in a minute."),
            code="wecom_unreachable")
    else:
        reason = _("error %(code)s") % {"code": code}
    return ValidationFailed(
        _("WeCom refused the channel code (%(reason)s); nothing was saved. Fix that and "
          "%(doing)s again.") % {"reason": reason, "doing": doing},
        code="wecom_refused")


def _wecom_call(path: str, body: dict[str, Any], doing: str) -> dict[str, Any]:
    try:
        with client.WeCom(contact=True) as wecom:
            return wecom.post(path, body)
    except client.WeChatError as exc:
        logger.warning("channel code call refused", extra={"path": path,
                                                           "errcode": getattr(exc, "code", -1)})
        raise wecom_failure(exc, doing) from None


def create_channel(
    *, actor: Any, name: str, cost: Any = 0, members: Iterable[Employee] = (),
    teams: Iterable[Department] = (), state: str = "", skip_verify: bool = True,
) -> Channel:
    """A WeCom channel code (渠道活码) behind the given reps and/or teams.

    Checks everything first, then asks WeCom for the code (add_contact_way: a QR code,
    multi-person when several reps or any team); only once WeCom has answered is the channel
    stored, with its config id and QR code. A refusal stores nothing. The channel belongs to
    the actor and their department (managers see their subtree's channels).
    """
    require(actor, PERMISSION)
    name = clean_name(name)
    cost = clean_cost(cost)
    state = clean_state(state)
    people, parties = _clean_people(actor, members, teams)
    me = employee_of(actor)

    answer = _wecom_call("/cgi-bin/externalcontact/add_contact_way",
                         _way_body(state, people, parties, skip_verify),
                         _("create the channel"))
    try:
        with transaction.atomic():
            channel = Channel.objects.create(
                kind=Channel.Kind.WECOM, name=name, state=state, cost=cost, owner=me,
                department=me.department if me is not None else None,
                config_id=str(answer.get("config_id", "")),
                qr_url=str(answer.get("qr_code", "")), skip_verify=skip_verify,
            )
            channel.members.set(people)
            channel.teams.set(parties)
            record_created(actor, channel, people, parties)
    except IntegrityError:
        # Another manager took the same state meanwhile: give WeCom's code back.
        _forget_way(str(answer.get("config_id", "")))
        raise Conflict(
            _("Another channel already uses the state %(state)s; choose another one.")
            % {"state": state}, code="state_taken", field="state",
        ) from None
    logger.info("channel created", extra={"channel_id": channel.pk})
    return channel


def record_created(actor: Any, channel: Channel, people: list[Employee],
             parties: list[Department]) -> None:
    audit.record(actor, "wechat.channel_create", channel, after={
        **(audit.snapshot(channel, _SNAPSHOT) or {}),
        "members": [p.pk for p in people], "teams": [t.pk for t in parties],
    })
    events.emit("channel.created", channel, actor=actor, kind=channel.kind,
                state=channel.state)


def _forget_way(config_id: str) -> None:
    if not config_id:
        return
    try:
        with client.WeCom(contact=True) as wecom:
            wecom.post("/cgi-bin/externalcontact/del_contact_way", {"config_id": config_id})
    except client.WeChatError:
        logger.warning("orphan channel code left in WeCom", extra={"config_id": config_id})


def channel_for(actor: Any, pk: int) -> Channel:
    """One channel inside the actor's scope, or NotFound."""
    channel = scoped(Channel.objects.select_related("owner", "department"), actor).filter(
        pk=pk).first()
    if channel is None:
        raise NotFound(_("That channel does not exist or is outside what you may see."))
    return channel


def update_channel(
    *, actor: Any, channel: Channel, name: str, cost: Any = 0,
    members: Iterable[Employee] = (), teams: Iterable[Department] = (),
    skip_verify: bool = True,
) -> Channel:
    """Change a channel's name, cost and (WeCom codes) the reps and teams behind it
    (update_contact_way). The state stays: the arrivals already recorded carry it."""
    require(actor, PERMISSION)
    channel = channel_for(actor, channel.pk)
    if not channel.is_active:
        raise InvalidTransition(
            _("This channel is deactivated; create a new one instead."), code="channel_inactive"
        )
    name = clean_name(name)
    cost = clean_cost(cost)
    before = {**(audit.snapshot(channel, _SNAPSHOT) or {}),
              "members": sorted(channel.members.values_list("pk", flat=True)),
              "teams": sorted(channel.teams.values_list("pk", flat=True))}
    people: list[Employee] = []
    parties: list[Department] = []
    if channel.kind == Channel.Kind.WECOM:
        people, parties = _clean_people(actor, members, teams)
        body = {"config_id": channel.config_id,
                **_way_body(channel.state, people, parties, skip_verify)}
        scene = body.pop("scene")
        wanted = body.pop("type")
        # WeCom cannot change a code's type: a single-person code stays single-person.
        current = _wecom_call("/cgi-bin/externalcontact/get_contact_way",
                              {"config_id": channel.config_id}, _("save the channel"))
        if int(current.get("contact_way", {}).get("type", wanted)) == 1 and wanted == 2:
            raise ValidationFailed(
                _("This channel's code was made for one rep, and WeCom cannot add more reps "
                  "or teams to it. Keep one rep, or create a new channel for several."),
                field="members",
            )
        del scene
        _wecom_call("/cgi-bin/externalcontact/update_contact_way", body,
                    _("save the channel"))
    with transaction.atomic():
        channel.name, channel.cost, channel.skip_verify = name, cost, skip_verify
        channel.save(update_fields=["name", "cost", "skip_verify"])
        if channel.kind == Channel.Kind.WECOM:
            channel.members.set(people)
            channel.teams.set(parties)
        audit.record(actor, "wechat.channel_update", channel, before=before, after={
            **(audit.snapshot(channel, _SNAPSHOT) or {}),
            "members": [p.pk for p in people], "teams": [t.pk for t in parties],
        })
        events.emit("channel.updated", channel, actor=actor)
    return channel


def deactivate_channel(*, actor: Any, channel: Channel) -> Channel:
    """Withdraw a channel: WeCom deletes the code (del_contact_way), so scanning it no longer
    adds anyone; its arrivals and figures stay. An Official Account code is permanent at
    Tencent (there is no call to delete one): scanning it still makes a follower, but no
    arrival or lead is recorded any more."""
    require(actor, PERMISSION)
    channel = channel_for(actor, channel.pk)
    if not channel.is_active:
        raise InvalidTransition(
            _("This channel is already deactivated."), code="channel_inactive"
        )
    if channel.kind == Channel.Kind.WECOM and channel.config_id:
        _wecom_call("/cgi-bin/externalcontact/del_contact_way",
                    {"config_id": channel.config_id}, _("deactivate the channel"))
    with transaction.atomic():
        updated = Channel.objects.filter(pk=channel.pk, is_active=True).update(is_active=False)
        if updated:
            audit.record(actor, "wechat.channel_deactivate", channel,
                         before={"is_active": True}, after={"is_active": False})
            events.emit("channel.deactivated", channel, actor=actor)
    channel.is_active = False
    return channel


# --- Reading ---------------------------------------------------------------------------------
CHANNEL_SORTS: dict[str, list[str]] = {
    "-created": ["-created_at", "-id"],
    "name": ["name", "id"],
}
DEFAULT_SORT = "-created"


def channels_for(actor: Any, *, q: str = "", kind: str = "", active: str = "") -> QuerySet[Any]:
    qs = scoped(Channel.objects.select_related("owner", "department"), actor)
    if q:
        qs = qs.filter(Q(name__icontains=q) | Q(state__icontains=q))
    if kind in Channel.Kind.values:
        qs = qs.filter(kind=kind)
    if active == "1":
        qs = qs.filter(is_active=True)
    elif active == "0":
        qs = qs.filter(is_active=False)
    return qs


def _count() -> Func:
    # A bare aggregate (no GROUP BY) for a correlated scalar subquery.
    return Func(F("pk"), function="COUNT", output_field=IntegerField())


def _sum(field: str) -> Func:
    return Func(F(field), function="SUM", output_field=DecimalField(**MONEY_FIELD))


def channel_figures(channels: Iterable[Channel]) -> dict[int, dict[str, Any]]:
    """Per channel: adds, leads, opportunities, signed contracts, collected, cost per lead and
    return (collected ÷ cost). One aggregate query per figure over all the channels given.

    Attribution: what a customer who came through the channel did from their arrival on —
    the customer of the arrival's lead (set when the add named a known customer, or when
    the lead is converted). A customer who came through two channels counts for both.
    """
    from weiying.pipeline.choices import ContractStatus
    from weiying.pipeline.models import Contract, Opportunity, Receipt

    costs = {c.pk: c.cost for c in channels}
    channel_ids = list(costs)
    figures: dict[int, dict[str, Any]] = {
        pk: {"adds": 0, "leads": 0, "opportunities": 0, "contracts": 0,
             "collected": Decimal("0.00")} for pk in channel_ids
    }
    if not channel_ids:
        return figures
    # 1. adds and leads
    for row in (ChannelArrival.objects.filter(channel_id__in=channel_ids)
                .values("channel_id").annotate(adds=Count("pk"),
                                               leads=Count("lead_id", distinct=True))):
        figures[row["channel_id"]].update(adds=row["adds"], leads=row["leads"])

    def came_before(outer: str, at_field: str) -> Exists:
        """An arrival of this channel whose lead's customer is the row's customer, before."""
        return Exists(ChannelArrival.objects.filter(
            channel_id=OuterRef(OuterRef("pk")), lead__customer_id=OuterRef(outer),
            at__lte=OuterRef(at_field),
        ))

    def per_channel(subquery: QuerySet[Any], name: str, empty: Any) -> None:
        rows = Channel.objects.filter(pk__in=channel_ids).annotate(
            value=Subquery(subquery)).values_list("pk", "value")
        for pk, value in rows:
            figures[pk][name] = value if value is not None else empty

    signed = [ContractStatus.SIGNED, ContractStatus.IN_DELIVERY, ContractStatus.COMPLETED]
    # 2. opportunities, 3. signed contracts, 4. collected: each one correlated count or sum
    per_channel(
        Opportunity.objects.filter(came_before("customer_id", "created_at"))
        .order_by().values(n=_count()), "opportunities", 0)
    per_channel(
        Contract.objects.filter(came_before("customer_id", "created_at"), status__in=signed)
        .order_by().values(n=_count()), "contracts", 0)
    per_channel(
        Receipt.objects.filter(came_before("contract__customer_id", "created_at"))
        .order_by().values(total=_sum("amount")), "collected", Decimal("0.00"))

    for pk, row in figures.items():
        cost = costs[pk]
        row["cost"] = cost
        row["collected"] = money(row["collected"])
        row["cost_per_lead"] = money(cost / row["leads"]) if row["leads"] else None
        row["return"] = (row["collected"] / cost).quantize(Decimal("0.01")) if cost else None
    return figures
