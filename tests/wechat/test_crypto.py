# Tests for weiying.wechat.crypto: Tencent's published vectors, wechatpy as an independent
# oracle (a dev dependency only; the product never imports it), every refusal code, and fuzzing.

from __future__ import annotations

import base64
import hashlib
import json
import string
import struct
import time
from collections.abc import Callable
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import given, settings
from hypothesis import strategies as st
from wechatpy.crypto import WeChatCrypto as OfficialAccountOracle
from wechatpy.enterprise.crypto import WeChatCrypto as WeComOracle
from wechatpy.exceptions import InvalidSignatureException

from weiying.wechat.crypto import (
    CODES,
    CallbackCrypto,
    CryptoError,
    PayVerifier,
    check_timestamp,
    envelope_encrypt,
    generate_test_keypair,
    oa_url_signature_ok,
    parse_xml,
    pay_decrypt_resource,
    pay_encrypt_resource,
    pay_message,
    pay_sign,
    self_signed_certificate,
    signature,
    signatures_match,
)

NOW = 1_700_000_000.0

PROPERTY = settings(max_examples=60, deadline=None, database=None)
FUZZ = settings(max_examples=150, deadline=None, database=None)


def raises(code: str, call: Callable[[], Any]) -> CryptoError:
    with pytest.raises(CryptoError) as caught:
        call()
    assert caught.value.code == code, caught.value.message
    return caught.value


# --- Published vectors ---------------------------------------------------------------------

# WeCom, Tencent's first callback sample (2014): corp wx5823bf96d3bd56c7, Token QDG6eK.
# Source: Tencent's official WeCom sample, repository sbzhu/weworkapi_python, file
# callback/Sample.py (the GET and POST examples in its comments); the same values are in the
# C# and PHP samples (sbzhu/weworkapi_php callback/Sample.php).
WECOM_2014 = {
    "token": "QDG6eK",
    "key": "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C",
    "corp_id": "wx5823bf96d3bd56c7",
}
WECOM_2014_URL = {
    "msg_signature": "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3",
    "timestamp": "1409659589",
    "nonce": "263014780",
    "echostr": "P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ==",
}
WECOM_2014_POST = {
    "msg_signature": "477715d11cdb4164915debcba66cb864d751f3e6",
    "timestamp": "1409659813",
    "nonce": "1372623149",
}
WECOM_2014_BODY = (
    b"<xml><ToUserName><![CDATA[wx5823bf96d3bd56c7]]></ToUserName><Encrypt><![CDATA["
    b"RypEvHKD8QQKFhvQ6QleEB4J58tiPdvo+rtK1I9qca6aM/wvqnLSV5zEPeusUiX5L5X/0lWfrf0QADHHhGd3QczcdCU"
    b"pj911L3vg3W/sYYvuJTs3TUUkSUXxaccAS0qhxchrRYt66wiSpGLYL42aM6A8dTT+6k4aSknmPj48kzJs8qLjvd4Xgp"
    b"ue06DOdnLxAUHzM6+kDZ+HMZfJYuR+LtwGc2hgf5gsijff0ekUNXZiqATP7PF5mZxZ3Izoun1s4zG4LUMnvw2r+KqC"
    b"KIw+3IQH03v+BCA9nMELNqbSf6tiWSrXJB3LAVGUcallcrw8V2t9EL4EhzJWrQUax5wLVMNS0+rUPA3k22Ncx4XXZS9"
    b"o0MBH27Bo6BpNelZpS+/uh9KsNlY6bHCmJU9p8g7m3fVKn28H3KDYA5Pl/T8Z1ptDAVe0lXdQ2YoyyH2uyPIGHBZZIs"
    b"2pDBS8R07+qN+E7Q==]]></Encrypt><AgentID><![CDATA[218]]></AgentID></xml>"
)
# The plaintext the sample's comments give for that POST (sbzhu/weworkapi_php, Sample.php).
WECOM_2014_PLAIN = (
    b"<xml><ToUserName><![CDATA[wx5823bf96d3bd56c7]]></ToUserName>\n"
    b"<FromUserName><![CDATA[mycreate]]></FromUserName>\n"
    b"<CreateTime>1409659813</CreateTime>\n"
    b"<MsgType><![CDATA[text]]></MsgType>\n"
    b"<Content><![CDATA[hello]]></Content>\n"
    b"<MsgId>4561255354251345929</MsgId>\n"
    b"<AgentID>218</AgentID>\n"
    b"</xml>"
)

# WeCom, the current sample (2016): corp ww1436e0e65a779aee.
# Source: sbzhu/weworkapi_python, callback/Sample.py (the values in its code; the message it
# decrypts is the one its EncryptMsg example builds, sRespData).
WECOM_2016 = {
    "token": "hJqcu3uJ9Tn2gXPmxx2w9kkCkCE2EPYo",
    "key": "6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt",
    "corp_id": "ww1436e0e65a779aee",
}
WECOM_2016_URL = {
    "msg_signature": "012bc692d0a58dd4b10f8dfe5c4ac00ae211ebeb",
    "timestamp": "1476416373",
    "nonce": "47744683",
    "echostr": "fsi1xnbH4yQh0+PJxcOdhhK6TDXkjMyhEPA7xB2TGz6b+g7xyAbEkRxN/3cNXW9qdqjnoVzEtpbhnFyq6SVHyA==",
}
WECOM_2016_POST = {
    "msg_signature": "0c3914025cb4b4d68103f6bfc8db550f79dcf48e",
    "timestamp": "1476422779",
    "nonce": "1597212914",
}
WECOM_2016_BODY = (
    b"<xml><ToUserName><![CDATA[ww1436e0e65a779aee]]></ToUserName>\n<Encrypt><![CDATA["
    b"Kl7kjoSf6DMD1zh7rtrHjFaDapSCkaOnwu3bqLc5tAybhhMl9pFeK8NslNPVdMwmBQTNoW4mY7AIjeLvEl3NyeTkAgG"
    b"zBhzTtRLNshw2AEew+kkYcD+Fq72Kt00fT0WnN87hGrW8SqGc+NcT3mu87Ha3dz1pSDi6GaUA6A0sqfde0VJPQbZ9U+"
    b"3JWcoD4Z5jaU0y9GSh010wsHF8KZD24YhmZH4ch4Ka7ilEbjbfvhKkNL65HHL0J6EYJIZUC2pFrdkJ7MhmEbU2qARR4"
    b"iQHE7wy24qy0cRX3Mfp6iELcDNfSsPGjUQVDGxQDCWjayJOpcwocugux082f49HKYg84EpHSGXAyh+/oxwaWbvL6aSD"
    b"POYuPDGOCI8jmnKiypE+]]></Encrypt>\n<AgentID><![CDATA[1000002]]></AgentID>\n</xml>"
)
WECOM_2016_PLAIN = (
    "<xml><ToUserName>ww1436e0e65a779aee</ToUserName><FromUserName>ChenJiaShun</FromUserName>"
    "<CreateTime>1476422779</CreateTime><MsgType>text</MsgType><Content>你好</Content>"
    "<MsgId>1456453720</MsgId><AgentID>1000002</AgentID></xml>"
).encode()

