"""WeCom: the server API (qyapi.weixin.qq.com → /wecom), the OAuth2 page inside WeCom
(open.weixin.qq.com → /wecom-open) and the desktop QR login page
(login.work.weixin.qq.com → /wecom-login).

Shapes follow Tencent's documentation: HTTP 200 with `errcode`/`errmsg` in every answer,
cursors that are opaque strings, empty `next_cursor` on the last page.
"""

from __future__ import annotations

import math
import secrets
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from flask import Blueprint, Response, abort, jsonify, redirect, render_template, request

from weiying.wechat.sandbox import simulate
from weiying.wechat.sandbox.common import (
    ERRMSG,
    ApiError,
    as_int,
    get_state,
    json_body,
    ok,
    public_base,
    token_api,
    unguarded,
)
from weiying.wechat.sandbox.state import (
    FOLLOW_PAGE,
    ContactWay,
    Message,
    Transfer,
    decode_cursor,
    encode_cursor,
)

bp = Blueprint("wecom", __name__)
open_bp = Blueprint("wecom_open", __name__)
login_bp = Blueprint("wecom_login", __name__)

# Limitation: a token from either secret works on every endpoint; WeCom answers 48002 when
# the secret's app lacks the permission (e.g. customer contact). The client falls back from
# one secret to the other, so a mix-up there passes here and fails at Tencent.
KINDS = ("wecom_app", "wecom_contact")
api = token_api(KINDS, 40014)

MSGTYPES = {"text", "textcard", "markdown", "template_card", "news", "image", "file"}
STATE_MAX = 30


def _page(items: list[Any], cursor: str, limit: int) -> tuple[list[Any], str]:
    offset = decode_cursor(cursor)
    if offset is None:
        raise ApiError(40058, "invalid cursor")
    chunk = items[offset:offset + limit]
    more = offset + limit < len(items)
    return chunk, encode_cursor(offset + limit) if more else ""


def _limit(value: Any, default: int, maximum: int) -> int:
    limit = as_int(value, default)
    if limit is None or not 1 <= limit <= maximum:
        raise ApiError(40058, f"limit must be 1-{maximum}")
    return limit


# --- Token and tickets ---------------------------------------------------------------------


@bp.route("/cgi-bin/gettoken", methods=["GET"])
@unguarded
def gettoken() -> Response:
    state = get_state()
    config = state.config
    if request.args.get("corpid", "") != config.corp_id:
        raise ApiError(40013)
    secret = request.args.get("corpsecret", "")
    if secret and secret == config.app_secret:
        kind = "wecom_app"
    elif secret and secret == config.contact_secret:
        kind = "wecom_contact"
    else:
        raise ApiError(40001)
    token = state.issue_token(kind)
    expires_in = max(1, math.ceil(token.expires_at - state.now()))
    return ok(access_token=token.value, expires_in=expires_in)


@bp.route("/cgi-bin/get_jsapi_ticket", methods=["GET"])
@api
def jsapi_ticket() -> Response:
    ticket, expires_in = get_state().ticket("corp")
    return ok(ticket=ticket, expires_in=expires_in)


@bp.route("/cgi-bin/ticket/get", methods=["GET"])
@api
def agent_ticket() -> Response:
    if request.args.get("type") != "agent_config":
        raise ApiError(40058, "type must be agent_config")
    ticket, expires_in = get_state().ticket("agent")
    return ok(ticket=ticket, expires_in=expires_in)


# --- Directory -----------------------------------------------------------------------------


@bp.route("/cgi-bin/department/list", methods=["GET"])
@api
def department_list() -> Response:
    state = get_state()
    with state.lock:
        root = as_int(request.args.get("id"))
        if request.args.get("id") and (root is None or root not in state.departments):
            raise ApiError(60123)
        depts = (state.department_subtree(root) if root is not None
                 else sorted(state.departments.values(), key=lambda d: d.id))
        return ok(department=[d.api() for d in depts])


@bp.route("/cgi-bin/department/simplelist", methods=["GET"])
@api
def department_simplelist() -> Response:
    state = get_state()
    with state.lock:
        root = as_int(request.args.get("id"))
        depts = (state.department_subtree(root) if root is not None
                 else sorted(state.departments.values(), key=lambda d: d.id))
        return ok(department_id=[{"id": d.id, "parentid": d.parentid, "order": d.order}
                                 for d in depts])


