"""WeChat Pay v3 (api.mch.weixin.qq.com → /pay): Native orders, order queries and closing.

Requests carry `Authorization: WECHATPAY2-SHA256-RSA2048 mchid=…,nonce_str=…,signature=…,
timestamp=…,serial_no=…`; with the merchant's public key configured the signature over
`METHOD\\nURL\\ntimestamp\\nnonce\\nbody\\n` is verified. Every answer is signed with the
platform key (Wechatpay-Serial/Timestamp/Nonce/Signature). Errors are HTTP 4xx with
`{"code": …, "message": …}`.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import re
import secrets
import string
import uuid
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from flask import Blueprint, Response, jsonify, request

from weiying.wechat import crypto
from weiying.wechat.sandbox.common import get_state
from weiying.wechat.sandbox.delivery import transaction
from weiying.wechat.sandbox.state import OPEN_STATES, Order

bp = Blueprint("pay", __name__)

# Limitation: Native orders only (no JSAPI, H5 or App orders), and no refund or bill API:
# a refund is made with the control API (POST /sandbox/api/simulate/refund), which posts
# its REFUND.SUCCESS notification; it always succeeds (no REFUND.ABNORMAL or
# REFUND.CLOSED), and the app cannot ask for one or query it here.

PREFIX = "/pay"
AUTH_SCHEME = "WECHATPAY2-SHA256-RSA2048"
_AUTH_PARAM = re.compile(r'(\w+)="([^"]*)"')
_OUT_TRADE_NO = re.compile(r"[0-9A-Za-z_\-|*]{6,32}")
REQUEST_WINDOW = 300


class PayError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def fail(status: int, code: str, message: str) -> Response:
    response = jsonify({"code": code, "message": message})
    response.status_code = status
    return response


@bp.errorhandler(PayError)
def _pay_error(exc: PayError) -> Response:
    return fail(exc.status, exc.code, exc.message)


@bp.before_request
def _authenticate() -> Response | None:
    """Check the merchant's request signature (when the sandbox knows the merchant key)."""
    state = get_state()
    config = state.config
    scheme, _sep, rest = request.headers.get("Authorization", "").partition(" ")
    if scheme != AUTH_SCHEME:
        return fail(401, "SIGN_ERROR", "Authorization 头缺失或不是 WECHATPAY2-SHA256-RSA2048")
    params = dict(_AUTH_PARAM.findall(rest))
    if params.get("mchid") != config.pay_mch_id:
        return fail(401, "SIGN_ERROR", "Authorization 中的 mchid 与商户号不符")
    if not config.pay_merchant_public_key:
        return None
    timestamp = params.get("timestamp", "")
    if not timestamp.isdigit() or abs(int(timestamp) - state.now()) > REQUEST_WINDOW:
        return fail(401, "SIGN_ERROR", "timestamp 超出有效期")
    url = request.path[len(PREFIX):]
    if request.query_string:
        url += "?" + request.query_string.decode("latin-1")
    message = (f"{request.method}\n{url}\n{timestamp}\n{params.get('nonce_str', '')}\n".encode()
               + request.get_data() + b"\n")
    try:
        key = serialization.load_pem_public_key(config.pay_merchant_public_key.encode())
        if not isinstance(key, rsa.RSAPublicKey):
            raise ValueError("not RSA")
        key.verify(base64.b64decode(params.get("signature", ""), validate=True), message,
                   padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, ValueError, binascii.Error):
        return fail(401, "SIGN_ERROR", "签名错误")
    return None


@bp.after_request
def _sign(response: Response) -> Response:
    state = get_state()
    serial, private = state.signing_key()
    timestamp = str(state.now_int())
    nonce = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(32))
    body = response.get_data()
    response.headers["Wechatpay-Serial"] = serial
    response.headers["Wechatpay-Timestamp"] = timestamp
    response.headers["Wechatpay-Nonce"] = nonce
    response.headers["Wechatpay-Signature"] = crypto.pay_sign(
        private, crypto.pay_message(timestamp, nonce, body))
    response.headers["Wechatpay-Signature-Type"] = AUTH_SCHEME
    response.headers["Request-ID"] = str(uuid.uuid4())
    return response


def _body() -> dict[str, Any]:
    try:
        data = json.loads(request.get_data() or b"{}")
    except (ValueError, UnicodeDecodeError):
        raise PayError(400, "PARAM_ERROR", "请求体不是合法的 JSON") from None
    if not isinstance(data, dict):
        raise PayError(400, "PARAM_ERROR", "请求体不是 JSON 对象")
    return data


def _required(data: dict[str, Any], name: str) -> Any:
    value = data.get(name)
    if value in (None, ""):
        raise PayError(400, "PARAM_ERROR",
                       f"输入源“/body/{name}”映射到字段“{name}”必填性规则校验失败，此字段为必填项")
    return value