# Official Account safe mode: Tencent's Official Account sample bundle (its Python Sample.py),
# app wx2c2769f8efd9abc2, Token spamtest. The bundle is a download, not a repository; the same
# values are quoted in fotock/WXbizMsgCrypt-Node, README.md.
OA_SAMPLE = {
    "token": "spamtest",
    "key": "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
    "app_id": "wx2c2769f8efd9abc2",
}
OA_SAMPLE_POST = {
    "msg_signature": "5d197aaffba7e9b25a30732f161a50dee96bd5fa",
    "timestamp": "1409735669",
    "nonce": "1320562132",
}
OA_SAMPLE_BODY = (
    b"<xml><ToUserName><![CDATA[gh_10f6c3c3ac5a]]></ToUserName><FromUserName><![CDATA["
    b"oyORnuP8q7ou2gfYjqLzSIWZf0rs]]></FromUserName><CreateTime>1409735668</CreateTime><MsgType>"
    b"<![CDATA[text]]></MsgType><Content><![CDATA[abcdteT]]></Content><MsgId>6054768590064713728"
    b"</MsgId><Encrypt><![CDATA[hyzAe4OzmOMbd6TvGdIOO6uBmdJoD0Fk53REIHvxYtJlE2B655HuD0m8KUePWB3+"
    b"LrPXo87wzQ1QLvbeUgmBM4x6F8PGHQHFVAFmOD2LdJF9FrXpbUAh0B5GIItb52sn896wVsMSHGuPE328HnRGBcrS7C"
    b"41IzDWyWNlZkyyXwon8T332jisa+h6tEDYsVticbSnyU8dKOIbgU6ux5VTjg3yt+WGzjlpKn6NPhRjpA912xMezR4k"
    b"w6KWwMrCVKSVCZciVGCgavjIQ6X8tCOp3yZbGpy0VxpAe+77TszTfRd5RJSVO/HTnifJpXgCSUdUue1v6h0EIBYYI1B"
    b"D1DlD+C0CR8e6OewpusjZ4uBl9FyJvnhvQl+q5rv1ixrcpCumEPo5MJSgM9ehVsNPfUM669WuMyVWQLCzpu9GhglF2P"
    b"E=]]></Encrypt></xml>"
)
OA_SAMPLE_PLAIN = (
    b"<xml><ToUserName><![CDATA[gh_10f6c3c3ac5a]]></ToUserName>\n"
    b"<FromUserName><![CDATA[oyORnuP8q7ou2gfYjqLzSIWZf0rs]]></FromUserName>\n"
    b"<CreateTime>1409735668</CreateTime>\n"
    b"<MsgType><![CDATA[text]]></MsgType>\n"
    b"<Content><![CDATA[abcdteT]]></Content>\n"
    b"<MsgId>6054768590064713728</MsgId>\n"
    b"</xml>"
)

# Official Account, deterministic encryption with the random prefix fixed: the Java test of the
# same bundle (Java/src/com/qq/weixin/mp/aes/WXBizMsgCryptTest.java), carried in
# chanjarster/weixin-java-tools, weixin-java-common/src/test/java/me/chanjar/weixin/common/util/
# crypto/WxCryptUtilTest.java.
OA_JAVA = {
    "token": "pamtest",
    "key": "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
    "app_id": "wxb11529c136998cb6",
    "random": b"aaaabbbbccccdddd",
}
OA_JAVA_VECTORS = [
    (
        "我是中文abcd123",
        "jn1L23DB+6ELqJ+6bruv21Y6MD7KeIfP82D6gU39rmkgczbWwt5+3bnyg5K55bgVtVzd832WzZGMhkP72vVOfg==",
    ),
    (
        "<xml><ToUserName><![CDATA[oia2Tj我是中文jewbmiOUlr6X-1crbLOvLw]]></ToUserName><FromUserName>"
        "<![CDATA[gh_7f083739789a]]></FromUserName><CreateTime>1407743423</CreateTime><MsgType>"
        "<![CDATA[video]]></MsgType><Video><MediaId><![CDATA[eYJ1MbwPRJtOvIEabaxHs7TX2D-HV71s79GUx"
        "qdUkjm6Gs2Ed1KF3ulAOA9H1xG0]]></MediaId><Title><![CDATA[testCallBackReplyVideo]]></Title>"
        "<Description><![CDATA[testCallBackReplyVideo]]></Description></Video></xml>",
        "jn1L23DB+6ELqJ+6bruv23M2GmYfkv0xBh2h+XTBOKVKcgDFHle6gqcZ1cZrk3e1qjPQ1F4RsLWzQRG9udbKWesxlku"
        "pqcEcW7ZQweImX9+wLMa0GaUzpkycA8+IamDBxn5loLgZpnS7fVAbExOkK5DYHBmv5tptA9tklE/fTIILHR8HLXa5nQ"
        "vFb3tYPKAlHF3rtTeayNf0QuM+UW/wM9enGIDIJHF7CLHiDNAYxr+r+OrJCmPQyTy8cVWlu9iSvOHPT/77bZqJucQHQ"
        "04sq7KZI27OcqpQNSto2OdHCoTccjggX5Z9Mma0nMJBU+jLKJ38YB1fBIz+vBzsYjrTmFQ44YfeEuZ+xRTQwr92vhA9"
        "OxchWVINGC50qE/6lmkwWTwGX9wtQpsJKhP+oS7rvTY8+VdzETdfakjkwQ5/Xka042OlUb1/slTwo4RscuQ+RdxSGvD"
        "ahxAJ6+EAjLt9d8igHngxIbf6YyqqROxuxqIeIch3CssH/LqRs+iAcILvApYZckqmA7FNERspKA5f8GoJ9sv8xmGvZ9"
        "Yrf57cExWtnX8aCMMaBropU/1k+hKP5LVdzbWCG0hGwx/dQudYR/eXp3P0XxjlFiy+9DMlaFExWUZQDajPkdPrEeOwo"
        "fJb",
    ),
]

