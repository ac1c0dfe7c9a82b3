"""The sandbox's own pages (/sandbox): simulated phones for customers, each employee's
WeCom inbox, and the pages its QR codes lead to. Forms post back here and redirect
(with a note) to the page they came from."""

from __future__ import annotations

import re
from collections import Counter
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, Response, abort, redirect, render_template, request, url_for
from markupsafe import Markup, escape

from weiying.wechat.sandbox import simulate
from weiying.wechat.sandbox.common import get_state, public_base
from weiying.wechat.sandbox.qr import svg_response
from weiying.wechat.sandbox.simulate import SimulateError
from weiying.wechat.sandbox.state import PAID_STATES, Persona

bp = Blueprint("sandbox", __name__)

_TAG = re.compile(r"<[^>]+>")
_BREAK = re.compile(r"<\s*(br|/div|/p)\s*/?>", re.I)


@bp.app_template_filter("wecom_text")
def wecom_text(text: Any) -> Markup:
    """WeCom's light HTML (textcard descriptions) and markdown shown as plain lines."""
    plain = _TAG.sub("", _BREAK.sub("\n", str(text or "")))
    return Markup("<br>").join(escape(line) for line in plain.strip().splitlines())


_BOLD = re.compile(r"\*\*(.+?)\*\*")
_LINK = re.compile(r"\[([^\]]+)\]\((https?://[^)\s]+)\)")


@bp.app_template_filter("wecom_markdown")
def wecom_markdown(text: Any) -> Markup:
    """WeCom's markdown subset, readably: bold, links, quotes; <font> colours dropped."""
    lines = []
    for line in _TAG.sub("", str(text or "")).splitlines():
        html = str(escape(line))
        html = _BOLD.sub(r"<b>\1</b>", html)
        html = _LINK.sub(r'<a href="\2">\1</a>', html)
        if html.startswith("&gt; "):
            html = '<span class="quote">' + html[5:] + "</span>"
        lines.append(html)
    return Markup("<br>".join(lines))


@bp.app_template_filter("yuan")
def yuan(fen: int) -> str:
    return f"¥{fen // 100:,}.{fen % 100:02d}"


@bp.app_template_filter("clock")
def clock(timestamp: float) -> str:
    import datetime as dt

    beijing = dt.timezone(dt.timedelta(hours=8))
    return dt.datetime.fromtimestamp(timestamp, beijing).strftime("%m-%d %H:%M:%S")


def _back(endpoint: str, note: str = "", error: str = "", **values: Any) -> Response:
    url = url_for(endpoint, **values)
    query = {k: v for k, v in (("note", note), ("error", error)) if v}
    return redirect(url + ("?" + urlencode(query) if query else ""))


def _persona(persona_id: str) -> Persona:
    persona = get_state().personas.get(persona_id)
    if persona is None:
        abort(404)
    return persona


# --- Index ----------------------------------------------------------------------------


@bp.route("/", methods=["GET"])
def index() -> str:
    state = get_state()
    with state.lock:
        users = sorted(state.active_users(), key=lambda u: u.userid)
        received = Counter(m.userid for m in state.messages)
        inbox = {u.userid: received[u.userid] for u in users}
        context = {
            "personas": list(state.personas.values()), "users": users, "inbox": inbox,
            "orders": state.open_orders(),
            "deliveries": list(reversed(state.deliveries))[:15],
            "counts": state.counts(), "faults": state.faults.snapshot(),
            "config": state.config, "base": public_base(),
        }
    return render_template("sandbox/index.html", **context)


@bp.route("/personas", methods=["POST"])
def persona_new() -> Response:
    name = request.form.get("name", "").strip()
    if not name:
        return _back("sandbox.index", error="请填写姓名 / a name, please")
    persona = get_state().add_persona(name)
    return _back("sandbox.phone", note=f"新客户 {name}", persona_id=persona.id)


@bp.route("/deliveries", methods=["GET"])
def deliveries() -> str:
    state = get_state()
    with state.lock:
        rows = list(reversed(state.deliveries))[:200]
    return render_template("sandbox/deliveries.html", deliveries=rows)


