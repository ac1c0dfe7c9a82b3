"""What people do on their phones and in WeCom's admin, and the callbacks it causes.

Each action changes the world under the lock, then posts its callback outside it (the app
may call the sandbox back while handling it). Changes the app makes through the API cause no
callback, as at Tencent; only these do.
"""

from __future__ import annotations

import secrets
from dataclasses import replace
from typing import Any

from weiying.wechat.sandbox.delivery import (
    Delivery,
    oa_delivery,
    pay_delivery,
    refund_delivery,
    rfc3339,
    wecom_delivery,
)
from weiying.wechat.sandbox.state import (
    OPEN_STATES,
    PAID_STATES,
    Department,
    ExternalContact,
    Follow,
    Follower,
    Order,
    Refund,
    SandboxState,
    User,
    new_external_userid,
    new_openid,
    random_id,
)

WELCOME_CODE_SECONDS = 20


class SimulateError(Exception):
    """A simulated action that cannot happen; `code` is stable, `status` the HTTP status."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


def _submit(state: SandboxState, deliveries: list[Delivery]) -> list[int]:
    ids: list[int] = []
    for delivery in deliveries:
        ids.extend(d.id for d in state.deliverer.submit(delivery))
    return ids


def _member(state: SandboxState, userid: str) -> User:
    user = state.users.get(userid)
    if user is None or user.status == 5:
        raise SimulateError("unknown_user", f"no employee {userid!r} in the directory", 404)
    return user


# --- Customers and employees (WeCom customer contact) -----------------------------------


def add_contact(state: SandboxState, *, userid: str = "", name: str = "",
                external_userid: str = "", unionid: str = "", state_value: str = "",
                config_id: str = "", add_way: int | None = None) -> dict[str, Any]:
    """A customer adds an employee (scanning a channel code when `config_id` is given): the
    contact is created if new, the follow added, and add_external_contact posted."""
    with state.lock:
        if config_id:
            way = state.contact_ways.get(config_id)
            if way is None:
                raise SimulateError("unknown_contact_way", f"no channel code {config_id!r}", 404)
            state_value = way.state
            candidates = list(way.user) + [
                u.userid for u in state.active_users()
                if set(u.department) & set(way.party) and u.userid not in way.user
            ]
            if not userid:
                if not candidates:
                    raise SimulateError("no_member", "the channel code has no members", 409)
                userid = candidates[way.scans % len(candidates)]  # round robin, like WeCom
            way.scans += 1
            add_way = 1 if add_way is None else add_way
        user = _member(state, userid)
        if not user.contact_enabled:
            raise SimulateError("contact_disabled",
                                f"{userid!r} is not configured for customer contact", 409)

        contact = state.contacts.get(external_userid) if external_userid else None
        if contact is None and unionid:
            contact = next((c for c in state.contacts.values() if c.unionid == unionid), None)
        if contact is None:
            persona = state.find_persona(unionid=unionid, external_userid=external_userid)
            if not name and persona is None:
                raise SimulateError("name_required", "a new customer needs a name")
            contact = ExternalContact(
                external_userid or (persona.external_userid if persona else "")
                or new_external_userid(),
                name or (persona.name if persona else ""),
                unionid=unionid or (persona.unionid if persona else ""),
            )
            state.contacts[contact.external_userid] = contact
        elif name:
            contact.name = name
        key = (contact.external_userid, user.userid)
        if key in state.follows:
            raise SimulateError("already_added",
                                f"{contact.name} has already added {user.userid}", 409)
        state.follows[key] = Follow(
            contact.external_userid, user.userid, state.now_int(), state=state_value,
            add_way=1 if add_way is None else add_way, oper_userid=contact.external_userid,
        )
        if contact.unionid or contact.name:
            persona = state.add_persona(contact.name, unionid=contact.unionid,
                                        external_userid=contact.external_userid)
            if not contact.unionid:
                contact.unionid = persona.unionid
        # Limitation: the welcome code is issued but externalcontact/send_welcome_msg is
        # not served, so a welcome message cannot be sent with it yet.
        welcome = random_id("", 43)
        state.welcome_codes[welcome] = state.now() + WELCOME_CODE_SECONDS
        fields: list[tuple[str, str | int]] = [
            ("ChangeType", "add_external_contact"), ("UserID", user.userid),
            ("ExternalUserID", contact.external_userid),
        ]
        if state_value:
            fields.append(("State", state_value))
        fields.append(("WelcomeCode", welcome))
        delivery = wecom_delivery(state, "change_external_contact", fields)
    return {"external_userid": contact.external_userid, "userid": user.userid,
            "state": state_value, "welcome_code": welcome,
            "deliveries": _submit(state, [delivery])}


def remove_contact(state: SandboxState, *, external_userid: str, userid: str,
                   by: str) -> dict[str, Any]:
    """The relationship ends. WeCom's names: `del_external_contact` when the employee
    deleted the customer, `del_follow_user` when the customer deleted the employee."""
    if by not in ("customer", "employee"):
        raise SimulateError("bad_by", "by is 'customer' or 'employee'")
    with state.lock:
        # Limitation: the follow is removed either way. WeCom keeps listing a customer who
        # deleted the employee (del_follow_user) on the employee's side, one-sided.
        if state.follows.pop((external_userid, userid), None) is None:
            raise SimulateError("not_following",
                                f"{external_userid!r} is not a customer of {userid!r}", 404)
        change = "del_external_contact" if by == "employee" else "del_follow_user"
        delivery = wecom_delivery(state, "change_external_contact", [
            ("ChangeType", change), ("UserID", userid), ("ExternalUserID", external_userid),
        ])
    return {"change": change, "deliveries": _submit(state, [delivery])}


def edit_contact(state: SandboxState, *, external_userid: str, userid: str,
                 **changes: Any) -> dict[str, Any]:
    """The employee edits the customer's remark, description or tags (edit_external_contact;
    a change of remark_mobiles alone posts nothing, as at WeCom)."""
    allowed = {"remark", "description", "remark_corp_name", "remark_mobiles", "tags"}
    unknown = set(changes) - allowed
    if unknown:
        raise SimulateError("bad_field", f"cannot edit {', '.join(sorted(unknown))}")
    with state.lock:
        follow = state.follows.get((external_userid, userid))
        if follow is None:
            raise SimulateError("not_following",
                                f"{external_userid!r} is not a customer of {userid!r}", 404)
        for name, value in changes.items():
            setattr(follow, name, value)
        if set(changes) <= {"remark_mobiles"}:
            return {"deliveries": []}
        delivery = wecom_delivery(state, "change_external_contact", [
            ("ChangeType", "edit_external_contact"), ("UserID", userid),
            ("ExternalUserID", external_userid),
        ])
    return {"deliveries": _submit(state, [delivery])}


# --- The directory (change_contact) ------------------------------------------------------

_USER_FIELDS = {"name": "Name", "department": "Department",
                "main_department": "MainDepartment", "is_leader_in_dept": "IsLeaderInDept",
                "direct_leader": "DirectLeader", "position": "Position", "alias": "Alias",
                "status": "Status"}


def _xml_value(value: Any) -> str | int:
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    if isinstance(value, bool):
        return int(value)
    return value if isinstance(value, int) else str(value)


def directory(state: SandboxState, change: str, data: dict[str, Any]) -> dict[str, Any]:
    """An admin changes the directory in WeCom: change_contact to the app's callback. An
    update carries only the changed fields; with `directory_events_ids_only` only ids."""
    ids_only = state.config.directory_events_ids_only
    fields: list[tuple[str, str | int]] = [("ChangeType", change)]
    with state.lock:
        if change in ("create_user", "update_user", "delete_user"):
            userid = str(data.get("userid", ""))
            if not userid:
                raise SimulateError("userid_required", "give the employee's userid")
            fields.append(("UserID", userid))
            if change == "create_user":
                if userid in state.users:
                    raise SimulateError("exists", f"{userid!r} is already in the directory", 409)
                values = {k: v for k, v in data.items() if k in User.__dataclass_fields__}
                values.setdefault("name", userid)
                user = User(**values)
                state.users[userid] = user
                state.departed.pop(userid, None)
                shown = {k: getattr(user, k) for k in _USER_FIELDS}
            elif change == "update_user":
                user = _member(state, userid)
                new_userid = str(data.get("new_userid", "") or "")
                shown = {k: v for k, v in data.items() if k in _USER_FIELDS}
                for key, value in shown.items():
                    setattr(user, key, value)
                user.normalise()
                if "department" in shown:
                    shown["is_leader_in_dept"] = user.is_leader_in_dept
                    shown["main_department"] = user.main_department
                if new_userid and new_userid != userid:
                    del state.users[userid]
                    user.userid = new_userid
                    state.users[new_userid] = user
                    for follow in state.follows_of_user(userid):
                        del state.follows[(follow.external_userid, userid)]
                        follow.userid = new_userid
                        state.follows[(follow.external_userid, new_userid)] = follow
                    fields.append(("NewUserID", new_userid))
            else:
                _member(state, userid)
                del state.users[userid]
                # Their customers stay, waiting for a successor (离职继承).
                state.departed[userid] = state.now()
                shown = {}
            if not ids_only:
                fields.extend((_USER_FIELDS[k], _xml_value(v)) for k, v in shown.items())
        elif change in ("create_party", "update_party", "delete_party"):
            dept_id = data.get("id")
            if not isinstance(dept_id, int) or isinstance(dept_id, bool):
                raise SimulateError("id_required", "give the department's id (a number)")
            fields.append(("Id", dept_id))
            party_fields = {"name": "Name", "parentid": "ParentId", "order": "Order"}
            if change == "create_party":
                if dept_id in state.departments:
                    raise SimulateError("exists", f"department {dept_id} exists", 409)
                dept = Department(dept_id, str(data.get("name", dept_id)),
                                  int(data.get("parentid", 1)), int(data.get("order", 0)))
                state.departments[dept_id] = dept
                shown = {k: getattr(dept, k) for k in party_fields}
            elif change == "update_party":
                dept = state.departments.get(dept_id)
                if dept is None:
                    raise SimulateError("unknown_party", f"no department {dept_id}", 404)
                shown = {k: v for k, v in data.items() if k in ("name", "parentid")}
                for key, value in shown.items():
                    setattr(dept, key, value)
            else:
                if dept_id not in state.departments:
                    raise SimulateError("unknown_party", f"no department {dept_id}", 404)
                if any(d.parentid == dept_id for d in state.departments.values()) or any(
                        dept_id in u.department for u in state.users.values()):
                    raise SimulateError("not_empty", "the department still has members or "
                                        "sub-departments; move them first", 409)
                del state.departments[dept_id]
                shown = {}
            if not ids_only:
                fields.extend((party_fields[k], _xml_value(v)) for k, v in shown.items())
        else:
            raise SimulateError("bad_change", "change is create_user, update_user, "
                                "delete_user, create_party, update_party or delete_party")
        delivery = wecom_delivery(state, "change_contact", fields, channel="wecom")
    return {"deliveries": _submit(state, [delivery])}


# --- Departure transfers ----------------------------------------------------------------


def settle_transfers(state: SandboxState, *, everything: bool = False) -> list[int]:
    """Settle the transfers that are due (all waiting ones with `everything`): move the
    customer to the successor, or fail (a share set by `transfer_fail_share`) and post
    transfer_fail."""
    deliveries = []
    with state.lock:
        now = state.now()
        config = state.config
        for transfer in state.transfers:
            if transfer.status != 2 or (not everything and transfer.settle_at > now):
                continue
            if state.random.random() < config.transfer_fail_share:
                transfer.status = 3 if config.transfer_fail_reason == "customer_refused" else 4
                deliveries.append(wecom_delivery(state, "change_external_contact", [
                    ("ChangeType", "transfer_fail"), ("FailReason", config.transfer_fail_reason),
                    ("UserID", transfer.takeover_userid),
                    ("ExternalUserID", transfer.external_userid),
                ]))
                continue
            old = state.follows.pop((transfer.external_userid, transfer.handover_userid), None)
            follow = (replace(old, userid=transfer.takeover_userid, createtime=int(now))
                      if old else Follow(transfer.external_userid, transfer.takeover_userid,
                                         int(now)))
            state.follows[(transfer.external_userid, transfer.takeover_userid)] = follow
            transfer.status = 1
            transfer.takeover_time = int(now)
    return _submit(state, deliveries)


# --- The Official Account ---------------------------------------------------------------


def _follower(state: SandboxState, openid: str, unionid: str) -> Follower:
    follower = state.followers.get(openid)
    if follower is None:
        follower = Follower(openid, unionid)
        state.followers[openid] = follower
    elif unionid and not follower.unionid:
        follower.unionid = unionid
    return follower


def oa_scan(state: SandboxState, *, openid: str = "", unionid: str = "", scene: str = "",
            ticket: str = "", first_time: bool | None = None, name: str = "") -> dict[str, Any]:
    """A WeChat user scans the OA's parametric code: `subscribe` with EventKey
    qrscene_<scene> when they start following, `SCAN` with EventKey <scene> when they
    already do. Without a scene it is a plain follow."""
    with state.lock:
        qr = state.qr_tickets.get(ticket) if ticket else None
        if ticket and qr is None:
            raise SimulateError("unknown_ticket", "no such QR ticket", 404)
        if qr is None and scene:
            qr = next((q for q in state.qr_tickets.values() if q.scene == scene), None)
        if qr is not None:
            scene = qr.scene
            if not qr.permanent and state.now() > qr.created + qr.expire_seconds:
                raise SimulateError("ticket_expired", "this temporary QR code has expired", 410)
        if not openid:
            persona = state.find_persona(unionid=unionid) if unionid else None
            openid = persona.openid if persona else new_openid()
        follower = _follower(state, openid, unionid)
        subscribing = (not follower.subscribed) if first_time is None else first_time
        if first_time is False and not follower.subscribed:
            follower.subscribed, follower.subscribe_time = True, state.now_int()
        if name or follower.unionid:
            state.add_persona(name or "微信用户", unionid=follower.unionid, openid=openid)
        fields: list[tuple[str, str | int]] = [("MsgType", "event")]
        if subscribing:
            follower.subscribed, follower.subscribe_time = True, state.now_int()
            follower.subscribe_scene = "ADD_SCENE_QR_CODE" if scene else "ADD_SCENE_SEARCH"
            follower.qr_scene_str = scene
            fields += [("Event", "subscribe"), ("EventKey", f"qrscene_{scene}" if scene else "")]
            event = "subscribe"
        else:
            fields += [("Event", "SCAN"), ("EventKey", scene)]
            event = "SCAN"
        if qr is not None:
            fields.append(("Ticket", qr.ticket))
        delivery = oa_delivery(state, openid, fields, event=event)
    return {"openid": openid, "event": event, "deliveries": _submit(state, [delivery])}


def oa_unsubscribe(state: SandboxState, *, openid: str) -> dict[str, Any]:
    with state.lock:
        follower = state.followers.get(openid)
        if follower is None or not follower.subscribed:
            raise SimulateError("not_following", "this user does not follow the OA", 409)
        follower.subscribed = False
        delivery = oa_delivery(state, openid, [("MsgType", "event"), ("Event", "unsubscribe"),
                                               ("EventKey", "")], event="unsubscribe")
    return {"deliveries": _submit(state, [delivery])}


def oa_text(state: SandboxState, *, openid: str, content: str) -> dict[str, Any]:
    """A follower writes to the Official Account (a text message with its MsgId)."""
    if not content:
        raise SimulateError("content_required", "write something")
    with state.lock:
        follower = state.followers.get(openid)
        if follower is None or not follower.subscribed:
            raise SimulateError("not_following", "only followers can write to the OA", 409)
        msg_id = str(secrets.randbits(62) | (1 << 62))
        delivery = oa_delivery(state, openid, [("MsgType", "text"), ("Content", content),
                                               ("MsgId", msg_id)], event="text")
    return {"msg_id": msg_id, "deliveries": _submit(state, [delivery])}


# --- WeChat Pay ---------------------------------------------------------------------------


def _order(state: SandboxState, out_trade_no: str) -> Order:
    order = state.order(out_trade_no)
    if order is None:
        raise SimulateError("unknown_order", f"no order {out_trade_no!r}", 404)
    return order


def pay(state: SandboxState, *, out_trade_no: str, openid: str = "") -> dict[str, Any]:
    """The customer pays an open order (NOTPAY, or USERPAYING / PAYERROR as set by the
    control API): it becomes SUCCESS and the notification is posted (unless a drop fault
    swallows it). An order past its time_expire is CLOSED and refuses the payment."""
    with state.lock:
        order = state.orders.get(out_trade_no)
        if order is None:
            raise SimulateError("unknown_order", f"no order {out_trade_no!r}", 404)
        if order.trade_state in OPEN_STATES and order.expires_at and (
                state.now() > order.expires_at):
            order.set_state("CLOSED")
            raise SimulateError("expired", "the order's time_expire has passed", 409)
        if order.trade_state not in OPEN_STATES:
            raise SimulateError("not_payable", f"the order is {order.trade_state}", 409)
        order.set_state("SUCCESS")
        order.transaction_id = "4200" + "".join(secrets.choice("0123456789") for _ in range(24))
        order.success_time = rfc3339(state.now())
        order.payer_openid = openid or new_openid()
        delivery = pay_delivery(state, order)
    ids = _submit(state, [delivery])
    return {"transaction_id": order.transaction_id, "notified": delivery.status != "dropped",
            "deliveries": ids}


def resend_pay_notification(state: SandboxState, *, out_trade_no: str) -> dict[str, Any]:
    with state.lock:
        order = state.orders.get(out_trade_no)
        if order is None or order.trade_state not in PAID_STATES:
            raise SimulateError("not_paid", "only a paid order has a notification", 409)
        delivery = pay_delivery(state, order)
    return {"deliveries": _submit(state, [delivery])}


def close_order(state: SandboxState, *, out_trade_no: str) -> dict[str, Any]:
    """Tencent closes an open order (as a merchant's close call or its own expiry would). A
    closed order stays closed; a paid one cannot be closed."""
    with state.lock:
        order = _order(state, out_trade_no)
        if order.trade_state in PAID_STATES:
            raise SimulateError("already_paid", "a paid order cannot be closed; refund it", 409)
        if order.trade_state in OPEN_STATES:
            order.set_state("CLOSED")
        return order_view(order)


SETTABLE_STATES = ("NOTPAY", "USERPAYING", "PAYERROR", "REVOKED")


def set_order_state(state: SandboxState, *, out_trade_no: str, trade_state: str,
                    desc: str = "") -> dict[str, Any]:
    """Put an open order in another unpaid state, so a query answers it: USERPAYING (the
    customer is entering a password), PAYERROR (the payment failed), REVOKED, or back to
    NOTPAY. `desc` replaces the state's trade_state_desc. Paying, closing and refunding
    have their own calls."""
    if trade_state not in SETTABLE_STATES:
        raise SimulateError("bad_trade_state",
                            f"trade_state is one of {', '.join(SETTABLE_STATES)}")
    with state.lock:
        order = _order(state, out_trade_no)
        if order.trade_state not in OPEN_STATES:
            raise SimulateError("not_open", f"the order is {order.trade_state}", 409)
        order.set_state(trade_state, desc)
        return order_view(order)


def refund(state: SandboxState, *, out_trade_no: str, amount: int | None = None,
           out_refund_no: str = "") -> dict[str, Any]:
    """Refund a paid order, all of what is left or `amount` fen of it: the order's
    trade_state becomes REFUND and a REFUND.SUCCESS notification is posted to its
    notify_url, signed and encrypted like a payment's."""
    with state.lock:
        order = _order(state, out_trade_no)
        if order.trade_state not in PAID_STATES:
            raise SimulateError("not_paid", f"the order is {order.trade_state}; only a paid "
                                "order can be refunded", 409)
        left = order.total - order.refunded
        if not left:
            raise SimulateError("fully_refunded", "the order is refunded in full", 409)
        amount = left if amount is None else amount
        if not 1 <= amount <= left:
            raise SimulateError("bad_amount", f"the refund is 1 to {left} fen")
        seq = len(order.refunds) + 1
        out_refund_no = out_refund_no or f"RF{order.out_trade_no}{seq:02d}"[-64:]
        if any(r.out_refund_no == out_refund_no for o in state.orders.values()
               for r in o.refunds):
            raise SimulateError("duplicate_refund", f"refund {out_refund_no!r} exists", 409)
        made = Refund(out_refund_no,
                      "50" + "".join(secrets.choice("0123456789") for _ in range(28)),
                      amount, state.now(), success_time=rfc3339(state.now()))
        order.refunds.append(made)
        order.set_state("REFUND")
        delivery = refund_delivery(state, order, made)
    ids = _submit(state, [delivery])
    return {"out_refund_no": made.out_refund_no, "refund_id": made.refund_id,
            "refund": made.refund, "refunded": order.refunded,
            "notified": delivery.status != "dropped", "deliveries": ids}


def order_view(order: Order) -> dict[str, Any]:
    """An order as the control API shows it: its query answer and the sandbox's extras."""
    from weiying.wechat.sandbox.delivery import transaction

    return {**transaction(order), "description": order.description,
            "code_url": order.code_url, "notify_url": order.notify_url,
            "time_expire": order.time_expire, "refunded": order.refunded,
            "refunds": [{"out_refund_no": r.out_refund_no, "refund_id": r.refund_id,
                         "refund": r.refund, "refund_status": r.refund_status}
                        for r in order.refunds]}