# WeCom, wechatpy's own fixed vector (random prefix "1234567890123456"): wechatpy/wechatpy,
# tests/test_crypto.py. Not Tencent's, but published and produced by another implementation.
WECHATPY_WECOM = {
    "token": "123456",
    "key": "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR",
    "corp_id": "wx49f0ab532d5d035a",
}
WECHATPY_REPLY = (
    b"<xml>\n<MsgType><![CDATA[text]]></MsgType>\n<Content><![CDATA[test]]></Content>\n"
    b"<FromUserName><![CDATA[wx49f0ab532d5d035a]]></FromUserName>\n"
    b"<ToUserName><![CDATA[messense]]></ToUserName>\n<AgentID>1</AgentID>\n"
    b"<CreateTime>1411525903</CreateTime>\n</xml>"
)
WECHATPY_REPLY_ENCRYPT = (
    "9s4gMv99m88kKTh/H8IdkOiMg6bisoy3ypwy9H4hvSPe9nsGaqyw5hhSjdYbcrKk+j3nba4HMOTzHrluLBYqxgNcBqGs"
    "L8GqxlhZgURnAtObvesEl5nZ+uBE8bviY0LWke8Zy9V/QYKxNV2FqllNXcfmstttyIkMKCCmVbCFM2JTF5wY0nFhHZSj"
    "PUL2Q1qvSUCUld+/WIXrx0oyKQmpB6o8NRrrNrsDf03oxI1p9FxUgMnwKKZeOA/uu+2IEvEBtb7muXsVbwbgX05UPPJv"
    "FurDXafG0RQyPR+mf1nDnAtQmmNOuiR5MIkdQ39xn1vWwi1O5oazPoQJz0nTYjxxEE8kv3kFxtAGVRe3ypD3WeK2XeFY"
    "FMNMpatF9XiKzHo3"
)
WECHATPY_INBOUND_ENCRYPT = (
    "RgqEoJj5A4EMYlLvWO1F86ioRjZfaex/gePD0gOXTxpsq5Yj4GNglrBb8I2BAJVODGajiFnXBu7mCPatfjsu6IHCrsTy"
    "eDXzF6Bv283dGymzxh6ydJRvZsryDyZbLTE7rhnus50qGPMfp2wASFlzEgMW9z1ef/RD8XzaFYgm7iTdaXpXaG4+BiYy"
    "olBug/gYNx410cvkKR2/nPwBiT+P4hIiOAQqGp/TywZBtDh1yCF2KOd0gpiMZ5jSw3e29mTvmUHzkVQiMS6td7vXUaWO"
    "MZnYZlF3So2SjHnwh4jYFxdgpkHHqIrH/54SNdshoQgWYEvccTKe7FS709/5t6NMxuGhcUGAPOQipvWTT4dShyqio7ml"
    "sl5noTrb++x6En749zCpQVhDpbV6GDnTbcX2e8K9QaNWHp91eBdCRxthuL0="
)


def wecom_2014() -> CallbackCrypto:
    return CallbackCrypto(WECOM_2014["token"], WECOM_2014["key"], WECOM_2014["corp_id"])


def wecom_2016() -> CallbackCrypto:
    return CallbackCrypto(WECOM_2016["token"], WECOM_2016["key"], WECOM_2016["corp_id"])


def oa_sample() -> CallbackCrypto:
    return CallbackCrypto(OA_SAMPLE["token"], OA_SAMPLE["key"], OA_SAMPLE["app_id"])


def test_wecom_2014_url_check_decrypts_the_published_echostr():
    assert wecom_2014().verify_url(**WECOM_2014_URL) == b"1616140317555161061"


def test_wecom_2014_message_decrypts_to_the_published_plaintext():
    encrypt = envelope_encrypt(WECOM_2014_BODY)

    plain = wecom_2014().decrypt(encrypt=encrypt, **WECOM_2014_POST)

    assert plain == WECOM_2014_PLAIN
    assert parse_xml(plain)["Content"] == "hello"


def test_wecom_2016_url_check_decrypts_the_published_echostr():
    assert wecom_2016().verify_url(**WECOM_2016_URL) == b"1288432023552776189"


def test_wecom_2016_message_decrypts_to_the_published_plaintext():
    plain = wecom_2016().decrypt(encrypt=envelope_encrypt(WECOM_2016_BODY), **WECOM_2016_POST)

    assert plain == WECOM_2016_PLAIN
    assert parse_xml(plain)["Content"] == "你好"


def test_official_account_message_decrypts_to_the_published_plaintext():
    fields = parse_xml(OA_SAMPLE_BODY)

    plain = oa_sample().decrypt(encrypt=fields["Encrypt"], **OA_SAMPLE_POST)

    assert plain == OA_SAMPLE_PLAIN
    assert parse_xml(plain)["Content"] == "abcdteT"


@pytest.mark.parametrize(("message", "expected"), OA_JAVA_VECTORS)
def test_official_account_encryption_matches_the_published_ciphertext(message, expected):
    crypto = CallbackCrypto(OA_JAVA["token"], OA_JAVA["key"], OA_JAVA["app_id"])

    encrypt, msg_signature = crypto.encrypt(
        message.encode(), timestamp="1409304348", nonce="xxxxxx", random16=OA_JAVA["random"]
    )

    assert encrypt == expected
    assert msg_signature == signature("pamtest", "1409304348", "xxxxxx", expected)
    assert crypto.decrypt(msg_signature, "1409304348", "xxxxxx", encrypt) == message.encode()


def test_wechatpy_published_wecom_vectors_hold():
    crypto = CallbackCrypto(
        WECHATPY_WECOM["token"], WECHATPY_WECOM["key"], WECHATPY_WECOM["corp_id"]
    )

    encrypt, msg_signature = crypto.encrypt(
        WECHATPY_REPLY, timestamp="1411525903", nonce="461056294", random16=b"1234567890123456"
    )
    inbound = crypto.decrypt(
        "74d92dfeb87ba7c714f89d98870ae5eb62dff26d", "1411525903", "461056294",
        WECHATPY_INBOUND_ENCRYPT,
    )

    assert encrypt == WECHATPY_REPLY_ENCRYPT
    assert msg_signature == "407518b7649e86ef23978113f92d27afa9296533"
    assert parse_xml(inbound)["Content"] == "test"
    assert parse_xml(inbound)["FromUserName"] == "messense"


def test_published_vector_is_refused_for_another_corp():
    crypto = CallbackCrypto(WECOM_2014["token"], WECOM_2014["key"], "ww_other_corp")

    raises("bad_receive_id", lambda: crypto.verify_url(**WECOM_2014_URL))


