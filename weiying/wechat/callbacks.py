"""The endpoints Tencent calls: the WeCom app and contacts callbacks, the Official Account
callback and the WeChat Pay notification.

Each POST: size cap → signature (constant time) → timestamp window → decrypt → parse
(defusedxml) → store in the inbox under a unique key → answer. Nothing else happens before
the answer, so it goes out in milliseconds even when every worker is stopped. A refused
request writes a security-log row and changes nothing else.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from weiying.wechat import config, crypto, inbox
from weiying.wechat.choices import InboxSource
from weiying.wechat.models import SecurityEvent

logger = logging.getLogger(__name__)


class Refused(Exception):
    def __init__(self, reason: str, status: int = 403, **detail: Any) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.detail = detail


def _client_ip(request: HttpRequest) -> str | None:
    return request.META.get("REMOTE_ADDR") or None


def _security(request: HttpRequest, source: str, refused: Refused) -> None:
    try:
        SecurityEvent.objects.create(source=source, reason=refused.reason[:32],
                                     ip=_client_ip(request), detail=refused.detail)
    except Exception:  # noqa: BLE001 - the refusal stands even if the log write fails
        logger.exception("security log write failed")
    logger.warning("wechat callback refused",
                   extra={"source": source, "reason": refused.reason, "ip": _client_ip(request)})


def _body(request: HttpRequest) -> bytes:
    limit = int(settings.WECHAT["CALLBACK_MAX_BYTES"])
    declared = request.META.get("CONTENT_LENGTH") or "0"
    if declared.isdigit() and int(declared) > limit:
        raise Refused("too_large", 413, length=int(declared))
    body = request.read(limit + 1)
    if len(body) > limit:
        raise Refused("too_large", 413, length=len(body))
    return body


def _check_time(timestamp: str) -> None:
    try:
        crypto.check_timestamp(timestamp, window=int(settings.WECHAT["TIMESTAMP_WINDOW"]))
    except crypto.CryptoError as exc:
        raise Refused(exc.code, timestamp=timestamp[:32]) from None


def _wecom_crypto(source: str) -> crypto.CallbackCrypto:
    conf = config.current()
    if not conf.wecom_callback_ready:
        raise Refused("not_configured", 503)
    return crypto.CallbackCrypto(conf.callback_token, conf.callback_aes_key, conf.corp_id)


def _oa_crypto() -> crypto.CallbackCrypto | None:
    conf = config.current()
    if not (conf.oa_app_id and conf.oa_token):
        raise Refused("not_configured", 503)
    if not conf.oa_aes_key:
        return None
    return crypto.CallbackCrypto(conf.oa_token, conf.oa_aes_key, conf.oa_app_id)


def _store(source: str, plaintext: bytes) -> None:
    try:
        message = crypto.parse_xml(plaintext, max_bytes=int(settings.WECHAT["CALLBACK_MAX_BYTES"]))
    except crypto.CryptoError as exc:
        raise Refused(exc.code, 400) from None
    inbox.receive(source, plaintext, message)


def _answered(request: HttpRequest, source: str, handle: Callable[[], HttpResponse]
              ) -> HttpResponse:
    """Run `handle`; a refusal (ours or the crypto's) is logged to the security log and
    answered with its status and an empty body."""
    try:
        return handle()
    except crypto.CryptoError as exc:
        refused = Refused(exc.code, 400 if exc.code in ("bad_xml", "too_large") else 403)
    except Refused as exc:
        refused = exc
    _security(request, source, refused)
    return HttpResponse(status=refused.status)


def _wecom(request: HttpRequest, source: str) -> HttpResponse:
    params = request.GET
    signature = params.get("msg_signature", "")
    timestamp, nonce = params.get("timestamp", ""), params.get("nonce", "")

    def handle() -> HttpResponse:
        box = _wecom_crypto(source)
        if request.method == "GET":
            _check_time(timestamp)
            plain = box.verify_url(signature, timestamp, nonce, params.get("echostr", ""))
            return HttpResponse(plain, content_type="text/plain")
        body = _body(request)
        _check_time(timestamp)
        plaintext = box.decrypt(signature, timestamp, nonce, crypto.envelope_encrypt(body))
        _store(source, plaintext)
        return HttpResponse(b"", content_type="text/plain")

    return _answered(request, source, handle)


@csrf_exempt
@require_http_methods(["GET", "POST"])
def wecom_app(request: HttpRequest) -> HttpResponse:
    return _wecom(request, InboxSource.WECOM)


@csrf_exempt
@require_http_methods(["GET", "POST"])
def wecom_contacts(request: HttpRequest) -> HttpResponse:
    return _wecom(request, InboxSource.WECOM_CONTACTS)


@csrf_exempt
@require_http_methods(["GET", "POST"])
def official_account(request: HttpRequest) -> HttpResponse:
    source = InboxSource.OA
    params = request.GET
    timestamp, nonce = params.get("timestamp", ""), params.get("nonce", "")

    def handle() -> HttpResponse:
        box = _oa_crypto()
        conf = config.current()
        if request.method == "GET" or not params.get("msg_signature"):
            # The URL check and plain-mode messages carry signature = sha1(token, ts, nonce).
            if not crypto.oa_url_signature_ok(conf.oa_token, params.get("signature", ""),
                                              timestamp, nonce):
                raise Refused("bad_signature")
            _check_time(timestamp)
            if request.method == "GET":
                return HttpResponse(params.get("echostr", ""), content_type="text/plain")
            if box is not None and params.get("encrypt_type") == "aes":
                raise Refused("bad_signature")  # safe mode without msg_signature
            _store(source, _body(request))
        else:
            if box is None:
                raise Refused("not_configured", 503)
            body = _body(request)
            _check_time(timestamp)
            plaintext = box.decrypt(params["msg_signature"], timestamp, nonce,
                                    crypto.envelope_encrypt(body))
            _store(source, plaintext)
        return HttpResponse(b"success", content_type="text/plain")

    return _answered(request, source, handle)


def _pay_fail(status: int, message: str) -> JsonResponse:
    return JsonResponse({"code": "FAIL", "message": message}, status=status)


@csrf_exempt
@require_http_methods(["POST"])
def pay_notify(request: HttpRequest) -> HttpResponse:
    """WeChat Pay v3: verify the platform signature (key chosen by Wechatpay-Serial), decrypt
    the resource, store. The business checks (merchant, app, order, amount) are the
    handler's: they need the order, and a mismatch must still be kept for the record."""
    source = InboxSource.PAY
    conf = config.current()
    try:
        if not conf.pay_ready:
            raise Refused("not_configured", 503)
        body = _body(request)
        headers = request.headers
        verifier = crypto.PayVerifier(
            {serial: pem.encode("ascii") for serial, pem in conf.pay_verify_keys.items()}
        )
        verifier.verify(
            serial=headers.get("Wechatpay-Serial", ""),
            timestamp=headers.get("Wechatpay-Timestamp", ""),
            nonce=headers.get("Wechatpay-Nonce", ""), body=body,
            signature=headers.get("Wechatpay-Signature", ""),
        )
        try:
            envelope = json.loads(body)
            resource = envelope["resource"]
            plaintext = crypto.pay_decrypt_resource(
                conf.pay_apiv3_key, nonce=resource["nonce"],
                associated_data=resource.get("associated_data", ""),
                ciphertext=resource["ciphertext"],
            )
            decrypted = json.loads(plaintext)
        except (ValueError, KeyError, TypeError):
            raise Refused("bad_body", 400) from None
        message = {
            "id": str(envelope.get("id", "")), "event_type": envelope.get("event_type", ""),
            "create_time": envelope.get("create_time", ""), "resource": decrypted,
        }
        stored = json.dumps(message, ensure_ascii=False, sort_keys=True).encode("utf-8")
        inbox.receive(source, stored, message)
    except crypto.CryptoError as exc:
        refused = Refused(exc.code, 401, serial=request.headers.get("Wechatpay-Serial", "")[:64])
        _security(request, source, refused)
        return _pay_fail(401, refused.reason)
    except Refused as refused:
        _security(request, source, refused)
        return _pay_fail(refused.status, refused.reason)
    return HttpResponse(status=204)
