"""The Official Account (公众号): campaign QR codes and followers.

A campaign code is a Channel of kind "oa": a permanent parametric QR code (qrcode/create,
QR_LIMIT_STR_SCENE) whose scene is the channel's state. Scanning it as a new follower sends
`subscribe` with EventKey "qrscene_<scene>"; scanning it while following sends `SCAN` with
EventKey "<scene>". Either way the follower is upserted, linked to a customer through the
union id, and the arrival recorded against the channel (one lead per open id).

Text messages from followers are not handled here: the only pipeline service that writes to
a customer's timeline is log_followup, and a customer writing in is not a rep's follow-up (it
would count as the rep's first response, move a "new" customer to "contacted" and mark the
owner's planned follow-ups done). Without a handler the inbox keeps them as "ignored", so
they can be replayed once a fitting service exists.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any
from urllib.parse import quote

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from weiying.core import audit, events
from weiying.core.errors import Conflict, ValidationFailed
from weiying.core.permissions import employee_of, require
from weiying.customers.choices import IdentityKind
from weiying.customers.models import Customer, WeChatIdentity
from weiying.wechat import client, inbox
from weiying.wechat.channels import (
    PERMISSION,
    clean_cost,
    clean_name,
    clean_state,
    record_arrival,
    record_created,
)
from weiying.wechat.models import Channel, Follower, InboxMessage

logger = logging.getLogger(__name__)

SCENE_MAX = 64  # qrcode/create's scene_str


def qr_image_url(ticket: str) -> str:
    """Tencent's image of a parametric code (showqrcode takes the ticket URL-encoded)."""
    return f"{settings.WECHAT['OA_QR']}/cgi-bin/showqrcode?ticket={quote(ticket, safe='')}"


def _oa_failure(exc: client.WeChatError) -> ValidationFailed:
    if isinstance(exc, client.NotConfigured):
        return ValidationFailed(
            _("The Official Account is not set up yet: an administrator enters its app id "
              "and secret in the WeChat settings."), code="oa_not_configured")
    if exc.code == -1:
        return ValidationFailed(
            _("WeChat did not answer; nothing was saved. Try again in a minute."),
            code="oa_unreachable")
    return ValidationFailed(
        _("WeChat refused the QR code (error %(code)s); nothing was saved. Check the Official "
          "Account's settings and try again.") % {"code": exc.code},
        code="oa_refused")


def create_oa_channel(*, actor: Any, name: str, cost: Any = 0, state: str = "") -> Channel:
    """An Official Account campaign code: a permanent QR code whose scene is the state.

    WeChat answers first (ticket and the URL the code opens); only then is the channel
    stored. Leads from it wait in the creator's department queue (or go by the assignment
    rules), unless the follower is a known customer, whose owner gets the lead.
    """
    require(actor, PERMISSION)
    name = clean_name(name)
    cost = clean_cost(cost)
    state = clean_state(state, limit=SCENE_MAX)
    me = employee_of(actor)
    body = {"action_name": "QR_LIMIT_STR_SCENE",
            "action_info": {"scene": {"scene_str": state}}}
    try:
        with client.OfficialAccount() as oa:
            answer = oa.post("/cgi-bin/qrcode/create", body)
    except client.WeChatError as exc:
        logger.warning("OA QR code refused", extra={"errcode": exc.code})
        raise _oa_failure(exc) from None
    try:
        with transaction.atomic():
            channel = Channel.objects.create(
                kind=Channel.Kind.OA, name=name, state=state, cost=cost, owner=me,
                department=me.department if me is not None else None,
                qr_ticket=str(answer.get("ticket", "")), qr_url=str(answer.get("url", "")),
            )
            record_created(actor, channel, [], [])
    except IntegrityError:
        raise Conflict(
            _("Another channel already uses the state %(state)s; choose another one.")
            % {"state": state}, code="state_taken", field="state",
        ) from None
    return channel


# --- Followers -------------------------------------------------------------------------------
def _at(message: dict[str, Any]) -> dt.datetime:
    try:
        return dt.datetime.fromtimestamp(int(message.get("CreateTime", "")), tz=dt.UTC)
    except (TypeError, ValueError):
        return timezone.now()


def _unionid(openid: str) -> str:
    """The follower's union id from user/info ("" when the account has no open platform)."""
    with client.OfficialAccount() as oa:
        info = oa.get("/cgi-bin/user/info", openid=openid, lang="zh_CN")
    return str(info.get("unionid", "") or "")