def test_published_vector_is_refused_with_another_token():
    crypto = CallbackCrypto("not-the-token", WECOM_2014["key"], WECOM_2014["corp_id"])

    raises("bad_signature", lambda: crypto.verify_url(**WECOM_2014_URL))


def test_published_vector_is_refused_with_another_nonce():
    tampered = dict(WECOM_2016_URL, nonce="47744684")

    raises("bad_signature", lambda: wecom_2016().verify_url(**tampered))


# --- Signatures and timestamps -------------------------------------------------------------


def test_signature_sorts_then_hashes():
    # Hand-computed: sorted("789", "456", "123") joins to "123456789", whose SHA-1 is the
    # well-known f7c3bc1d…
    assert signature("789", "456", "123") == "f7c3bc1d808e04732adf679965ccc34ca7ae3441"
    assert signature("789", "456", "123") == hashlib.sha1(b"123456789").hexdigest()


def test_official_account_plain_url_check():
    token, timestamp, nonce = "spamtest", "1409735669", "1320562132"
    good = hashlib.sha1("".join(sorted([token, timestamp, nonce])).encode()).hexdigest()

    assert oa_url_signature_ok(token, good, timestamp, nonce)
    assert not oa_url_signature_ok(token, good, timestamp, "1320562133")
    assert not oa_url_signature_ok(token, good[:-1], timestamp, nonce)
    assert not oa_url_signature_ok(token, "", timestamp, nonce)


@given(token=st.text(), timestamp=st.text(), nonce=st.text())
@PROPERTY
def test_official_account_plain_signature_agrees_with_wechatpy(token, timestamp, nonce):
    from wechatpy.utils import check_signature

    sig = signature(token, timestamp, nonce)
    ascii_only = all(part.isascii() for part in (token, timestamp, nonce))
    if ascii_only:  # wechatpy sorts UTF-8 bytes; for ASCII that is the same order
        check_signature(token, sig, timestamp, nonce)
    assert oa_url_signature_ok(token, sig, timestamp, nonce)


def test_signatures_match_is_false_for_other_lengths_and_characters():
    assert signatures_match("abc", "abc")
    assert not signatures_match("abc", "abd")
    assert not signatures_match("abc", "abcd")
    assert not signatures_match("abc", "")
    assert not signatures_match("abc", "中文")
    assert signatures_match("中文", "中文")


@pytest.mark.parametrize("offset", [-300, -1, 0, 1, 300])
def test_timestamp_within_five_minutes_is_accepted(offset):
    assert check_timestamp(str(int(NOW) + offset), now=NOW) == int(NOW) + offset
    assert check_timestamp(int(NOW) + offset, now=NOW) == int(NOW) + offset


@pytest.mark.parametrize("offset", [-301, 301, -86400, 10**9])
def test_timestamp_more_than_five_minutes_off_is_stale(offset):
    raises("stale_timestamp", lambda: check_timestamp(str(int(NOW) + offset), now=NOW))


@pytest.mark.parametrize(
    "value", ["", "abc", "1.7e9", "1700000000.5", " 1700000000", "-1700000000", "１７", True, None]
)
def test_timestamp_that_is_not_an_integer_is_refused(value):
    raises("stale_timestamp", lambda: check_timestamp(value, now=NOW))


def test_timestamp_window_can_be_narrowed():
    raises("stale_timestamp", lambda: check_timestamp(int(NOW) - 61, now=NOW, window=60))


def test_timestamp_defaults_to_the_clock():
    assert check_timestamp(str(int(time.time()))) > 0


# --- Callback encryption: round trips and wechatpy as an oracle -----------------------------

TOKEN = "weiyingToken"
KEY = base64.b64encode(bytes(range(32))).decode()[:-1]
CORP = "ww0123456789abcdef"

ids = st.text(alphabet=string.ascii_letters + string.digits, min_size=1, max_size=32)
digits = st.text(alphabet=string.digits, min_size=1, max_size=12)
keys = st.binary(min_size=32, max_size=32).map(lambda raw: base64.b64encode(raw).decode()[:-1])
texts = st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=600)


def crypto() -> CallbackCrypto:
    return CallbackCrypto(TOKEN, KEY, CORP)


@given(message=st.binary(max_size=2000), key=keys, receive_id=ids, token=ids,
       timestamp=digits, nonce=ids)
@PROPERTY
def test_our_encrypt_round_trips_through_our_decrypt(message, key, receive_id, token,
                                                     timestamp, nonce):
    ours = CallbackCrypto(token, key, receive_id)

    encrypt, msg_signature = ours.encrypt(message, timestamp=timestamp, nonce=nonce)

    assert len(base64.b64decode(encrypt)) % 32 == 0
    assert ours.decrypt(msg_signature, timestamp, nonce, encrypt) == message


@given(message=texts, key=keys, corp_id=ids, token=ids, timestamp=digits, nonce=ids)
@PROPERTY
def test_wecom_our_encrypt_wechatpy_decrypts(message, key, corp_id, token, timestamp, nonce):
    oracle = WeComOracle(token, key, corp_id)

    encrypt, msg_signature = CallbackCrypto(token, key, corp_id).encrypt(
        message.encode(), timestamp=timestamp, nonce=nonce
    )

    assert oracle.check_signature(msg_signature, timestamp, nonce, encrypt) == message
    assert oracle.decrypt_message({"Encrypt": encrypt}, msg_signature, timestamp, nonce) == message


@given(message=texts, key=keys, corp_id=ids, token=ids, timestamp=digits, nonce=ids)
@PROPERTY
def test_wecom_wechatpy_encrypt_we_decrypt(message, key, corp_id, token, timestamp, nonce):
    envelope = WeComOracle(token, key, corp_id).encrypt_message(message, nonce, timestamp)
    fields = parse_xml(envelope.encode())

    ours = CallbackCrypto(token, key, corp_id)
    plain = ours.decrypt(fields["MsgSignature"], fields["TimeStamp"], fields["Nonce"],
                         envelope_encrypt(envelope.encode()))

    assert plain == message.encode()


@given(message=texts, key=keys, app_id=ids, token=ids, timestamp=digits, nonce=ids)
@PROPERTY
def test_official_account_our_encrypt_wechatpy_decrypts(message, key, app_id, token,
                                                        timestamp, nonce):
    oracle = OfficialAccountOracle(token, key, app_id)

    encrypt, msg_signature = CallbackCrypto(token, key, app_id).encrypt(
        message.encode(), timestamp=timestamp, nonce=nonce
    )

    assert oracle.decrypt_message({"Encrypt": encrypt}, msg_signature, timestamp, nonce) == message


