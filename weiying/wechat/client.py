"""A thin client of Tencent's HTTP APIs on httpx: WeCom (one token per secret: the app's
and the customer-contact one), the Official Account, and WeChat Pay v3.

Every host's base URL is a setting (settings.WECHAT), so the same code talks to Tencent or
to the sandbox. Every call has a timeout. An expired token (40001/40014/42001) is dropped
and the call retried once with a fresh one; a rate limit (45009/45033/45011) raises
RateLimited with how long to wait; any other errcode raises ApiError. Secrets and tokens
never reach a log line.
"""

from __future__ import annotations

import json
import logging
import secrets as pysecrets
import time
from typing import Any

import httpx
from django.conf import settings

from weiying.wechat import config as wechat_config
from weiying.wechat import tokens

logger = logging.getLogger(__name__)

EXPIRED = {40001, 40014, 42001}
RATE_LIMITED = {45009, 45011, 45033, 45047}

# Tests point clients at the sandbox in-process: a transport they set here is used by every
# client created afterwards (None: real network).
TRANSPORT: httpx.BaseTransport | None = None


class WeChatError(Exception):
    """A call to Tencent failed; `code` is Tencent's errcode (or -1 for transport)."""

    def __init__(self, message: str, *, code: int = -1, path: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.path = path


class ApiError(WeChatError):
    pass


class RateLimited(WeChatError):
    def __init__(self, message: str, *, code: int, path: str, retry_after: float) -> None:
        super().__init__(message, code=code, path=path)
        self.retry_after = retry_after


class NotConfigured(WeChatError):
    pass


def _http(base_url: str) -> httpx.Client:
    return httpx.Client(base_url=base_url, timeout=float(settings.WECHAT["TIMEOUT"]),
                        transport=TRANSPORT)


class _TokenClient:
    """Shared by WeCom and the Official Account: JSON APIs with ?access_token=…"""

    base_setting = ""
    calls = 0  # API calls made by this client (the sync reports them)

    def __init__(self, conf: wechat_config.WeChatConfig | None = None) -> None:
        self.conf = conf or wechat_config.current()
        self.http = _http(settings.WECHAT[self.base_setting])

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # subclasses: the cache key and how to fetch a token
    def token_key(self) -> str:
        raise NotImplementedError

    def fetch_token(self) -> tuple[str, int]:
        raise NotImplementedError

    def token(self) -> str:
        return tokens.get(self.token_key(), self.fetch_token)

    def _send(self, method: str, path: str, *, params: dict[str, Any] | None = None,
              body: Any = None, auth: bool = True) -> dict[str, Any]:
        query = dict(params or {})
        if auth:
            query["access_token"] = self.token()
        self.calls += 1
        started = time.monotonic()
        try:
            if method == "GET":
                response = self.http.get(path, params=query)
            else:
                response = self.http.post(
                    path, params=query,
                    content=json.dumps(body or {}, ensure_ascii=False).encode("utf-8"),
                    headers={"Content-Type": "application/json"},
                )
        except httpx.HTTPError as exc:
            raise WeChatError(f"{path}: {type(exc).__name__}", path=path) from None
        ms = int((time.monotonic() - started) * 1000)
        if response.status_code >= 500:
            raise WeChatError(f"{path}: HTTP {response.status_code}", path=path)
        try:
            data = response.json()
        except ValueError:
            raise WeChatError(f"{path}: not JSON (HTTP {response.status_code})",
                              path=path) from None
        code = int(data.get("errcode", 0) or 0)
        logger.debug("wechat call", extra={"path": path, "errcode": code, "ms": ms})
        if code:
            message = f"{path}: {code} {data.get('errmsg', '')}"
            if code in RATE_LIMITED:
                raise RateLimited(message, code=code, path=path, retry_after=60.0)
            raise ApiError(message, code=code, path=path)
        return dict(data)

    def call(self, method: str, path: str, *, params: dict[str, Any] | None = None,
             body: Any = None) -> dict[str, Any]:
        """One API call with the token; retried once with a fresh token if Tencent says the
        token expired (never more: an unbounded retry would hammer a broken secret)."""
        try:
            return self._send(method, path, params=params, body=body)
        except ApiError as exc:
            if exc.code not in EXPIRED:
                raise
            logger.info("token expired; refreshing once", extra={"path": path,
                                                                 "errcode": exc.code})
            tokens.invalidate(self.token_key())
            return self._send(method, path, params=params, body=body)

    def get(self, path: str, **params: Any) -> dict[str, Any]:
        return self.call("GET", path, params=params)

    def post(self, path: str, body: Any = None, **params: Any) -> dict[str, Any]:
        return self.call("POST", path, params=params, body=body)


class WeCom(_TokenClient):
    """WeCom with the app secret (directory, messages, login) or, with contact=True, the
    customer-contact secret (external contacts, channel codes, transfers)."""

    base_setting = "WECOM_API"

    def __init__(self, conf: wechat_config.WeChatConfig | None = None, *,
                 contact: bool = False) -> None:
        super().__init__(conf)
        self.contact = contact
        if not self.conf.corp_id or not self._secret():
            raise NotConfigured("WeCom is not configured: set the corp id and the "
                                + ("customer-contact secret" if contact else "app secret"))

    def _secret(self) -> str:
        if self.contact:
            return self.conf.contact_secret or self.conf.app_secret
        return self.conf.app_secret

    def token_key(self) -> str:
        # One token per secret: a fingerprint of the secret keeps two apps apart.
        import hashlib

        mark = hashlib.sha256(self._secret().encode()).hexdigest()[:12]
        return f"wecom:{self.conf.corp_id}:{mark}"

    def fetch_token(self) -> tuple[str, int]:
        data = self._send("GET", "/cgi-bin/gettoken", auth=False,
                          params={"corpid": self.conf.corp_id, "corpsecret": self._secret()})
        return str(data["access_token"]), int(data.get("expires_in", 7200))

    def jsapi_ticket(self, *, agent: bool = False) -> str:
        """The jsapi ticket (corp) or the agent ticket (agent=True), cached like a token."""
        key = f"{self.token_key()}:ticket:{'agent' if agent else 'corp'}"

        def fetch() -> tuple[str, int]:
            if agent:
                data = self.get("/cgi-bin/ticket/get", type="agent_config")
            else:
                data = self.get("/cgi-bin/get_jsapi_ticket")
            return str(data["ticket"]), int(data.get("expires_in", 7200))

        return tokens.get(key, fetch)


class OfficialAccount(_TokenClient):
    """The Official Account with its stable token (it does not rotate on each request)."""

    base_setting = "OA_API"

    def __init__(self, conf: wechat_config.WeChatConfig | None = None) -> None:
        super().__init__(conf)
        if not self.conf.oa_ready:
            raise NotConfigured("the Official Account is not configured: set its app id "
                                "and secret")

    def token_key(self) -> str:
        return f"oa:{self.conf.oa_app_id}"

    def fetch_token(self) -> tuple[str, int]:
        data = self._send("POST", "/cgi-bin/stable_token", auth=False, body={
            "grant_type": "client_credential", "appid": self.conf.oa_app_id,
            "secret": self.conf.oa_secret,
        })
        return str(data["access_token"]), int(data.get("expires_in", 7200))


class Pay:
    """WeChat Pay v3 outbound calls, signed with the merchant key (WECHATPAY2-SHA256-RSA2048).

    Answers are not verified here: the payment facts that count arrive by notification (or
    by an order query whose result is checked against the order by the caller)."""

    def __init__(self, conf: wechat_config.WeChatConfig | None = None) -> None:
        self.conf = conf or wechat_config.current()
        if not self.conf.pay_ready:
            raise NotConfigured("WeChat Pay is not configured: set the merchant id, app id, "
                                "APIv3 key, merchant key and certificate serial")
        self.http = _http(settings.WECHAT["PAY_API"])
        self.calls = 0

    def close(self) -> None:
        self.http.close()

    def _authorization(self, method: str, url: str, body: str) -> str:
        from weiying.wechat.crypto import pay_sign

        timestamp = str(int(time.time()))
        nonce = pysecrets.token_hex(16)
        message = f"{method}\n{url}\n{timestamp}\n{nonce}\n{body}\n".encode()
        signature = pay_sign(self.conf.pay_private_key.encode("ascii"), message)
        return (
            f'WECHATPAY2-SHA256-RSA2048 mchid="{self.conf.pay_mch_id}",nonce_str="{nonce}",'
            f'signature="{signature}",timestamp="{timestamp}",'
            f'serial_no="{self.conf.pay_cert_serial}"'
        )

    def request(self, method: str, url: str, body: dict[str, Any] | None = None
                ) -> tuple[int, dict[str, Any]]:
        text = json.dumps(body, ensure_ascii=False, separators=(",", ":")) if body else ""
        headers = {"Authorization": self._authorization(method, url, text),
                   "Accept": "application/json", "Content-Type": "application/json"}
        self.calls += 1
        try:
            response = self.http.request(method, url, content=text.encode("utf-8"),
                                         headers=headers)
        except httpx.HTTPError as exc:
            raise WeChatError(f"{url}: {type(exc).__name__}", path=url) from None
        data = response.json() if response.content else {}
        if response.status_code == 429:
            raise RateLimited(f"{url}: rate limited", code=429, path=url, retry_after=60.0)
        if response.status_code >= 400:
            raise ApiError(f"{url}: HTTP {response.status_code} {data.get('code', '')}",
                           code=response.status_code, path=url)
        return response.status_code, data

    def native_order(self, *, out_trade_no: str, description: str, amount_fen: int,
                     expires_at: str) -> str:
        """A Native order; returns the code_url to render as a QR code."""
        _status, data = self.request("POST", "/v3/pay/transactions/native", {
            "appid": self.conf.pay_app_id, "mchid": self.conf.pay_mch_id,
            "description": description, "out_trade_no": out_trade_no,
            "time_expire": expires_at, "notify_url": self.conf.pay_notify_url,
            "amount": {"total": amount_fen, "currency": "CNY"},
        })
        return str(data["code_url"])

    def query_order(self, out_trade_no: str) -> dict[str, Any]:
        _status, data = self.request(
            "GET", f"/v3/pay/transactions/out-trade-no/{out_trade_no}"
                   f"?mchid={self.conf.pay_mch_id}")
        return data