# --- A customer's phone -------------------------------------------------------------------


@bp.route("/phone/<persona_id>", methods=["GET"])
def phone(persona_id: str) -> str:
    state = get_state()
    with state.lock:
        persona = _persona(persona_id)
        follows = [(f, state.users.get(f.userid))
                   for f in state.follows_of_contact(persona.external_userid)]
        following = {f.userid for f, _u in follows}
        follower = state.followers.get(persona.openid)
        context = {
            "persona": persona, "follows": follows,
            "ways": list(state.contact_ways.values()),
            "users": [u for u in sorted(state.active_users(), key=lambda u: u.userid)
                      if u.userid not in following and u.contact_enabled],
            "subscribed": bool(follower and follower.subscribed),
            "tickets": list(state.qr_tickets.values()),
            "orders": state.open_orders(),
            "paid": [o for o in state.orders.values()
                     if o.trade_state in PAID_STATES and o.payer_openid == persona.openid],
        }
    return render_template("sandbox/phone.html", **context)


def _act(persona_id: str, action: Any, done: str) -> Response:
    try:
        action()
    except SimulateError as exc:
        return _back("sandbox.phone", error=exc.message, persona_id=persona_id)
    return _back("sandbox.phone", note=done, persona_id=persona_id)


@bp.route("/phone/<persona_id>/scan/<config_id>", methods=["POST"])
def phone_scan(persona_id: str, config_id: str) -> Response:
    persona = _persona(persona_id)
    return _act(persona_id, lambda: simulate.add_contact(
        get_state(), config_id=config_id, name=persona.name, unionid=persona.unionid,
        external_userid=persona.external_userid), "已扫码添加 / added via the channel code")


@bp.route("/phone/<persona_id>/add", methods=["POST"])
def phone_add(persona_id: str) -> Response:
    persona = _persona(persona_id)
    return _act(persona_id, lambda: simulate.add_contact(
        get_state(), userid=request.form.get("userid", ""), name=persona.name,
        unionid=persona.unionid, external_userid=persona.external_userid, add_way=0),
        "已添加 / added")


@bp.route("/phone/<persona_id>/remove", methods=["POST"])
def phone_remove(persona_id: str) -> Response:
    persona = _persona(persona_id)
    return _act(persona_id, lambda: simulate.remove_contact(
        get_state(), external_userid=persona.external_userid,
        userid=request.form.get("userid", ""), by="customer"), "已删除 / removed")


@bp.route("/phone/<persona_id>/oa_scan", methods=["POST"])
def phone_oa_scan(persona_id: str) -> Response:
    persona = _persona(persona_id)
    return _act(persona_id, lambda: simulate.oa_scan(
        get_state(), openid=persona.openid, unionid=persona.unionid,
        ticket=request.form.get("ticket", ""), scene=request.form.get("scene", ""),
        name=persona.name), "已扫码 / scanned")


@bp.route("/phone/<persona_id>/oa_unsubscribe", methods=["POST"])
def phone_oa_unsubscribe(persona_id: str) -> Response:
    persona = _persona(persona_id)
    return _act(persona_id, lambda: simulate.oa_unsubscribe(get_state(), openid=persona.openid),
                "已取消关注 / unfollowed")


@bp.route("/phone/<persona_id>/oa_text", methods=["POST"])
def phone_oa_text(persona_id: str) -> Response:
    persona = _persona(persona_id)
    return _act(persona_id, lambda: simulate.oa_text(
        get_state(), openid=persona.openid, content=request.form.get("content", "").strip()),
        "已发送 / sent")


@bp.route("/phone/<persona_id>/pay/<out_trade_no>", methods=["POST"])
def phone_pay(persona_id: str, out_trade_no: str) -> Response:
    persona = _persona(persona_id)
    return _act(persona_id, lambda: simulate.pay(get_state(), out_trade_no=out_trade_no,
                                                 openid=persona.openid), "已支付 / paid")


