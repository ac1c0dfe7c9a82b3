"""What the blueprints share: the state of the running app, JSON bodies and Tencent-style
errors."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import Response, current_app, jsonify, request

from weiying.wechat.sandbox.state import SandboxState

# Tencent's errcodes the sandbox answers, with its errmsg (WeCom and the Official Account
# share most of them).
ERRMSG = {
    0: "ok",
    40001: "invalid credential, access_token is invalid or not latest",
    40002: "invalid grant_type",
    40003: "invalid openid",
    40008: "invalid message type",
    40013: "invalid corpid",
    40014: "invalid access_token",
    40029: "invalid code",
    40056: "invalid agentid",
    40058: "invalid Request Parameter",
    40096: "invalid external userid",
    40097: "invalid args",
    40100: "external contact is already in transfer",
    40125: "invalid appsecret",
    41001: "access_token missing",
    42001: "access_token expired",
    43004: "require subscribe",
    44004: "empty content",
    45009: "api freq out of limit",
    47001: "data format error",
    60111: "userid not found",
    60123: "invalid party id",
    81013: "user & party & tag all invalid",
    84061: "not external contact",
}


class ApiError(Exception):
    """An errcode answer; `detail` is appended to Tencent's errmsg."""

    def __init__(self, code: int, detail: str = "") -> None:
        super().__init__(code, detail)
        self.code = code
        self.detail = detail


def get_state() -> SandboxState:
    state: SandboxState = current_app.extensions["wechat_sandbox"]
    return state


def errcode(code: int, detail: str = "") -> Response:
    message = ERRMSG.get(code, "error")
    if detail:
        message = f"{message}: {detail}"
    return jsonify({"errcode": code, "errmsg": message})


def ok(**data: Any) -> Response:
    return jsonify({"errcode": 0, "errmsg": "ok", **data})


def json_body() -> dict[str, Any]:
    """The request's JSON object (Tencent ignores the Content-Type); 47001 otherwise."""
    raw = request.get_data()
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise ApiError(47001) from None
    if not isinstance(data, dict):
        raise ApiError(47001)
    return data


def token_api(kinds: tuple[str, ...], invalid_code: int) -> Callable[[Any], Any]:
    """Guard an endpoint that takes ?access_token: armed token faults first, then the token
    itself (41001 missing, `invalid_code` unknown, 42001 expired); ApiError → errcode."""

    def decorator(func: Callable[..., Response]) -> Callable[..., Response]:
        @wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Response:
            state = get_state()
            path = request.path
            if state.faults.take("invalid_token", path=path) is not None:
                return errcode(invalid_code)
            if state.faults.take("expired_token", path=path) is not None:
                return errcode(42001)
            status = state.token_status(request.args.get("access_token", ""), kinds)
            if status != "ok":
                return errcode({"missing": 41001, "invalid": invalid_code,
                                "expired": 42001}[status])
            try:
                return func(*args, **kwargs)
            except ApiError as exc:
                return errcode(exc.code, exc.detail)

        return wrapper

    return decorator


def unguarded(func: Callable[..., Response]) -> Callable[..., Response]:
    """An endpoint without a token (gettoken, stable_token): ApiError → errcode."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Response:
        try:
            return func(*args, **kwargs)
        except ApiError as exc:
            return errcode(exc.code, exc.detail)

    return wrapper


def public_base() -> str:
    """The sandbox's own address for links it hands out (QR images, scan pages)."""
    configured = get_state().config.public_url
    return (configured or request.host_url).rstrip("/")


def as_int(value: Any, default: int | None = None) -> int | None:
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