@given(message=texts, key=keys, app_id=ids, token=ids, timestamp=digits, nonce=ids)
@PROPERTY
def test_official_account_wechatpy_encrypt_we_decrypt(message, key, app_id, token,
                                                      timestamp, nonce):
    envelope = OfficialAccountOracle(token, key, app_id).encrypt_message(message, nonce, timestamp)
    fields = parse_xml(envelope.encode())

    plain = CallbackCrypto(token, key, app_id).decrypt(
        fields["MsgSignature"], timestamp, nonce, fields["Encrypt"]
    )

    assert plain == message.encode()


def test_wechatpy_refuses_what_we_sign_with_another_token():
    encrypt, msg_signature = crypto().encrypt(b"hi", timestamp="1", nonce="n")

    with pytest.raises(InvalidSignatureException):
        WeComOracle("other", KEY, CORP).check_signature(msg_signature, "1", "n", encrypt)


def test_encrypt_uses_a_fresh_random_prefix_each_time():
    first, _ = crypto().encrypt(b"same", timestamp="1", nonce="n")
    second, _ = crypto().encrypt(b"same", timestamp="1", nonce="n")

    assert first != second


def test_random_prefix_must_be_sixteen_bytes():
    with pytest.raises(ValueError):
        crypto().encrypt(b"x", timestamp="1", nonce="n", random16=b"short")


def test_encrypted_envelope_is_what_wechat_posts():
    ours = crypto()

    body = ours.encrypted_envelope(b"<xml><Content>hi</Content></xml>", timestamp="1700000000",
                                   nonce="abc", agent_id="1000002")
    fields = parse_xml(body)
    encrypt = envelope_encrypt(body)
    plain = ours.decrypt(ours.msg_signature("1700000000", "abc", encrypt), "1700000000", "abc",
                         encrypt)

    assert body.startswith(b"<xml><ToUserName><![CDATA[ww0123456789abcdef]]></ToUserName>")
    assert fields["ToUserName"] == CORP
    assert fields["AgentID"] == "1000002"
    assert list(fields) == ["ToUserName", "Encrypt", "AgentID"]
    assert plain == b"<xml><Content>hi</Content></xml>"


def test_envelope_survives_a_receive_id_that_closes_cdata():
    odd = CallbackCrypto(TOKEN, KEY, "a]]>b<c&d")

    body = odd.encrypted_envelope(b"m", timestamp="1", nonce="n")

    assert parse_xml(body)["ToUserName"] == "a]]>b<c&d"


# --- Callback refusals: every code ---------------------------------------------------------


def seal(plain: bytes, key: str = KEY) -> str:
    # AES-256-CBC over bytes already padded, as WeChat does, to forge bad plaintexts.
    raw = base64.b64decode(key + "=")
    encryptor = Cipher(algorithms.AES(raw), modes.CBC(raw[:16])).encryptor()
    return base64.b64encode(encryptor.update(plain) + encryptor.finalize()).decode()


def pad32(data: bytes) -> bytes:
    n = 32 - len(data) % 32
    return data + bytes([n]) * n


def decrypt_signed(encrypt: str, ours: CallbackCrypto | None = None) -> bytes:
    ours = ours or crypto()
    return ours.decrypt(ours.msg_signature("1700000000", "n", encrypt), "1700000000", "n",
                        encrypt)


@pytest.mark.parametrize("bad_key", [
    "", "short", KEY[:-1], KEY + "A", "!" * 43, "中" * 43, "A" * 42 + "=",
])
def test_encoding_aes_key_must_decode_to_32_bytes(bad_key):
    raises("bad_key", lambda: CallbackCrypto(TOKEN, bad_key, CORP))


def test_wrong_signature_is_refused():
    encrypt, msg_signature = crypto().encrypt(b"m", timestamp="1", nonce="n")
    wrong = ("0" if msg_signature[0] != "0" else "1") + msg_signature[1:]

    raises("bad_signature", lambda: crypto().decrypt(wrong, "1", "n", encrypt))


@pytest.mark.parametrize("cut", [
    lambda sig: sig[:-1], lambda sig: sig + "0", lambda sig: "", lambda sig: sig.upper(),
    lambda sig: sig + "中",
])
def test_signature_of_another_length_or_case_is_refused(cut):
    encrypt, msg_signature = crypto().encrypt(b"m", timestamp="1", nonce="n")

    raises("bad_signature", lambda: crypto().decrypt(cut(msg_signature), "1", "n", encrypt))


def test_signature_is_checked_against_timestamp_and_nonce():
    encrypt, msg_signature = crypto().encrypt(b"m", timestamp="1", nonce="n")

    raises("bad_signature", lambda: crypto().decrypt(msg_signature, "2", "n", encrypt))
    raises("bad_signature", lambda: crypto().decrypt(msg_signature, "1", "m", encrypt))


def test_tampered_ciphertext_fails_the_signature_before_any_decryption():
    encrypt, msg_signature = crypto().encrypt(b"pay 100 fen", timestamp="1", nonce="n")
    raw = bytearray(base64.b64decode(encrypt))
    raw[5] ^= 0x01
    tampered = base64.b64encode(bytes(raw)).decode()

    raises("bad_signature", lambda: crypto().decrypt(msg_signature, "1", "n", tampered))


def test_signature_comes_before_base64_and_padding():
    raises("bad_signature", lambda: crypto().decrypt("0" * 40, "1", "n", "***not base64***"))


@pytest.mark.parametrize("block", [0, 1, 2, 3, 4, 5])
def test_tampered_and_resigned_ciphertext_never_yields_the_original(block):
    # CBC itself has no integrity: the signature is what protects the ciphertext. Someone who
    # knows the token can re-sign, and then gets an error or garbage, never the message.
    message = b"x" * 40
    encrypt, _ = crypto().encrypt(message, timestamp="1", nonce="n")
    raw = bytearray(base64.b64decode(encrypt))
    raw[block * 16 + 3] ^= 0x80
    tampered = base64.b64encode(bytes(raw)).decode()

    try:
        assert decrypt_signed(tampered) != message
    except CryptoError as exc:
        assert exc.code in {"bad_padding", "bad_length", "bad_receive_id"}


@pytest.mark.parametrize("last", [0, 33, 255])
def test_padding_byte_out_of_range_is_refused(last):
    plain = bytes(16) + struct.pack(">I", 1) + b"m" + CORP.encode()
    plain += bytes(32 - len(plain) % 32 - 1) + bytes([last])

    raises("bad_padding", lambda: decrypt_signed(seal(plain)))