@bp.route("/cgi-bin/user/list_id", methods=["GET", "POST"])
@api
def user_list_id() -> Response:
    body = json_body()
    state = get_state()
    with state.lock:
        rows = [{"userid": u.userid, "department": d}
                for u in state.active_users() for d in u.department]
        chunk, next_cursor = _page(rows, str(body.get("cursor", "") or ""),
                                   _limit(body.get("limit"), 1000, 10000))
        return ok(next_cursor=next_cursor, dept_user=chunk)


@bp.route("/cgi-bin/user/get", methods=["GET"])
@api
def user_get() -> Response:
    state = get_state()
    with state.lock:
        user = state.users.get(request.args.get("userid", ""))
        if user is None:
            raise ApiError(60111)
        return ok(**user.api())


# --- Customers -----------------------------------------------------------------------------


@bp.route("/cgi-bin/externalcontact/get_follow_user_list", methods=["GET", "POST"])
@api
def follow_user_list() -> Response:
    state = get_state()
    with state.lock:
        return ok(follow_user=[u.userid for u in state.active_users() if u.contact_enabled])


@bp.route("/cgi-bin/externalcontact/list", methods=["GET"])
@api
def externalcontact_list() -> Response:
    state = get_state()
    userid = request.args.get("userid", "")
    with state.lock:
        if userid not in state.users:
            raise ApiError(60111)
        ids = [f.external_userid for f in state.follows_of_user(userid)]
        if not ids:
            raise ApiError(84061)  # WeCom's answer for a member without customers
        return ok(external_userid=ids)


@bp.route("/cgi-bin/externalcontact/get", methods=["GET"])
@api
def externalcontact_get() -> Response:
    state = get_state()
    with state.lock:
        contact = state.contacts.get(request.args.get("external_userid", ""))
        if contact is None:
            raise ApiError(40096)
        follows = state.follows_of_contact(contact.external_userid)
        if not follows:
            raise ApiError(84061)
        chunk, next_cursor = _page(follows, request.args.get("cursor", ""), FOLLOW_PAGE)
        data: dict[str, Any] = {"external_contact": contact.api(),
                                "follow_user": [state.follow_api(f) for f in chunk]}
        if next_cursor:
            data["next_cursor"] = next_cursor
        return ok(**data)


@bp.route("/cgi-bin/externalcontact/batch/get_by_user", methods=["POST"])
@api
def batch_get_by_user() -> Response:
    body = json_body()
    userids = body.get("userid_list")
    if not isinstance(userids, list) or not 1 <= len(userids) <= 100:
        raise ApiError(40058, "userid_list holds 1-100 userids")
    limit = _limit(body.get("limit"), 50, 100)
    state = get_state()
    with state.lock:
        rows = state.follow_keys_of_users([str(u) for u in userids])
        chunk, next_cursor = _page(rows, str(body.get("cursor", "") or ""), limit)
        return ok(external_contact_list=[
            {"external_contact": state.contacts[ext].api(),
             "follow_info": state.follow_api(state.follows[(ext, userid)], batch=True)}
            for ext, userid in chunk
        ], next_cursor=next_cursor)


# Limitation: the corp tag library is only seeded (seed "corp_tags"): add_corp_tag,
# edit_corp_tag, del_corp_tag and mark_tag are not served, and no change_external_tag
# callback is posted.
@bp.route("/cgi-bin/externalcontact/get_corp_tag_list", methods=["POST"])
@api
def get_corp_tag_list() -> Response:
    body = json_body()
    filters = {}
    for name in ("tag_id", "group_id"):
        value = body.get(name) or []
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ApiError(40058, f"{name} must be a list of ids")
        filters[name] = value
    state = get_state()
    with state.lock:
        return ok(tag_group=state.corp_tag_list(filters["tag_id"], filters["group_id"]))