def _customer_for(openid: str, unionid: str) -> Customer | None:
    """The customer with this union id (or, failing that, this open id), if any."""
    wanted = [(IdentityKind.UNIONID, unionid)] if unionid else []
    wanted.append((IdentityKind.OPENID, openid))
    for kind, value in wanted:
        identity = WeChatIdentity.objects.filter(kind=kind, value=value).select_related(
            "customer").first()
        if identity is not None:
            customer = identity.customer
            while customer.merged_into_id is not None:  # follow a merge to the survivor
                customer = Customer.objects.get(pk=customer.merged_into_id)
            return customer
    return None


def _link_openid(customer: Customer, openid: str) -> None:
    """Remember the open id on the customer (kind openid); an id held elsewhere stays."""
    try:
        with transaction.atomic():
            _identity, created = WeChatIdentity.objects.get_or_create(
                kind=IdentityKind.OPENID, value=openid, defaults={"customer": customer})
    except IntegrityError:
        return
    if created:
        audit.record(None, "customer.add_identity", customer,
                     after={"kind": IdentityKind.OPENID, "value": openid})


def upsert_follower(*, openid: str, at: dt.datetime, unionid: str = "") -> Follower:
    """The follower row for `openid`, subscribed, with its union id and customer link.

    A replay changes nothing: the subscription time only moves forward, and the link is made
    once (an existing link is kept)."""
    try:
        with transaction.atomic():
            follower, created = Follower.objects.select_for_update().get_or_create(
                openid=openid, defaults={"unionid": unionid, "subscribed_at": at})
    except IntegrityError:
        follower, created = Follower.objects.select_for_update().get(openid=openid), False
    changed: list[str] = []
    if not follower.subscribed and (follower.unsubscribed_at is None
                                    or at >= follower.unsubscribed_at):
        follower.subscribed, follower.subscribed_at = True, at
        changed += ["subscribed", "subscribed_at"]
    if unionid and not follower.unionid:
        follower.unionid = unionid
        changed.append("unionid")
    if follower.customer_id is None:
        customer = _customer_for(openid, follower.unionid)
        if customer is not None:
            follower.customer = customer
            changed.append("customer")
            _link_openid(customer, openid)
    if changed:
        follower.save(update_fields=changed)
    if created or "subscribed" in changed:
        audit.record(None, "wechat.follower_subscribe", follower, after={
            "customer": follower.customer_id, "channel": follower.channel_id})
        events.emit("follower.subscribed", follower, customer_id=follower.customer_id)
    return follower


def _arrive(follower: Follower, scene: str, at: dt.datetime) -> None:
    if not scene:
        return
    channel = Channel.objects.filter(state=scene, kind=Channel.Kind.OA).first()
    if channel is not None and follower.channel_id is None:
        Follower.objects.filter(pk=follower.pk, channel__isnull=True).update(channel=channel)
    customer = follower.customer
    record_arrival(state=scene, external_id=follower.openid,
                   employee=customer.owner if customer is not None else None,
                   customer=customer, at=at)


def _follower_event(message: dict[str, Any], scene: str) -> str:
    openid = str(message.get("FromUserName", ""))
    if not openid:
        return "no open id"
    at = _at(message)
    follower = upsert_follower(openid=openid, at=at, unionid=_unionid(openid))
    _arrive(follower, scene, at)
    return f"follower {follower.pk}"


@inbox.handles("oa", "event:subscribe")
def on_subscribe(row: InboxMessage, message: dict[str, Any]) -> str:
    key = str(message.get("EventKey", "") or "")
    return _follower_event(message, key.removeprefix("qrscene_") if key else "")


@inbox.handles("oa", "event:SCAN")
def on_scan(row: InboxMessage, message: dict[str, Any]) -> str:
    return _follower_event(message, str(message.get("EventKey", "") or ""))


@inbox.handles("oa", "event:unsubscribe")
def on_unsubscribe(row: InboxMessage, message: dict[str, Any]) -> str:
    """The follower stays (with their arrivals and link); only the subscription ends. A
    late-delivered unsubscribe older than the latest subscribe changes nothing."""
    openid = str(message.get("FromUserName", ""))
    at = _at(message)
    follower = Follower.objects.filter(openid=openid).first()
    if follower is None:
        follower = Follower.objects.create(openid=openid, subscribed=False, unsubscribed_at=at)
    elif follower.subscribed_at is None or at >= follower.subscribed_at:
        if not Follower.objects.filter(pk=follower.pk, subscribed=True).update(
                subscribed=False, unsubscribed_at=at):
            return "already unsubscribed"
    else:
        return "older than the subscription"
    audit.record(None, "wechat.follower_unsubscribe", follower)
    events.emit("follower.unsubscribed", follower, customer_id=follower.customer_id)
    return "unsubscribed"
