"""The sandbox's control API (/sandbox/api): seed the world, make people act, arm faults,
and read back what the app did. JSON in and out; errors are `{"code", "message"}` with a
4xx status."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request

from weiying.wechat.sandbox import simulate
from weiying.wechat.sandbox.common import get_state
from weiying.wechat.sandbox.delivery import rfc3339
from weiying.wechat.sandbox.faults import FaultError
from weiying.wechat.sandbox.simulate import SimulateError, order_view

bp = Blueprint("sandbox_api", __name__)


def _fail(status: int, code: str, message: str) -> Response:
    response = jsonify({"code": code, "message": message})
    response.status_code = status
    return response


@bp.errorhandler(SimulateError)
def _simulate_error(exc: SimulateError) -> Response:
    return _fail(exc.status, exc.code, exc.message)


@bp.errorhandler(FaultError)
def _fault_error(exc: FaultError) -> Response:
    return _fail(400, "bad_fault", str(exc))


def _body() -> dict[str, Any]:
    data = request.get_json(force=True, silent=True)
    if data is None and not request.get_data().strip():
        data = {}
    if not isinstance(data, dict):
        raise SimulateError("bad_json", "send a JSON object")
    return data


def _text(body: dict[str, Any], name: str, *, required: bool = False) -> str:
    value = body.get(name, "")
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise SimulateError("bad_field", f"{name} must be a string")
    if required and not value:
        raise SimulateError("missing_field", f"{name} is required")
    return value


# --- The world ---------------------------------------------------------------------------


@bp.route("/state", methods=["GET"])
def world() -> Response:
    state = get_state()
    config = state.config
    return jsonify({
        "counts": state.counts(),
        "config": {k: getattr(config, k) for k in (
            "corp_id", "agent_id", "oa_app_id", "pay_mch_id", "pay_app_id", "app_base_url",
            "delivery_mode")},
        "faults": state.faults.snapshot(),
    })


@bp.route("/seed", methods=["POST"])
def seed() -> Response:
    body = _body()
    mode = body.pop("mode", "merge")
    if mode not in ("merge", "replace"):
        raise SimulateError("bad_mode", "mode is 'merge' or 'replace'")
    try:
        counts = get_state().seed(body, mode=mode)
    except (TypeError, KeyError, ValueError) as exc:
        raise SimulateError("bad_seed", f"the seed does not fit: {exc}") from None
    return jsonify({"counts": counts})


@bp.route("/reset", methods=["POST"])
def reset() -> Response:
    """An empty world, no faults, and the sandbox clock back where the base clock is."""
    state = get_state()
    state.reset()
    state.faults.clear()
    state.rewind()
    return jsonify({"counts": state.counts()})


def _clock_view() -> Response:
    state = get_state()
    now = state.now()
    return jsonify({"now": now, "time": rfc3339(now), "offset": state.clock_offset})


@bp.route("/clock", methods=["GET"])
def clock_get() -> Response:
    return _clock_view()


@bp.route("/clock", methods=["POST"])
def clock_advance() -> Response:
    """Move the sandbox clock forward `advance_seconds` (tokens, codes and orders expire on
    it; background retries that fall due are tried)."""
    seconds = _body().get("advance_seconds")
    try:
        get_state().advance(seconds)  # type: ignore[arg-type]
    except ValueError as exc:
        raise SimulateError("bad_field", f"advance_seconds: {exc}") from None
    return _clock_view()


@bp.route("/calls", methods=["GET"])
def calls() -> Response:
    state = get_state()
    with state.lock:
        counted = dict(sorted(state.calls.items()))
    return jsonify({"calls": counted, "total": sum(counted.values())})


@bp.route("/calls/reset", methods=["POST"])
def calls_reset() -> Response:
    state = get_state()
    with state.lock:
        state.calls.clear()
    return jsonify({"calls": {}, "total": 0})


@bp.route("/config", methods=["GET"])
def config_get() -> Response:
    return jsonify(get_state().config.public_view())


@bp.route("/config", methods=["POST"])
def config_set() -> Response:
    state = get_state()
    with state.lock:
        try:
            changed = state.config.update(_body())
        except KeyError as exc:
            raise SimulateError("unknown_field", f"no such setting: {exc.args[0]}") from None
        except TypeError as exc:
            raise SimulateError("bad_value", str(exc)) from None
    return jsonify({"changed": changed})


@bp.route("/pay/keys", methods=["GET"])
def pay_keys() -> Response:
    """The platform keys the app must trust (serial -> PEM), and the one signing now."""
    state = get_state()
    serial, _private = state.signing_key()
    return jsonify({"keys": state.verify_keys(), "signing_serial": serial})


@bp.route("/faults", methods=["GET"])
def faults_get() -> Response:
    return jsonify({"faults": get_state().faults.snapshot()})


@bp.route("/faults", methods=["POST"])
def faults_set() -> Response:
    state = get_state()
    state.faults.arm_many(_body())
    return jsonify({"faults": state.faults.snapshot()})


@bp.route("/faults", methods=["DELETE"])
@bp.route("/faults/reset", methods=["POST"])
def faults_clear() -> Response:
    state = get_state()
    state.faults.clear()
    return jsonify({"faults": {}})


# --- Reading back ------------------------------------------------------------------------


@bp.route("/messages", methods=["GET"])
def messages() -> Response:
    """What the app pushed to employees, newest first (?userid= for one)."""
    state = get_state()
    userid = request.args.get("userid", "")
    with state.lock:
        rows = [m.view() for m in reversed(state.messages) if not userid or m.userid == userid]
    return jsonify({"messages": rows, "count": len(rows),
                    "dropped": sum(1 for m in rows if m["dropped"])})


@bp.route("/oa/messages", methods=["GET"])
def oa_messages() -> Response:
    state = get_state()
    with state.lock:
        rows = list(reversed(state.oa_messages))
    return jsonify({"messages": rows})


@bp.route("/deliveries", methods=["GET"])
def deliveries() -> Response:
    """Callbacks and notifications posted to the app, newest first, with every try."""
    state = get_state()
    channel = request.args.get("channel", "")
    limit = request.args.get("limit", "100")
    with state.lock:
        rows = [d.view() for d in reversed(state.deliveries)
                if not channel or d.channel == channel]
    return jsonify({"deliveries": rows[:int(limit) if limit.isdigit() else 100]})


@bp.route("/wait", methods=["POST"])
def wait() -> Response:
    """Wait until background deliveries are done (for scripts driving a real server)."""
    timeout = _body().get("timeout", 10)
    if not isinstance(timeout, int | float) or isinstance(timeout, bool):
        raise SimulateError("bad_field", "timeout is a number of seconds")
    return jsonify({"idle": get_state().deliverer.join(float(timeout))})


@bp.route("/orders", methods=["GET"])
def orders() -> Response:
    state = get_state()
    with state.lock:
        state.open_orders()  # expire what is past its time_expire
        rows = [order_view(o) for o in state.orders.values()]
    return jsonify({"orders": rows})


@bp.route("/orders/<out_trade_no>/close", methods=["POST"])
def order_close(out_trade_no: str) -> Response:
    """Tencent closes the order: a query answers CLOSED and a payment is refused."""
    return jsonify(simulate.close_order(get_state(), out_trade_no=out_trade_no))


@bp.route("/orders/<out_trade_no>/state", methods=["POST"])
def order_state(out_trade_no: str) -> Response:
    """{"trade_state": "USERPAYING" | "PAYERROR" | "REVOKED" | "NOTPAY",
    "trade_state_desc"?}: what a query of the open order answers from now on."""
    body = _body()
    return jsonify(simulate.set_order_state(
        get_state(), out_trade_no=out_trade_no,
        trade_state=_text(body, "trade_state", required=True),
        desc=_text(body, "trade_state_desc")))


@bp.route("/contact_ways", methods=["GET"])
def contact_ways() -> Response:
    state = get_state()
    with state.lock:
        rows = [{**w.api(f"/sandbox/qr/{w.config_id}"), "scans": w.scans}
                for w in state.contact_ways.values()]
    return jsonify({"contact_ways": rows})


@bp.route("/personas", methods=["GET"])
def personas() -> Response:
    state = get_state()
    with state.lock:
        rows = [vars(p).copy() for p in state.personas.values()]
    return jsonify({"personas": rows})


@bp.route("/personas", methods=["POST"])
def persona_add() -> Response:
    body = _body()
    persona = get_state().add_persona(
        _text(body, "name", required=True), unionid=_text(body, "unionid"),
        openid=_text(body, "openid"), external_userid=_text(body, "external_userid"))
    return jsonify(vars(persona).copy())


@bp.route("/oauth/code", methods=["POST"])
def oauth_code() -> Response:
    """A login code as the sign-in page would issue it (userid, or openid for a
    non-member)."""
    body = _body()
    userid, openid = _text(body, "userid"), _text(body, "openid")
    if not userid and not openid:
        raise SimulateError("missing_field", "give userid or openid")
    code = get_state().new_code(userid=userid, openid=openid,
                                external_userid=_text(body, "external_userid"))
    return jsonify({"code": code})


# --- People acting ------------------------------------------------------------------------


@bp.route("/simulate/add_contact", methods=["POST"])
def sim_add_contact() -> Response:
    body = _body()
    add_way = body.get("add_way")
    if add_way is not None and (not isinstance(add_way, int) or isinstance(add_way, bool)):
        raise SimulateError("bad_field", "add_way must be a number")
    return jsonify(simulate.add_contact(
        get_state(), userid=_text(body, "userid"), name=_text(body, "name"),
        external_userid=_text(body, "external_userid"), unionid=_text(body, "unionid"),
        state_value=_text(body, "state"), config_id=_text(body, "config_id"),
        add_way=add_way))


@bp.route("/simulate/remove", methods=["POST"])
def sim_remove() -> Response:
    body = _body()
    return jsonify(simulate.remove_contact(
        get_state(), external_userid=_text(body, "external_userid", required=True),
        userid=_text(body, "userid", required=True), by=_text(body, "by", required=True)))


@bp.route("/simulate/edit_contact", methods=["POST"])
def sim_edit_contact() -> Response:
    body = _body()
    external_userid = _text(body, "external_userid", required=True)
    userid = _text(body, "userid", required=True)
    changes = {k: v for k, v in body.items() if k not in ("external_userid", "userid")}
    return jsonify(simulate.edit_contact(get_state(), external_userid=external_userid,
                                         userid=userid, **changes))


@bp.route("/simulate/directory", methods=["POST"])
def sim_directory() -> Response:
    body = _body()
    change = _text(body, "change", required=True)
    data = {k: v for k, v in body.items() if k != "change"}
    try:
        return jsonify(simulate.directory(get_state(), change, data))
    except (TypeError, ValueError) as exc:
        raise SimulateError("bad_field", f"the change does not fit: {exc}") from None


@bp.route("/simulate/oa_scan", methods=["POST"])
def sim_oa_scan() -> Response:
    body = _body()
    first_time = body.get("first_time")
    if first_time is not None and not isinstance(first_time, bool):
        raise SimulateError("bad_field", "first_time is true or false")
    return jsonify(simulate.oa_scan(
        get_state(), openid=_text(body, "openid"), unionid=_text(body, "unionid"),
        scene=_text(body, "scene"), ticket=_text(body, "ticket"), first_time=first_time,
        name=_text(body, "name")))


@bp.route("/simulate/oa_unsubscribe", methods=["POST"])
def sim_oa_unsubscribe() -> Response:
    body = _body()
    return jsonify(simulate.oa_unsubscribe(get_state(),
                                           openid=_text(body, "openid", required=True)))


@bp.route("/simulate/oa_text", methods=["POST"])
def sim_oa_text() -> Response:
    body = _body()
    return jsonify(simulate.oa_text(get_state(), openid=_text(body, "openid", required=True),
                                    content=_text(body, "content", required=True)))


@bp.route("/simulate/pay", methods=["POST"])
def sim_pay() -> Response:
    body = _body()
    return jsonify(simulate.pay(get_state(),
                                out_trade_no=_text(body, "out_trade_no", required=True),
                                openid=_text(body, "openid")))


@bp.route("/simulate/pay_notify", methods=["POST"])
def sim_pay_notify() -> Response:
    body = _body()
    return jsonify(simulate.resend_pay_notification(
        get_state(), out_trade_no=_text(body, "out_trade_no", required=True)))


@bp.route("/simulate/refund", methods=["POST"])
def sim_refund() -> Response:
    """{"out_trade_no", "amount"?: fen (default: what is left), "out_refund_no"?}: the
    refund succeeds and its REFUND.SUCCESS notification is posted."""
    body = _body()
    amount = body.get("amount")
    if amount is not None and (isinstance(amount, bool) or not isinstance(amount, int)):
        raise SimulateError("bad_field", "amount is a whole number of fen")
    return jsonify(simulate.refund(
        get_state(), out_trade_no=_text(body, "out_trade_no", required=True), amount=amount,
        out_refund_no=_text(body, "out_refund_no")))


@bp.route("/simulate/transfers", methods=["POST"])
def sim_transfers() -> Response:
    """Settle every waiting departure transfer now."""
    return jsonify({"deliveries": simulate.settle_transfers(get_state(), everything=True)})