@bp.route("/cgi-bin/externalcontact/get_unassigned_list", methods=["POST"])
@api
def unassigned_list() -> Response:
    body = json_body()
    state = get_state()
    with state.lock:
        rows = [{"handover_userid": f.userid, "external_userid": f.external_userid,
                 "dimission_time": int(state.departed[userid])}
                for userid in sorted(state.departed) if userid not in state.users
                for f in state.follows_of_user(userid)]
        chunk, next_cursor = _page(rows, str(body.get("cursor", "") or ""),
                                   _limit(body.get("page_size"), 1000, 1000))
        return ok(info=chunk, is_last=not next_cursor, next_cursor=next_cursor)


# --- Channel codes (联系我) -----------------------------------------------------------------


def _qr_url(config_id: str) -> str:
    return f"{public_base()}/sandbox/qr/{config_id}"


def _way_fields(body: dict[str, Any], way: ContactWay | None) -> dict[str, Any]:
    """Validate the fields of add/update_contact_way; the values to set."""
    state = get_state()
    values: dict[str, Any] = {}
    if way is None:
        for name in ("type", "scene"):
            value = as_int(body.get(name))
            if value not in (1, 2):
                raise ApiError(40058, f"{name} must be 1 or 2")
            values[name] = value
    if "state" in body:
        text = str(body.get("state") or "")
        if len(text) > STATE_MAX:
            raise ApiError(40058, f"state is longer than {STATE_MAX} characters")
        values["state"] = text
    if "remark" in body:
        values["remark"] = str(body.get("remark") or "")[:30]
    if "style" in body:
        values["style"] = as_int(body.get("style"), 1) or 1
    if "skip_verify" in body:
        values["skip_verify"] = bool(body.get("skip_verify"))
    if "is_temp" in body:
        values["is_temp"] = bool(body.get("is_temp"))
        values["expires_in"] = as_int(body.get("expires_in"), 604800) or 604800
    for name in ("user", "party"):
        if name in body:
            items = body.get(name) or []
            if not isinstance(items, list):
                raise ApiError(40058, f"{name} must be a list")
            values[name] = [str(u) for u in items] if name == "user" else [
                as_int(p) for p in items]
    users = values.get("user", way.user if way else [])
    parties = values.get("party", way.party if way else [])
    for userid in users:
        user = state.users.get(userid)
        if user is None or user.status == 5:
            raise ApiError(60111, userid)
    for party in parties:
        if party not in state.departments:
            raise ApiError(60123, str(party))
    kind = values.get("type", way.type if way else 1)
    if not users and not parties:
        raise ApiError(40058, "give user or party")
    if kind == 1 and (len(users) != 1 or parties):
        raise ApiError(40058, "type 1 takes exactly one user")
    return values


@bp.route("/cgi-bin/externalcontact/add_contact_way", methods=["POST"])
@api
def add_contact_way() -> Response:
    body = json_body()
    state = get_state()
    with state.lock:
        values = _way_fields(body, None)
        way = ContactWay(secrets.token_hex(16), created=state.now(), **values)
        state.contact_ways[way.config_id] = way
    data: dict[str, Any] = {"config_id": way.config_id}
    if way.scene == 2:
        data["qr_code"] = _qr_url(way.config_id)
    return ok(**data)


def _way(body: dict[str, Any]) -> ContactWay:
    way = get_state().contact_ways.get(str(body.get("config_id", "")))
    if way is None:
        raise ApiError(40058, "invalid config_id")
    return way


@bp.route("/cgi-bin/externalcontact/get_contact_way", methods=["POST"])
@api
def get_contact_way() -> Response:
    body = json_body()
    state = get_state()
    with state.lock:
        way = _way(body)
        return ok(contact_way=way.api(_qr_url(way.config_id)))


@bp.route("/cgi-bin/externalcontact/update_contact_way", methods=["POST"])
@api
def update_contact_way() -> Response:
    body = json_body()
    state = get_state()
    with state.lock:
        way = _way(body)
        for name, value in _way_fields(body, way).items():
            setattr(way, name, value)
    return ok()


@bp.route("/cgi-bin/externalcontact/del_contact_way", methods=["POST"])
@api
def del_contact_way() -> Response:
    body = json_body()
    state = get_state()
    with state.lock:
        way = _way(body)
        del state.contact_ways[way.config_id]
    return ok()


