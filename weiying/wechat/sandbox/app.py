"""The sandbox as a Flask WSGI app: every Tencent host under its own path prefix on one
port, plus the sandbox's own pages and control API.

    /wecom       qyapi.weixin.qq.com          WeCom server API
    /wecom-open  open.weixin.qq.com           OAuth2 inside WeCom
    /wecom-login login.work.weixin.qq.com     desktop QR login
    /oa          api.weixin.qq.com            Official Account API
    /oa-mp       mp.weixin.qq.com             showqrcode
    /pay         api.mch.weixin.qq.com        WeChat Pay v3
    /sandbox     pages and /sandbox/api (control)

State lives in memory: serve it with one process (threads are fine).
"""

from __future__ import annotations

import threading
from typing import Any

from flask import Flask, Response, redirect, request

from weiying.wechat.sandbox import control, oa, pages, pay, wecom
from weiying.wechat.sandbox.common import errcode
from weiying.wechat.sandbox.state import SandboxConfig, SandboxState

API_PREFIXES = ("/wecom/", "/oa/", "/pay/")
COUNTED_PREFIXES = API_PREFIXES + ("/wecom-open/", "/wecom-login/", "/oa-mp/")


def create_app(state: SandboxState | None = None) -> Flask:
    """The sandbox app over `state` (by default a new world configured from the
    environment: WEIYING_SANDBOX_CONFIG, WEIYING_SANDBOX_APP_URL, WEIYING_SANDBOX_PUBLIC_URL)."""
    state = state or SandboxState(SandboxConfig.from_env())
    app = Flask(__name__)
    app.extensions["wechat_sandbox"] = state
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    app.json.sort_keys = False  # type: ignore[attr-defined]

    app.register_blueprint(wecom.bp, url_prefix="/wecom")
    app.register_blueprint(wecom.open_bp, url_prefix="/wecom-open")
    app.register_blueprint(wecom.login_bp, url_prefix="/wecom-login")
    app.register_blueprint(oa.bp, url_prefix="/oa")
    app.register_blueprint(oa.mp_bp, url_prefix="/oa-mp")
    app.register_blueprint(pay.bp, url_prefix="/pay")
    app.register_blueprint(control.bp, url_prefix="/sandbox/api")
    app.register_blueprint(pages.bp, url_prefix="/sandbox")

    @app.before_request
    def _count_and_fault() -> Response | None:
        """Count every call to a Tencent host; apply the armed slow and rate-limit faults to
        the APIs (token faults are per endpoint: see common.token_api)."""
        path = request.path
        if not path.startswith(COUNTED_PREFIXES):
            return None
        state.count_call(path)
        if not path.startswith(API_PREFIXES):
            return None
        slow = state.faults.take("slow_api", path=path)
        if slow is not None:
            state.sleep(float(slow["ms"]) / 1000)
        if state.faults.take("rate_limit", path=path) is not None:
            if path.startswith("/pay/"):
                return pay.fail(429, "FREQUENCY_LIMITED", "频率超限")
            return errcode(45009)
        return None

    @app.route("/")
    def _root() -> Any:
        return redirect("/sandbox/")

    return app


def serve_in_thread(state: SandboxState, host: str = "127.0.0.1",
                    port: int = 0) -> tuple[Any, str]:
    """Serve the sandbox on a real port from a daemon thread (end-to-end tests). Port 0
    picks a free one. Returns (server, base URL); stop it with `server.shutdown()`. When the
    config has no public_url, the base URL becomes it (QR links point at this server)."""
    from werkzeug.serving import make_server

    server = make_server(host, port, create_app(state), threaded=True)
    url = f"http://{host}:{server.server_port}"
    if not state.config.public_url:
        state.config.public_url = url
    threading.Thread(target=server.serve_forever, name="wechat-sandbox", daemon=True).start()
    return server, url
