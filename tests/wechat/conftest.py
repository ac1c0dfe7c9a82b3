"""WeChat test set-up: the company's credentials (made up here, the sandbox accepts them)."""

from __future__ import annotations

import base64
import time
import uuid
from typing import Any

import pytest

CORP_ID = "ww0a1b2c3d4e5f6789"
AGENT_ID = "1000002"
TOKEN = "weiyingToken"
AES_KEY = base64.b64encode(bytes(range(32))).decode().rstrip("=")
OA_APP_ID = "wx1234567890abcdef"
OA_TOKEN = "weiyingOA"
OA_AES_KEY = base64.b64encode(bytes(range(32, 64))).decode().rstrip("=")
PAY_MCH_ID = "1900000109"
PAY_APIV3_KEY = "0123456789abcdefghijklmnopqrstuv"
PAY_PUBLIC_KEY_ID = "PUB_KEY_ID_0114232134912410000000000000"


@pytest.fixture(scope="session")
def pay_keys() -> dict[str, bytes]:
    """The platform's signing key (the sandbox's) and the merchant's key (ours)."""
    from weiying.wechat.crypto import generate_test_keypair, self_signed_certificate

    platform_private, platform_public = generate_test_keypair()
    merchant_private, merchant_public = generate_test_keypair()
    cert_serial = "5157F09EFDC096DE15EBE81A47057A7232F1B8E1"
    return {
        "platform_private": platform_private, "platform_public": platform_public,
        "platform_cert": self_signed_certificate(platform_private, serial_hex=cert_serial),
        "cert_serial": cert_serial.encode(),
        "merchant_private": merchant_private, "merchant_public": merchant_public,
    }


@pytest.fixture
def wechat(db: Any, pay_keys: dict[str, bytes]) -> Any:
    """The company's WeChat settings, stored through the service; the cache forgotten."""
    from weiying.wechat import config

    config.save_settings(
        actor=None, corp_id=CORP_ID, agent_id=AGENT_ID, app_secret="app-secret",
        contact_secret="contact-secret", callback_token=TOKEN, callback_aes_key=AES_KEY,
        oa_app_id=OA_APP_ID, oa_secret="oa-secret", oa_token=OA_TOKEN, oa_aes_key=OA_AES_KEY,
        pay_mch_id=PAY_MCH_ID, pay_app_id=OA_APP_ID, pay_apiv3_key=PAY_APIV3_KEY,
        pay_private_key=pay_keys["merchant_private"].decode(), pay_cert_serial="MERCHANT01",
        pay_notify_url="http://testserver/wechat/pay/notify",
        pay_verify_keys={
            PAY_PUBLIC_KEY_ID: pay_keys["platform_public"].decode(),
            pay_keys["cert_serial"].decode(): pay_keys["platform_cert"].decode(),
        },
    )
    config.forget()
    yield config.current()
    config.forget()


def wecom_xml(**fields: str) -> bytes:
    body = "".join(f"<{k}><![CDATA[{v}]]></{k}>" for k, v in fields.items())
    return f"<xml>{body}</xml>".encode()


def post_wecom(client: Any, plaintext: bytes, *, path: str = "/wechat/callback/wecom",
               timestamp: str | None = None, signature: str | None = None,
               token: str = TOKEN, aes_key: str = AES_KEY, receive_id: str = CORP_ID) -> Any:
    """POST `plaintext` the way WeCom does: encrypted envelope, signed query string."""
    from weiying.wechat.crypto import CallbackCrypto, envelope_encrypt

    box = CallbackCrypto(token, aes_key, receive_id)
    ts = timestamp or str(int(time.time()))
    nonce = uuid.uuid4().hex[:10]
    body = box.encrypted_envelope(plaintext, timestamp=ts, nonce=nonce)
    sig = signature or box.msg_signature(ts, nonce, envelope_encrypt(body))
    return client.post(f"{path}?msg_signature={sig}&timestamp={ts}&nonce={nonce}", body,
                       content_type="text/xml")