def test_padding_bytes_that_disagree_are_refused():
    plain = pad32(bytes(16) + struct.pack(">I", 1) + b"m" + CORP.encode())
    forged = plain[:-2] + bytes([plain[-1] - 1]) + plain[-1:]

    raises("bad_padding", lambda: decrypt_signed(seal(forged)))


def test_wrong_receive_id_is_refused():
    encrypt, _ = CallbackCrypto(TOKEN, KEY, "ww_somebody_else").encrypt(
        b"m", timestamp="1", nonce="n"
    )

    raises("bad_receive_id", lambda: decrypt_signed(encrypt))


@pytest.mark.parametrize("trailer", [b"", CORP.encode()[:-1], CORP.encode() + b"x",
                                     CORP.upper().encode()])
def test_receive_id_must_match_exactly(trailer):
    plain = pad32(bytes(16) + struct.pack(">I", 1) + b"m" + trailer)

    raises("bad_receive_id", lambda: decrypt_signed(seal(plain)))


@pytest.mark.parametrize("claimed", [2, 1000, 2**32 - 1])
def test_length_field_past_the_plaintext_is_refused(claimed):
    plain = pad32(bytes(16) + struct.pack(">I", claimed) + b"m")

    raises("bad_length", lambda: decrypt_signed(seal(plain)))


def test_plaintext_shorter_than_its_header_is_refused():
    raises("bad_length", lambda: decrypt_signed(seal(pad32(bytes(19)))))


@pytest.mark.parametrize("size", [16, 48, 33])
def test_ciphertext_that_is_not_whole_32_byte_blocks_is_refused(size):
    encrypt = base64.b64encode(bytes(size)).decode()

    raises("bad_length", lambda: decrypt_signed(encrypt))


def test_empty_ciphertext_is_refused():
    raises("bad_length", lambda: decrypt_signed(""))


@pytest.mark.parametrize("encrypt", ["***", "abc", "YWJj=ZGVm", "YWJj\nZGVm", "中文中文", "a b c d"])
def test_ciphertext_that_is_not_base64_is_refused(encrypt):
    raises("bad_base64", lambda: decrypt_signed(encrypt))


def test_url_check_runs_the_same_checks_as_decrypt():
    echostr, msg_signature = crypto().encrypt(b"4075181314397890557", timestamp="1", nonce="n")

    assert crypto().verify_url(msg_signature, "1", "n", echostr) == b"4075181314397890557"
    raises("bad_signature", lambda: crypto().verify_url(msg_signature, "1", "x", echostr))


def test_error_codes_are_the_documented_set():
    assert CODES == {
        "bad_signature", "bad_padding", "bad_receive_id", "bad_length", "bad_base64", "bad_xml",
        "too_large", "stale_timestamp", "probe_signature", "unknown_serial", "bad_key",
    }
    with pytest.raises(ValueError):
        CryptoError("made_up")


# --- XML ------------------------------------------------------------------------------------


def test_parse_xml_flattens_the_root_children():
    body = (
        "<xml><ToUserName><![CDATA[ww1]]></ToUserName><Event><![CDATA[change_external_contact]]>"
        "</Event><ChangeType>add_external_contact</ChangeType><State>lead-7</State><Empty/>"
        "<ExtAttr><Item><Name>a</Name></Item><Item><Name>b</Name></Item></ExtAttr>"
        "<Content>a &amp; b 中文</Content></xml>"
    ).encode()

    fields = parse_xml(body)

    assert fields == {
        "ToUserName": "ww1",
        "Event": "change_external_contact",
        "ChangeType": "add_external_contact",
        "State": "lead-7",
        "Empty": "",
        "ExtAttr.Item.Name": "a",
        "Content": "a & b 中文",
    }


def test_parse_xml_keeps_the_first_of_repeated_elements():
    assert parse_xml(b"<xml><A>1</A><A>2</A></xml>") == {"A": "1"}


