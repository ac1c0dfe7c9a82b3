"""The Official Account: its API (api.weixin.qq.com → /oa) and the QR image host
(mp.weixin.qq.com → /oa-mp)."""

from __future__ import annotations

import math
import secrets
from typing import Any

from flask import Blueprint, Response, abort, jsonify, request

from weiying.wechat.sandbox.common import (
    ApiError,
    as_int,
    get_state,
    json_body,
    ok,
    public_base,
    token_api,
    unguarded,
)
from weiying.wechat.sandbox.qr import svg_response
from weiying.wechat.sandbox.state import QrTicket

bp = Blueprint("oa", __name__)
mp_bp = Blueprint("oa_mp", __name__)

# The OA says 40001 (not WeCom's 40014) for a token it does not know.
api = token_api(("oa",), 40001)

ACTIONS = {"QR_SCENE", "QR_STR_SCENE", "QR_LIMIT_SCENE", "QR_LIMIT_STR_SCENE"}
SCENE_STR_MAX = 64
TEMP_DEFAULT, TEMP_MAX = 60, 2592000


def _issue(appid: str, secret: str, *, force: bool) -> Response:
    state = get_state()
    config = state.config
    if appid != config.oa_app_id:
        raise ApiError(40013, "invalid appid")
    if secret != config.oa_secret:
        raise ApiError(40125)
    token = state.issue_token("oa", force=force)
    return jsonify({"access_token": token.value,
                            "expires_in": max(1, math.ceil(token.expires_at - state.now()))})


@bp.route("/cgi-bin/stable_token", methods=["POST"])
@unguarded
def stable_token() -> Response:
    """The stable token: the same one until it expires, unless force_refresh."""
    body = json_body()
    if body.get("grant_type") != "client_credential":
        raise ApiError(40002)
    return _issue(str(body.get("appid", "")), str(body.get("secret", "")),
                  force=bool(body.get("force_refresh")))


@bp.route("/cgi-bin/token", methods=["GET"])
@unguarded
def classic_token() -> Response:
    if request.args.get("grant_type") != "client_credential":
        raise ApiError(40002)
    return _issue(request.args.get("appid", ""), request.args.get("secret", ""), force=False)


@bp.route("/cgi-bin/qrcode/create", methods=["POST"])
@api
def qrcode_create() -> Response:
    body = json_body()
    action = str(body.get("action_name", ""))
    if action not in ACTIONS:
        raise ApiError(40097, "invalid action_name")
    scene_info = (body.get("action_info") or {}).get("scene") or {}
    if action.endswith("STR_SCENE"):
        scene = str(scene_info.get("scene_str", "") or "")
        if not 1 <= len(scene) <= SCENE_STR_MAX:
            raise ApiError(40097, f"scene_str must be 1-{SCENE_STR_MAX} characters")
    else:
        scene_id = as_int(scene_info.get("scene_id"))
        if scene_id is None or scene_id < 1:
            raise ApiError(40097, "scene_id must be a positive integer")
        scene = str(scene_id)
    expire = 0
    if not action.startswith("QR_LIMIT"):
        expire = as_int(body.get("expire_seconds"), TEMP_DEFAULT) or TEMP_DEFAULT
        expire = max(1, min(expire, TEMP_MAX))
    state = get_state()
    with state.lock:
        ticket = QrTicket("gQ" + secrets.token_urlsafe(42), action, scene, state.now(), expire)
        state.qr_tickets[ticket.ticket] = ticket
    data: dict[str, Any] = {"ticket": ticket.ticket,
                            "url": f"{public_base()}/sandbox/oa/scan/{ticket.ticket}"}
    if expire:
        data["expire_seconds"] = expire
    return jsonify(data)


@bp.route("/cgi-bin/user/info", methods=["GET"])
@api
def user_info() -> Response:
    state = get_state()
    with state.lock:
        follower = state.followers.get(request.args.get("openid", ""))
        if follower is None:
            raise ApiError(40003)
        return jsonify(follower.api())


@bp.route("/cgi-bin/user/get", methods=["GET"])
@api
def user_get() -> Response:
    """The followers' openids, 10,000 a page after next_openid."""
    state = get_state()
    with state.lock:
        openids = [f.openid for f in state.followers.values() if f.subscribed]
        after = request.args.get("next_openid", "")
        start = openids.index(after) + 1 if after in openids else 0
        chunk = openids[start:start + 10000]
        return jsonify({"total": len(openids), "count": len(chunk),
                                "data": {"openid": chunk},
                                "next_openid": chunk[-1] if chunk else ""})


@bp.route("/cgi-bin/message/template/send", methods=["POST"])
@api
def template_send() -> Response:
    body = json_body()
    state = get_state()
    with state.lock:
        follower = state.followers.get(str(body.get("touser", "")))
        if follower is None:
            raise ApiError(40003)
        if not follower.subscribed:
            raise ApiError(43004)
        if not body.get("template_id"):
            raise ApiError(40097, "template_id is missing")
        msgid = secrets.randbits(62)
        state.oa_messages.append({"msgid": msgid, "touser": follower.openid,
                                  "template_id": body.get("template_id"),
                                  "url": body.get("url", ""), "data": body.get("data", {}),
                                  "time": state.now()})
    return ok(msgid=msgid)


@mp_bp.route("/cgi-bin/showqrcode", methods=["GET"])
def showqrcode() -> Response:
    state = get_state()
    with state.lock:
        ticket = state.qr_tickets.get(request.args.get("ticket", ""))
    if ticket is None:
        abort(404)
    return svg_response(f"{public_base()}/sandbox/oa/scan/{ticket.ticket}")