def _check_mchid(mchid: Any) -> None:
    if not mchid:
        raise PayError(400, "PARAM_ERROR", "mchid 为必填项")
    if mchid != get_state().config.pay_mch_id:
        raise PayError(400, "MCH_NOT_EXISTS", "商户号不存在")


@bp.route("/v3/pay/transactions/native", methods=["POST"])
def native() -> Response:
    data = _body()
    state = get_state()
    config = state.config
    appid = _required(data, "appid")
    _check_mchid(_required(data, "mchid"))
    if appid != config.pay_app_id:
        raise PayError(400, "APPID_MCHID_NOT_MATCH", "appid和mch_id不匹配")
    description = str(_required(data, "description"))
    if len(description) > 127:
        raise PayError(400, "PARAM_ERROR", "description 长度超过 127")
    out_trade_no = str(_required(data, "out_trade_no"))
    if not _OUT_TRADE_NO.fullmatch(out_trade_no):
        raise PayError(400, "PARAM_ERROR", "out_trade_no 须为 6-32 位字母、数字、_-|*")
    notify_url = str(_required(data, "notify_url"))
    if not notify_url.startswith(("http://", "https://")):
        raise PayError(400, "PARAM_ERROR", "notify_url 须为 http(s) 地址")
    amount = data.get("amount") or {}
    total = amount.get("total") if isinstance(amount, dict) else None
    if isinstance(total, bool) or not isinstance(total, int) or total < 1:
        raise PayError(400, "PARAM_ERROR", "amount.total 须为正整数（分）")
    currency = str(amount.get("currency") or "CNY")
    time_expire = str(data.get("time_expire") or "")
    expires_at = 0.0
    if time_expire:
        try:
            moment = dt.datetime.fromisoformat(time_expire)
        except ValueError:
            raise PayError(400, "PARAM_ERROR", "time_expire 须为 RFC 3339 时间") from None
        if moment.tzinfo is None:
            raise PayError(400, "PARAM_ERROR", "time_expire 须带时区")
        expires_at = moment.timestamp()

    attach = str(data.get("attach") or "")
    with state.lock:
        existing = state.order(out_trade_no)
        if existing is not None:
            if existing.trade_state in ("SUCCESS", "REFUND"):
                raise PayError(400, "ORDERPAID", "该订单已支付")
            if existing.trade_state not in OPEN_STATES:
                raise PayError(400, "ORDER_CLOSED", "订单已关闭")
            same = (existing.appid, existing.description, existing.total, existing.attach,
                    existing.currency) == (appid, description, total, attach, currency)
            if not same:
                raise PayError(400, "INVALID_REQUEST", "201 商户订单号重复")
            return jsonify({"code_url": existing.code_url})
        order = Order(out_trade_no, appid, config.pay_mch_id, description, total, notify_url,
                      state.now(), currency=currency, time_expire=time_expire,
                      expires_at=expires_at, attach=attach,
                      code="".join(secrets.choice(string.ascii_letters + string.digits)
                                   for _ in range(9)))
        state.orders[out_trade_no] = order
    return jsonify({"code_url": order.code_url})


def _order(out_trade_no: str) -> Order:
    order = get_state().order(out_trade_no)  # past its time_expire: CLOSED
    if order is None:
        raise PayError(404, "ORDER_NOT_EXIST", "订单不存在")
    return order


@bp.route("/v3/pay/transactions/out-trade-no/<out_trade_no>", methods=["GET"])
def query(out_trade_no: str) -> Response:
    _check_mchid(request.args.get("mchid", ""))
    state = get_state()
    with state.lock:
        return jsonify(transaction(_order(out_trade_no)))


@bp.route("/v3/pay/transactions/id/<transaction_id>", methods=["GET"])
def query_by_id(transaction_id: str) -> Response:
    _check_mchid(request.args.get("mchid", ""))
    state = get_state()
    with state.lock:
        found = next((o for o in state.orders.values()
                      if o.transaction_id and o.transaction_id == transaction_id), None)
        if found is None:
            raise PayError(404, "ORDER_NOT_EXIST", "订单不存在")
        return jsonify(transaction(_order(found.out_trade_no)))


@bp.route("/v3/pay/transactions/out-trade-no/<out_trade_no>/close", methods=["POST"])
def close(out_trade_no: str) -> Response:
    _check_mchid(_body().get("mchid", ""))
    state = get_state()
    with state.lock:
        order = _order(out_trade_no)
        if order.trade_state in ("SUCCESS", "REFUND"):
            raise PayError(400, "ORDERPAID", "订单已支付，不能关闭")
        if order.trade_state in OPEN_STATES:
            order.set_state("CLOSED")
    return Response(status=204)