def test_parse_xml_accepts_a_utf8_declaration():
    assert parse_xml('<?xml version="1.0" encoding="UTF-8"?><xml><A>中</A></xml>'.encode()) == {
        "A": "中"
    }


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<xml><Encrypt>&lol9;</Encrypt></xml>"""

HOSTILE_XML = {
    "billion_laughs": BILLION_LAUGHS,
    "external_entity": (
        b'<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
        b"<xml><Encrypt>&xxe;</Encrypt></xml>"
    ),
    "external_dtd": (
        b'<?xml version="1.0"?><!DOCTYPE xml SYSTEM "http://example.invalid/evil.dtd">'
        b"<xml><Encrypt>x</Encrypt></xml>"
    ),
    "parameter_entity": (
        b'<!DOCTYPE xml [<!ENTITY % p SYSTEM "http://example.invalid/p">%p;]>'
        b"<xml><Encrypt>x</Encrypt></xml>"
    ),
    "internal_entity": (
        b'<!DOCTYPE xml [<!ENTITY e "inner">]><xml><Encrypt>&e;</Encrypt></xml>'
    ),
    "bare_dtd": b"<!DOCTYPE xml><xml><Encrypt>x</Encrypt></xml>",
}


@pytest.mark.parametrize("name", sorted(HOSTILE_XML))
def test_dtds_and_entities_are_refused_quickly(name):
    started = time.perf_counter()

    raises("bad_xml", lambda: parse_xml(HOSTILE_XML[name]))
    raises("bad_xml", lambda: envelope_encrypt(HOSTILE_XML[name]))

    assert time.perf_counter() - started < 1.0


@pytest.mark.parametrize("body", [
    b"", b"   ", b"not xml", b"<xml>", b"<xml><A></B></xml>", b"<xml/><xml/>",
    b"<xml>\xff\xfe</xml>", b'<?xml version="1.0" encoding="no-such-codec"?><xml/>',
    b"<xml><A>&undefined;</A></xml>", b"\x00<xml/>",
])
def test_malformed_xml_is_refused(body):
    raises("bad_xml", lambda: parse_xml(body))


def test_deeply_nested_xml_is_refused():
    depth = 5000
    body = b"<a>" * depth + b"x" + b"</a>" * depth

    raises("bad_xml", lambda: parse_xml(body, max_bytes=len(body)))


def test_body_over_the_cap_is_refused_before_parsing():
    body = b"<xml><Encrypt>" + b"A" * (64 * 1024) + b"</Encrypt></xml>"

    raises("too_large", lambda: parse_xml(body))
    raises("too_large", lambda: envelope_encrypt(body))
    raises("too_large", lambda: parse_xml(b"<xml/>", max_bytes=5))
    raises("too_large", lambda: parse_xml(BILLION_LAUGHS, max_bytes=100))


def test_body_at_the_cap_is_parsed():
    filler = b"A" * (64 * 1024 - len(b"<xml><Encrypt></Encrypt></xml>"))
    body = b"<xml><Encrypt>" + filler + b"</Encrypt></xml>"

    assert len(body) == 64 * 1024
    assert envelope_encrypt(body) == filler.decode()


@pytest.mark.parametrize("body", [
    b"<xml><ToUserName>ww1</ToUserName></xml>",
    b"<xml><Encrypt></Encrypt></xml>",
    b"<xml><Encrypt>   </Encrypt></xml>",
    b"<xml><Wrapper><Encrypt>abc</Encrypt></Wrapper></xml>",
])
def test_envelope_without_an_encrypt_element_is_refused(body):
    raises("bad_xml", lambda: envelope_encrypt(body))


def test_envelope_encrypt_strips_surrounding_whitespace():
    assert envelope_encrypt(b"<xml><Encrypt>\n  <![CDATA[abc=]]>\n</Encrypt></xml>") == "abc="


# --- WeChat Pay v3 ---------------------------------------------------------------------------

API_V3_KEY = "0123456789abcdefghijklmnopqrstuv"
PUB_KEY_ID = "PUB_KEY_ID_0112345678902025010100000000000001"
CERT_SERIAL = "5157F09EFDC096DE15EBE81A47057A7232F1B8E1"
NOTIFY_BODY = json.dumps({
    "id": "EV-2018022511223320873",
    "event_type": "TRANSACTION.SUCCESS",
    "resource": {"algorithm": "AEAD_AES_256_GCM", "associated_data": "transaction"},
}, separators=(",", ":")).encode()


@pytest.fixture(scope="module")
def pay_keys() -> dict[str, Any]:
    public_key_private, public_key_pem = generate_test_keypair()
    cert_private, _ = generate_test_keypair()
    certificate = self_signed_certificate(cert_private, serial_hex=CERT_SERIAL)
    return {
        "public_key_private": public_key_private,
        "cert_private": cert_private,
        "verifier": PayVerifier({PUB_KEY_ID: public_key_pem, CERT_SERIAL: certificate}),
        "certificate": certificate,
    }


def signed(private_pem: bytes, *, timestamp: str = "1700000000", nonce: str = "5K8264ILTKCH",
           body: bytes = NOTIFY_BODY) -> str:
    return pay_sign(private_pem, pay_message(timestamp, nonce, body))


def verify(pay_keys: dict[str, Any], **overrides: Any) -> None:
    call: dict[str, Any] = {
        "serial": PUB_KEY_ID, "timestamp": "1700000000", "nonce": "5K8264ILTKCH",
        "body": NOTIFY_BODY, "now": NOW,
    }
    call.update(overrides)
    if "signature" not in call:
        call["signature"] = signed(pay_keys["public_key_private"])
    pay_keys["verifier"].verify(**call)


def test_pay_message_is_three_lines_and_the_body():
    assert pay_message("1700000000", "abc", b'{"a":1}') == b'1700000000\nabc\n{"a":1}\n'


def test_notification_signed_with_the_public_key_verifies(pay_keys):
    verify(pay_keys)


def test_notification_signed_with_the_platform_certificate_verifies(pay_keys):
    verify(pay_keys, serial=CERT_SERIAL, signature=signed(pay_keys["cert_private"]))


def test_certificate_serial_is_the_one_requested(pay_keys):
    from cryptography import x509

    certificate = x509.load_pem_x509_certificate(pay_keys["certificate"])

    assert certificate.serial_number == int(CERT_SERIAL, 16)


def test_signature_under_the_other_serial_is_refused(pay_keys):
    raises("bad_signature", lambda: verify(pay_keys, serial=CERT_SERIAL))
    raises("bad_signature", lambda: verify(
        pay_keys, serial=PUB_KEY_ID, signature=signed(pay_keys["cert_private"])
    ))


@pytest.mark.parametrize("change", [
    {"body": NOTIFY_BODY.replace(b"SUCCESS", b"SUCCESs")},
    {"body": NOTIFY_BODY + b" "},
    {"nonce": "5K8264ILTKCI"},
    {"timestamp": "1700000001"},
])
def test_tampered_notification_is_refused(pay_keys, change):
    raises("bad_signature", lambda: verify(pay_keys, **change))


def test_unknown_serial_is_refused(pay_keys):
    raises("unknown_serial", lambda: verify(pay_keys, serial="PUB_KEY_ID_UNKNOWN"))
    raises("unknown_serial", lambda: verify(pay_keys, serial=CERT_SERIAL.lower()))


def test_probe_signature_is_refused_before_anything_else(pay_keys):
    probe = "WECHATPAY/SIGNTEST/" + base64.b64encode(b"x" * 256).decode()

    raises("probe_signature", lambda: verify(pay_keys, signature=probe))
    raises("probe_signature", lambda: verify(pay_keys, signature=probe, serial="nobody",
                                             timestamp="1"))


@pytest.mark.parametrize("offset", [-301, 301, -3600, 86400])
def test_stale_or_future_notification_is_refused(pay_keys, offset):
    timestamp = str(int(NOW) + offset)
    sig = signed(pay_keys["public_key_private"], timestamp=timestamp)

    raises("stale_timestamp", lambda: verify(pay_keys, timestamp=timestamp, signature=sig))


@pytest.mark.parametrize("offset", [-300, 300])
def test_notification_at_the_edge_of_the_window_verifies(pay_keys, offset):
    timestamp = str(int(NOW) + offset)

    verify(pay_keys, timestamp=timestamp,
           signature=signed(pay_keys["public_key_private"], timestamp=timestamp))


@pytest.mark.parametrize("timestamp", ["", "abc", "1700000000.0", "1.7e9", " 1700000000"])
def test_non_integer_timestamp_is_refused(pay_keys, timestamp):
    raises("stale_timestamp", lambda: verify(pay_keys, timestamp=timestamp))


def test_timestamp_is_checked_before_the_serial(pay_keys):
    raises("stale_timestamp", lambda: verify(pay_keys, timestamp="1", serial="nobody"))


@pytest.mark.parametrize("sig", ["***", "abc", "中文", "YWJj ZGVm"])
def test_signature_that_is_not_base64_is_refused(pay_keys, sig):
    raises("bad_base64", lambda: verify(pay_keys, signature=sig))


@pytest.mark.parametrize("sig", ["", base64.b64encode(b"\x00" * 256).decode(),
                                 base64.b64encode(b"short").decode()])
def test_signature_of_the_wrong_size_or_value_is_refused(pay_keys, sig):
    raises("bad_signature", lambda: verify(pay_keys, signature=sig))


def test_verifier_refuses_keys_that_do_not_load(pay_keys):
    ec_public = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )

    raises("bad_key", lambda: PayVerifier({PUB_KEY_ID: b"-----BEGIN PUBLIC KEY-----\nxx"}))
    raises("bad_key", lambda: PayVerifier({PUB_KEY_ID: b"garbage"}))
    raises("bad_key", lambda: PayVerifier({PUB_KEY_ID: ec_public}))
    raises("bad_key", lambda: PayVerifier({"0ABC": pay_keys["certificate"]}))
    raises("bad_key", lambda: PayVerifier({PUB_KEY_ID: pay_keys["certificate"]}))


@given(plaintext=st.binary(max_size=4000), nonce=ids, associated_data=st.text(max_size=40),
       as_bytes=st.booleans())
@PROPERTY
def test_pay_resource_round_trips(plaintext, nonce, associated_data, as_bytes):
    key = API_V3_KEY.encode() if as_bytes else API_V3_KEY
    nonce = (nonce * 12)[:12]

    ciphertext = pay_encrypt_resource(key, nonce=nonce, associated_data=associated_data,
                                      plaintext=plaintext)

    assert pay_decrypt_resource(API_V3_KEY, nonce=nonce, associated_data=associated_data,
                                ciphertext=ciphertext) == plaintext


def test_pay_resource_holds_the_transaction():
    plain = json.dumps({"out_trade_no": "WY-1", "transaction_id": "4200001", "trade_state":
                        "SUCCESS", "amount": {"total": 12345}}).encode()
    ciphertext = pay_encrypt_resource(API_V3_KEY, nonce="fdasflkja484", associated_data=
                                      "transaction", plaintext=plain)

    decoded = pay_decrypt_resource(API_V3_KEY, nonce="fdasflkja484",
                                   associated_data="transaction", ciphertext=ciphertext)

    assert json.loads(decoded)["amount"]["total"] == 12345
    assert len(base64.b64decode(ciphertext)) == len(plain) + 16  # ciphertext ‖ 16-byte tag


def resource(**overrides: Any) -> bytes:
    call = {"nonce": "fdasflkja484", "associated_data": "transaction",
            "ciphertext": pay_encrypt_resource(API_V3_KEY, nonce="fdasflkja484",
                                               associated_data="transaction",
                                               plaintext=b'{"trade_state":"SUCCESS"}')}
    call.update(overrides)
    key = call.pop("key", API_V3_KEY)
    return pay_decrypt_resource(key, **call)


def test_pay_resource_with_a_tampered_ciphertext_is_refused():
    good = pay_encrypt_resource(API_V3_KEY, nonce="fdasflkja484", associated_data="transaction",
                                plaintext=b'{"trade_state":"SUCCESS"}')
    raw = bytearray(base64.b64decode(good))
    raw[0] ^= 0x01
    tag = bytearray(base64.b64decode(good))
    tag[-1] ^= 0x01

    raises("bad_signature", lambda: resource(ciphertext=base64.b64encode(bytes(raw)).decode()))
    raises("bad_signature", lambda: resource(ciphertext=base64.b64encode(bytes(tag)).decode()))


@pytest.mark.parametrize("change", [
    {"key": "0123456789abcdefghijklmnopqrstuw"},
    {"associated_data": "refund"},
    {"associated_data": ""},
    {"nonce": "fdasflkja485"},
])
def test_pay_resource_under_other_key_nonce_or_data_is_refused(change):
    raises("bad_signature", lambda: resource(**change))


@pytest.mark.parametrize("key", ["", "short", API_V3_KEY + "x", b"\x00" * 31])
def test_pay_key_must_be_32_bytes(key):
    raises("bad_key", lambda: resource(key=key))


def test_pay_resource_refuses_bad_base64_and_short_input():
    raises("bad_base64", lambda: resource(ciphertext="***"))
    raises("bad_length", lambda: resource(ciphertext=base64.b64encode(b"x" * 15).decode()))
    raises("bad_length", lambda: resource(nonce=""))


# --- Fuzz: only CryptoError, never slow ----------------------------------------------------


def only_crypto_errors(call: Callable[[], Any]) -> None:
    started = time.perf_counter()
    try:
        call()
    except CryptoError as exc:
        assert exc.code in CODES
    assert time.perf_counter() - started < 1.0


b64_blocks = st.integers(min_value=1, max_value=8).flatmap(
    lambda n: st.binary(min_size=32 * n, max_size=32 * n)
).map(lambda raw: base64.b64encode(raw).decode())
xmlish = st.lists(st.sampled_from([
    "<xml>", "</xml>", "<Encrypt>", "</Encrypt>", "<![CDATA[", "]]>", "<!DOCTYPE x [",
    "<!ENTITY a \"&a;&a;\">", "]>", "&a;", "&amp;", "<?xml version=\"1.0\"?>", "<A/>", "<",
    ">", "=", "\"", "中", "\x00", "abc", "SYSTEM \"file:///etc/passwd\"", "<!--", "-->",
]), max_size=40).map(lambda parts: "".join(parts).encode("utf-8"))


@given(msg_signature=st.text(), timestamp=st.text(), nonce=st.text(), encrypt=st.text())
@FUZZ
def test_fuzz_decrypt_with_arbitrary_strings(msg_signature, timestamp, nonce, encrypt):
    only_crypto_errors(lambda: crypto().decrypt(msg_signature, timestamp, nonce, encrypt))


@given(encrypt=st.one_of(st.text(), b64_blocks), timestamp=st.text(), nonce=st.text())
@FUZZ
def test_fuzz_decrypt_past_a_valid_signature(encrypt, timestamp, nonce):
    ours = crypto()
    good = ours.msg_signature(timestamp, nonce, encrypt)

    only_crypto_errors(lambda: ours.decrypt(good, timestamp, nonce, encrypt))
    only_crypto_errors(lambda: ours.verify_url(good, timestamp, nonce, encrypt))


@given(data=st.one_of(st.binary(max_size=3000), xmlish))
@FUZZ
def test_fuzz_parse_xml_and_envelope(data):
    only_crypto_errors(lambda: parse_xml(data))
    only_crypto_errors(lambda: envelope_encrypt(data))
    only_crypto_errors(lambda: parse_xml(data, max_bytes=64))


@given(text=st.text(max_size=2000))
@FUZZ
def test_fuzz_parse_xml_with_strings(text):
    only_crypto_errors(lambda: parse_xml(text))  # type: ignore[arg-type]
    only_crypto_errors(lambda: envelope_encrypt(text))  # type: ignore[arg-type]