@bp.route("/cgi-bin/externalcontact/list_contact_way", methods=["POST"])
@api
def list_contact_way() -> Response:
    body = json_body()
    state = get_state()
    with state.lock:
        start = as_int(body.get("start_time"), 0) or 0
        end = as_int(body.get("end_time"), 0) or 0
        ways = [w for w in sorted(state.contact_ways.values(), key=lambda w: w.created)
                if w.created >= start and (not end or w.created <= end)]
        chunk, next_cursor = _page([{"config_id": w.config_id} for w in ways],
                                   str(body.get("cursor", "") or ""),
                                   _limit(body.get("limit"), 100, 1000))
        return ok(contact_way=chunk, next_cursor=next_cursor)


# --- App messages --------------------------------------------------------------------------


def _recipients(body: dict[str, Any]) -> tuple[list[str], list[str]]:
    state = get_state()
    touser = str(body.get("touser", "") or "")
    wanted = [u for u in touser.split("|") if u]
    valid: list[str] = []
    invalid: list[str] = []
    if touser == "@all":
        valid = [u.userid for u in state.active_users()]
    else:
        for userid in wanted:
            user = state.users.get(userid)
            (valid if user is not None and user.status == 1 else invalid).append(userid)
    for party in str(body.get("toparty", "") or "").split("|"):
        dept = as_int(party)
        if dept is not None and dept in state.departments:
            valid += [u.userid for d in state.department_subtree(dept)
                      for u in state.active_users() if d.id in u.department]
    return list(dict.fromkeys(valid)), invalid


def _content(msgtype: str, body: dict[str, Any]) -> dict[str, Any]:
    content = body.get(msgtype)
    if not isinstance(content, dict):
        raise ApiError(44004, f"{msgtype} is missing")
    if msgtype in ("text", "markdown") and not str(content.get("content", "")).strip():
        raise ApiError(44004)
    if msgtype == "textcard" and not all(content.get(k) for k in ("title", "description",
                                                                    "url")):
        raise ApiError(40058, "textcard needs title, description and url")
    if msgtype == "template_card" and not content.get("card_type"):
        raise ApiError(40058, "template_card needs card_type")
    return dict(content)


@bp.route("/cgi-bin/message/send", methods=["POST"])
@api
def message_send() -> Response:
    """Accepted messages past 30 a minute or 1,000 an hour per member are dropped without
    a word, exactly as WeCom does: the answer is still errcode 0 with a msgid."""
    body = json_body()
    state = get_state()
    if str(body.get("agentid", "")) != str(state.config.agent_id):
        raise ApiError(40056)
    msgtype = str(body.get("msgtype", ""))
    if msgtype not in MSGTYPES:
        raise ApiError(40008)
    content = _content(msgtype, body)
    with state.lock:
        valid, invalid = _recipients(body)
        if not valid:
            return jsonify({"errcode": 81013, "errmsg": ERRMSG[81013],
                            "invaliduser": "|".join(invalid)})
        msgid = state.next_msgid()
        for userid in valid:
            accepted, reason = state.accepts_message(userid)
            state.messages.append(Message(msgid, userid, msgtype, content,
                                          str(body.get("agentid")), state.now(),
                                          dropped=not accepted, reason=reason))
    data: dict[str, Any] = {"msgid": msgid}
    if invalid:
        data["invaliduser"] = "|".join(invalid)
    if msgtype == "template_card":
        data["response_code"] = secrets.token_urlsafe(24)
    return ok(**data)


# --- Login ---------------------------------------------------------------------------------


@bp.route("/cgi-bin/auth/getuserinfo", methods=["GET"])
@api
def getuserinfo() -> Response:
    code = get_state().use_code(request.args.get("code", ""))
    if code is None:
        raise ApiError(40029)
    if code.userid:
        return ok(userid=code.userid)
    data = {"openid": code.openid}
    if code.external_userid:
        data["external_userid"] = code.external_userid
    return ok(**data)


def _with_query(url: str, **params: str) -> str:
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True) + list(params.items())
    return urlunsplit(parts._replace(query=urlencode(query)))