# --- What the QR codes lead to ------------------------------------------------------------


@bp.route("/qr/<config_id>", methods=["GET"])
def channel_qr(config_id: str) -> Response:
    if config_id not in get_state().contact_ways:
        abort(404)
    return svg_response(f"{public_base()}/sandbox/scan/{config_id}")


@bp.route("/scan/<config_id>", methods=["GET"])
def scan_page(config_id: str) -> str:
    state = get_state()
    with state.lock:
        way = state.contact_ways.get(config_id)
        if way is None:
            abort(404)
        personas = list(state.personas.values())
    return render_template("sandbox/scan.html", title="扫码添加员工 / Scan a channel code",
                           detail=f"state = {way.state or '—'}", personas=personas,
                           action=url_for("sandbox.scan_do", config_id=config_id))


@bp.route("/scan/<config_id>", methods=["POST"])
def scan_do(config_id: str) -> Response:
    persona = _picked()
    return phone_scan(persona.id, config_id)


@bp.route("/oa/scan/<ticket>", methods=["GET"])
def oa_scan_page(ticket: str) -> str:
    state = get_state()
    with state.lock:
        qr = state.qr_tickets.get(ticket)
        if qr is None:
            abort(404)
        personas = list(state.personas.values())
    return render_template("sandbox/scan.html", title="扫公众号二维码 / Scan the OA code",
                           detail=f"scene = {qr.scene}", personas=personas,
                           action=url_for("sandbox.oa_scan_do", ticket=ticket))


@bp.route("/oa/scan/<ticket>", methods=["POST"])
def oa_scan_do(ticket: str) -> Response:
    persona = _picked()
    return _act(persona.id, lambda: simulate.oa_scan(
        get_state(), openid=persona.openid, unionid=persona.unionid, ticket=ticket,
        name=persona.name), "已扫码 / scanned")


@bp.route("/pay", methods=["GET"])
def pay_page() -> str:
    """Where a code_url (weixin://wxpay/bizpayurl?pr=…) leads: ?pr=…"""
    state = get_state()
    with state.lock:
        order = next((o for o in state.orders.values() if o.code == request.args.get("pr")),
                     None)
        if order is None:
            abort(404)
        personas = list(state.personas.values())
    return render_template("sandbox/scan.html", title=f"支付 / Pay {yuan(order.total)}",
                           detail=order.description, personas=personas,
                           action=url_for("sandbox.pay_do", out_trade_no=order.out_trade_no))


@bp.route("/pay/<out_trade_no>", methods=["POST"])
def pay_do(out_trade_no: str) -> Response:
    persona = _picked()
    return phone_pay(persona.id, out_trade_no)


def _picked() -> Persona:
    """The persona chosen on a scan page, or a new one by the name typed there."""
    state = get_state()
    persona_id = request.form.get("persona", "")
    if persona_id:
        return _persona(persona_id)
    name = request.form.get("name", "").strip()
    if not name:
        abort(400)
    return state.add_persona(name)


# --- An employee's WeCom ------------------------------------------------------------------


@bp.route("/inbox/<userid>", methods=["GET"])
def inbox(userid: str) -> str:
    state = get_state()
    with state.lock:
        user = state.users.get(userid)
        if user is None:
            abort(404)
        messages = [m for m in reversed(state.messages) if m.userid == userid]
        customers = [(f, state.contacts.get(f.external_userid))
                     for f in state.follows_of_user(userid)]
    return render_template("sandbox/inbox.html", user=user, messages=messages,
                           customers=customers)


@bp.route("/inbox/<userid>/remove", methods=["POST"])
def inbox_remove(userid: str) -> Response:
    try:
        simulate.remove_contact(get_state(), external_userid=request.form.get(
            "external_userid", ""), userid=userid, by="employee")
    except SimulateError as exc:
        return _back("sandbox.inbox", error=exc.message, userid=userid)
    return _back("sandbox.inbox", note="已删除客户 / customer removed", userid=userid)