def _signin(*, members_only: bool) -> Any:
    """The "signed in to WeCom as…" page: pick who you are, go back with a code."""
    state = get_state()
    args = request.values
    redirect_uri = args.get("redirect_uri", "")
    appid = args.get("appid", "")
    if not redirect_uri or appid != state.config.corp_id:
        return render_template("sandbox/signin.html", error=(
            "redirect_uri 缺失 / missing" if not redirect_uri
            else f"appid {appid!r} 不是本企业 / is not this corp's id")), 400
    if request.method == "POST":
        pick = request.form.get("pick", "")
        with state.lock:
            if pick.startswith("user:"):
                userid = pick[5:]
                if userid not in state.users:
                    abort(400)
                code = state.new_code(userid=userid)
            elif pick.startswith("persona:") and not members_only:
                persona = state.personas.get(pick[8:])
                if persona is None:
                    abort(400)
                # A non-member has an openid; a customer of the corp also its external id.
                is_customer = state.follows.has_contact(persona.external_userid)
                code = state.new_code(
                    openid=persona.openid,
                    external_userid=persona.external_userid if is_customer else "")
            elif pick == "stranger" and not members_only:
                code = state.new_code(openid="o" + secrets.token_hex(13))
            else:
                abort(400)
        return redirect(_with_query(redirect_uri, code=code, state=args.get("state", "")))
    with state.lock:
        users = sorted(state.active_users(), key=lambda u: u.userid)
        personas = [] if members_only else list(state.personas.values())
    return render_template("sandbox/signin.html", users=users, personas=personas,
                           members_only=members_only, redirect_uri=redirect_uri,
                           error=None)


@open_bp.route("/connect/oauth2/authorize", methods=["GET", "POST"])
def oauth2_authorize() -> Any:
    return _signin(members_only=False)


@login_bp.route("/wwlogin/sso/login", methods=["GET", "POST"])
def sso_login() -> Any:
    return _signin(members_only=True)


# --- Departure (离职继承) -------------------------------------------------------------------


# Limitation: only departure (resigned) transfers; on-job transfers
# (externalcontact/transfer_customer) and WeCom's daily transfer caps are not simulated.
@bp.route("/cgi-bin/externalcontact/resigned/transfer_customer", methods=["POST"])
@api
def resigned_transfer_customer() -> Response:
    body = json_body()
    handover = str(body.get("handover_userid", ""))
    takeover = str(body.get("takeover_userid", ""))
    externals = body.get("external_userid")
    if not isinstance(externals, list) or not 1 <= len(externals) <= 100:
        raise ApiError(40058, "external_userid holds 1-100 ids")
    state = get_state()
    with state.lock:
        if handover in state.users:
            raise ApiError(40097, "the handover member has not left")
        target = state.users.get(takeover)
        if target is None or target.status != 1:
            raise ApiError(60111, takeover)
        now = state.now()
        results = []
        for external in (str(e) for e in externals):
            if external not in state.contacts:
                results.append({"external_userid": external, "errcode": 40096})
            elif (external, handover) not in state.follows:
                results.append({"external_userid": external, "errcode": 84061})
            elif any(t.external_userid == external and t.handover_userid == handover
                     and t.status == 2 for t in state.transfers):
                results.append({"external_userid": external, "errcode": 40100})
            else:
                state.transfers.append(Transfer(
                    "resigned", handover, takeover, external, now,
                    now + state.config.transfer_seconds))
                results.append({"external_userid": external, "errcode": 0})
    return ok(customer=results)


@bp.route("/cgi-bin/externalcontact/resigned/transfer_result", methods=["POST"])
@api
def resigned_transfer_result() -> Response:
    body = json_body()
    state = get_state()
    simulate.settle_transfers(state)
    handover = str(body.get("handover_userid", ""))
    takeover = str(body.get("takeover_userid", ""))
    with state.lock:
        rows = []
        for t in state.transfers:
            if t.handover_userid != handover or t.takeover_userid != takeover:
                continue
            row: dict[str, Any] = {"external_userid": t.external_userid, "status": t.status}
            if t.status == 1:
                row["takeover_time"] = t.takeover_time
            rows.append(row)
        chunk, next_cursor = _page(rows, str(body.get("cursor", "") or ""), 1000)
    return ok(customer=chunk, next_cursor=next_cursor)
