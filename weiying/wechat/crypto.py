"""Signatures and encryption for WeChat callbacks and WeChat Pay v3 notifications.

Pure functions over bytes and strings: no Django, no network, no logging (callers log the
`code` of a refusal, never a key or a plaintext). Every refusal is a `CryptoError` with a
stable `code`; anything else escaping from here is a bug.

Two protocols live here:

* WeCom and Official Account callbacks in safe mode: a SHA-1 signature over the sorted
  `[token, timestamp, nonce, encrypt]`, then AES-256-CBC with the IV taken from the key,
  PKCS#7 padding to 32-byte blocks and a plaintext framed as
  16 random bytes ‖ 4-byte big-endian length ‖ message ‖ receive id.
* WeChat Pay v3: RSA-SHA256 (PKCS#1 v1.5) over `timestamp\\nnonce\\nbody\\n` with the key
  named by the `Wechatpay-Serial` header, and an AEAD_AES_256_GCM `resource`.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import os
import re
import struct
import time
from xml.etree.ElementTree import Element, ParseError

import defusedxml.ElementTree as safe_et
from cryptography import x509
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.x509.oid import NameOID
from defusedxml import DefusedXmlException

__all__ = [
    "CallbackCrypto",
    "CryptoError",
    "PayVerifier",
    "check_timestamp",
    "envelope_encrypt",
    "generate_test_keypair",
    "oa_url_signature_ok",
    "parse_xml",
    "pay_decrypt_resource",
    "pay_encrypt_resource",
    "pay_message",
    "pay_sign",
    "self_signed_certificate",
    "signature",
    "signatures_match",
]

MAX_BODY_BYTES = 64 * 1024
TIMESTAMP_WINDOW = 300
PAY_PROBE_PREFIX = "WECHATPAY/SIGNTEST/"

_BLOCK = 32  # WeChat pads to 32-byte blocks, not AES's 16.
_RANDOM_LEN = 16
_LENGTH_LEN = 4
_GCM_TAG_LEN = 16
_MAX_XML_DEPTH = 16
_TIMESTAMP_RE = re.compile(r"[0-9]{1,12}")

CODES = frozenset({
    "bad_signature", "bad_padding", "bad_receive_id", "bad_length", "bad_base64", "bad_xml",
    "too_large", "stale_timestamp", "probe_signature", "unknown_serial", "bad_key",
})


class CryptoError(Exception):
    """A callback or notification that must be refused; `code` is one of `CODES`.

    The message is plain English for logs. It never contains key material or plaintext.
    """

    def __init__(self, code: str, message: str = "") -> None:
        if code not in CODES:
            raise ValueError(f"unknown crypto error code {code!r}")
        super().__init__(message or code)
        self.code = code
        self.message = message or code


# --- Signatures and timestamps -------------------------------------------------------------


def signature(*parts: str) -> str:
    """SHA-1 hex of the parts sorted and concatenated, as UTF-8.

    This is WeCom's and the Official Account's `msg_signature` (over token, timestamp, nonce
    and the encrypted text) and the Official Account's plain `signature` (over token,
    timestamp and nonce). Sorting strings by code point equals sorting their UTF-8 bytes.
    """
    joined = "".join(sorted(parts)).encode("utf-8", "surrogatepass")
    return hashlib.sha1(joined).hexdigest()


def signatures_match(expected: str, got: str) -> bool:
    """Compare two signatures in constant time; any length or character set is allowed."""
    return hmac.compare_digest(
        expected.encode("utf-8", "surrogatepass"), got.encode("utf-8", "surrogatepass")
    )


def check_timestamp(
    timestamp: str | int, *, now: float | None = None, window: int = TIMESTAMP_WINDOW
) -> int:
    """Return `timestamp` as Unix seconds if it is within `window` seconds of `now`.

    Accepts an int or a string of 1 to 12 ASCII digits. Anything else, and any time more
    than `window` seconds in the past or in the future, raises `stale_timestamp`.
    WeChat documents no window for callbacks; the caller applies this one for WeCom and the
    Official Account, and `PayVerifier.verify` applies it itself.
    """
    if isinstance(timestamp, bool):
        raise CryptoError("stale_timestamp", "timestamp is not an integer")
    if isinstance(timestamp, int):
        value = timestamp
    elif isinstance(timestamp, str) and _TIMESTAMP_RE.fullmatch(timestamp):
        value = int(timestamp)
    else:
        raise CryptoError("stale_timestamp", "timestamp is not an integer")

    current = time.time() if now is None else now
    if abs(current - value) > window:
        raise CryptoError("stale_timestamp", "timestamp is outside the accepted window")
    return value


_sorted_sha1 = signature  # for functions whose `signature` parameter hides the function


def oa_url_signature_ok(token: str, signature: str, timestamp: str, nonce: str) -> bool:
    """The Official Account's plain URL check: sha1(sorted[token, timestamp, nonce]).

    On success the caller answers the `echostr` exactly as it came.
    """
    return signatures_match(_sorted_sha1(token, timestamp, nonce), signature)


# --- XML ------------------------------------------------------------------------------------


def parse_xml(data: bytes, *, max_bytes: int = MAX_BODY_BYTES) -> dict[str, str]:
    """Parse a WeChat XML document into a flat dict of the root's descendants' text.

    Checked in this order:
    1. size: more than `max_bytes` bytes raises `too_large` before any parsing;
    2. parse with defusedxml, refusing any DTD, entity declaration or external reference,
       and anything malformed: `bad_xml`;
    3. flatten: a leaf child of the root is `{"Tag": text}`; a nested leaf is
       `{"Parent.Child": text}`; an empty element is `""`. When a key repeats, the first
       occurrence wins (callers that need lists parse the plaintext themselves). Nesting
       deeper than 16 levels is `bad_xml`.
    A `str` is accepted and encoded as UTF-8.
    """
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogatepass")
    if len(data) > max_bytes:
        raise CryptoError("too_large", "XML body is larger than allowed")

    try:
        root = safe_et.fromstring(data, forbid_dtd=True, forbid_entities=True,
                                  forbid_external=True)
    except DefusedXmlException as exc:
        raise CryptoError("bad_xml", "XML with a DTD, entity or external reference") from exc
    except (ParseError, ValueError, LookupError) as exc:
        raise CryptoError("bad_xml", "malformed XML") from exc

    return _flatten(root)


def _flatten(root: Element) -> dict[str, str]:
    flat: dict[str, str] = {}
    # Iterative, so a deep document cannot exhaust the Python stack.
    stack: list[tuple[str, Element, int]] = [
        (child.tag, child, 1) for child in reversed(list(root))
    ]
    while stack:
        key, element, depth = stack.pop()
        if depth > _MAX_XML_DEPTH:
            raise CryptoError("bad_xml", "XML is nested too deeply")
        children = list(element)
        if children:
            stack.extend(
                (f"{key}.{child.tag}", child, depth + 1) for child in reversed(children)
            )
        else:
            flat.setdefault(key, element.text or "")
    return flat


def envelope_encrypt(body: bytes, *, max_bytes: int = MAX_BODY_BYTES) -> str:
    """The `<Encrypt>` text of a POSTed callback envelope, surrounding whitespace removed.

    Raises what `parse_xml` raises, and `bad_xml` when there is no non-empty `<Encrypt>`
    child of the root.
    """
    value = parse_xml(body, max_bytes=max_bytes).get("Encrypt", "").strip()
    if not value:
        raise CryptoError("bad_xml", "the envelope has no Encrypt element")
    return value


def _cdata(text: str) -> str:
    # "]]>" cannot sit inside one CDATA section: close it and open another around the ">".
    return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"


# --- Callbacks (WeCom and Official Account safe mode) --------------------------------------


def _strict_b64decode(text: str | bytes, what: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise CryptoError("bad_base64", f"{what} is not base64") from exc


class CallbackCrypto:
    """WeCom and Official Account safe-mode callbacks for one app.

    `token` and `encoding_aes_key` are the values set in the app's callback settings;
    `receive_id` is the corp id (WeCom) or app id (Official Account) that every plaintext
    must end with. Order of checks in `verify_url` and `decrypt`, each raising `CryptoError`:

    1. signature over `[token, timestamp, nonce, encrypt]`, constant time: `bad_signature`;
    2. base64: `bad_base64`;
    3. ciphertext a positive multiple of 32 bytes: `bad_length`;
    4. PKCS#7 padding of 1–32 bytes, all equal: `bad_padding`;
    5. the length field fits inside the plaintext: `bad_length`;
    6. the trailing receive id equals `receive_id`: `bad_receive_id`.

    Nothing is decrypted before the signature holds. The timestamp is not checked here: the
    caller calls `check_timestamp` first (WeCom's URL check must still answer within 1 s).
    """

    def __init__(self, token: str, encoding_aes_key: str, receive_id: str) -> None:
        if not isinstance(encoding_aes_key, str) or len(encoding_aes_key) != 43:
            raise CryptoError("bad_key", "EncodingAESKey must be 43 characters")
        try:
            key = base64.b64decode(encoding_aes_key + "=", validate=True)
        except (binascii.Error, ValueError) as exc:
            raise CryptoError("bad_key", "EncodingAESKey is not base64") from exc
        if len(key) != 32:
            raise CryptoError("bad_key", "EncodingAESKey must decode to 32 bytes")

        self.token = token
        self.receive_id = receive_id
        self._receive_id = receive_id.encode("utf-8")
        self._key = key
        self._iv = key[:16]

    # Verification ---------------------------------------------------------------------------

    def msg_signature(self, timestamp: str, nonce: str, encrypt: str) -> str:
        """The `msg_signature` WeChat sends with this encrypted text."""
        return signature(self.token, timestamp, nonce, encrypt)

    def verify_url(self, msg_signature: str, timestamp: str, nonce: str, echostr: str) -> bytes:
        """WeCom's GET URL check: verify, decrypt `echostr` and return the plaintext to echo.

        The query string must be URL-decoded first (`echostr` carries `+`, `/` and `=`).
        """
        return self.decrypt(msg_signature, timestamp, nonce, echostr)

    def decrypt(self, msg_signature: str, timestamp: str, nonce: str, encrypt: str) -> bytes:
        """Verify the signature, then decrypt `encrypt` and return the message bytes.

        See the class docstring for the checks and their order.
        """
        expected = self.msg_signature(timestamp, nonce, encrypt)
        if not signatures_match(expected, msg_signature):
            raise CryptoError("bad_signature", "msg_signature does not match")
        return self._open(encrypt)

    def _open(self, encrypt: str) -> bytes:
        ciphertext = _strict_b64decode(encrypt, "Encrypt")
        if not ciphertext or len(ciphertext) % _BLOCK:
            raise CryptoError("bad_length", "ciphertext is not a whole number of 32-byte blocks")

        decryptor = Cipher(algorithms.AES(self._key), modes.CBC(self._iv)).decryptor()
        padded = decryptor.update(ciphertext) + decryptor.finalize()

        pad = padded[-1]
        if not 1 <= pad <= _BLOCK or padded[-pad:] != bytes([pad]) * pad:
            raise CryptoError("bad_padding", "PKCS#7 padding is wrong")
        plain = padded[:-pad]

        header = _RANDOM_LEN + _LENGTH_LEN
        if len(plain) < header:
            raise CryptoError("bad_length", "plaintext is shorter than its header")
        (length,) = struct.unpack(">I", plain[_RANDOM_LEN:header])
        if header + length > len(plain):
            raise CryptoError("bad_length", "length field runs past the plaintext")

        message = plain[header:header + length]
        trailer = plain[header + length:]
        if not hmac.compare_digest(trailer, self._receive_id):
            raise CryptoError("bad_receive_id", "plaintext is for another corp or app")
        return message

    # Encryption (encrypted replies and the sandbox) -----------------------------------------

    def encrypt(
        self, message: bytes, *, timestamp: str, nonce: str, random16: bytes | None = None
    ) -> tuple[str, str]:
        """Encrypt `message` for this app; return `(encrypt, msg_signature)`.

        `random16` fixes the 16 leading random bytes (tests against published vectors);
        by default they come from `os.urandom`.
        """
        prefix = os.urandom(_RANDOM_LEN) if random16 is None else random16
        if len(prefix) != _RANDOM_LEN:
            raise ValueError("random16 must be 16 bytes")
        if len(message) >= 2**32:
            raise ValueError("message is too long for the 4-byte length field")

        plain = prefix + struct.pack(">I", len(message)) + message + self._receive_id
        pad = _BLOCK - len(plain) % _BLOCK
        plain += bytes([pad]) * pad

        encryptor = Cipher(algorithms.AES(self._key), modes.CBC(self._iv)).encryptor()
        ciphertext = encryptor.update(plain) + encryptor.finalize()
        encrypt = base64.b64encode(ciphertext).decode("ascii")
        return encrypt, self.msg_signature(timestamp, nonce, encrypt)

    def encrypted_envelope(
        self, message: bytes, *, timestamp: str, nonce: str, agent_id: str = ""
    ) -> bytes:
        """The XML body WeChat POSTs for `message`: ToUserName (the receive id), Encrypt and
        AgentID. The `msg_signature` for the query string is
        `self.msg_signature(timestamp, nonce, envelope_encrypt(body))`.
        """
        encrypt, _sig = self.encrypt(message, timestamp=timestamp, nonce=nonce)
        xml = (
            f"<xml><ToUserName>{_cdata(self.receive_id)}</ToUserName>"
            f"<Encrypt>{_cdata(encrypt)}</Encrypt>"
            f"<AgentID>{_cdata(agent_id)}</AgentID></xml>"
        )
        return xml.encode("utf-8")


# --- WeChat Pay v3 --------------------------------------------------------------------------


def _api_v3_key(api_v3_key: str | bytes) -> bytes:
    key = api_v3_key.encode("utf-8") if isinstance(api_v3_key, str) else bytes(api_v3_key)
    if len(key) != 32:
        raise CryptoError("bad_key", "the APIv3 key must be 32 bytes")
    return key


def pay_decrypt_resource(
    api_v3_key: str | bytes, *, nonce: str, associated_data: str, ciphertext: str
) -> bytes:
    """Decrypt a notification's AEAD_AES_256_GCM `resource` and return the plaintext JSON.

    Checks, in order: key of 32 bytes (`bad_key`), base64 ciphertext (`bad_base64`), room for
    the 16-byte tag and a usable nonce (`bad_length`), the tag over ciphertext and
    associated data (`bad_signature`). Verify the notification's RSA signature first.
    """
    key = _api_v3_key(api_v3_key)
    data = _strict_b64decode(ciphertext, "ciphertext")
    if len(data) < _GCM_TAG_LEN:
        raise CryptoError("bad_length", "ciphertext is shorter than the GCM tag")

    try:
        return AESGCM(key).decrypt(
            nonce.encode("utf-8"), data, associated_data.encode("utf-8")
        )
    except InvalidTag as exc:
        raise CryptoError("bad_signature", "the GCM tag does not match") from exc
    except ValueError as exc:  # a nonce outside 8–128 bytes
        raise CryptoError("bad_length", "the nonce has an unusable length") from exc


def pay_encrypt_resource(
    api_v3_key: str | bytes, *, nonce: str, associated_data: str, plaintext: bytes
) -> str:
    """Encrypt `plaintext` as WeChat Pay does a `resource` (for the sandbox); base64."""
    key = _api_v3_key(api_v3_key)
    data = AESGCM(key).encrypt(nonce.encode("utf-8"), plaintext, associated_data.encode("utf-8"))
    return base64.b64encode(data).decode("ascii")


def pay_message(timestamp: str, nonce: str, body: bytes) -> bytes:
    """The signed message of a WeChat Pay v3 response or notification."""
    return f"{timestamp}\n{nonce}\n".encode() + body + b"\n"


def pay_sign(private_key_pem: bytes, message: bytes) -> str:
    """RSA-SHA256 PKCS#1 v1.5 signature of `message`, base64 (for the sandbox)."""
    key = serialization.load_pem_private_key(private_key_pem, password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise CryptoError("bad_key", "the private key is not RSA")
    raw = key.sign(message, padding.PKCS1v15(), hashes.SHA256())
    return base64.b64encode(raw).decode("ascii")


def _load_public_key(serial: str, pem: bytes) -> rsa.RSAPublicKey:
    try:
        if b"BEGIN CERTIFICATE" in pem:
            certificate = x509.load_pem_x509_certificate(pem)
            if certificate.serial_number != int(serial, 16):
                raise CryptoError("bad_key", "certificate serial differs from its key id")
            key = certificate.public_key()
        else:
            key = serialization.load_pem_public_key(pem)
    except ValueError as exc:
        raise CryptoError("bad_key", "a WeChat Pay key or certificate does not load") from exc
    if not isinstance(key, rsa.RSAPublicKey):
        raise CryptoError("bad_key", "a WeChat Pay key is not RSA")
    return key


class PayVerifier:
    """Verifies WeChat Pay v3 notification signatures against the trusted keys.

    `keys` maps a `Wechatpay-Serial` value to a PEM: a WeChat Pay public key (serial
    `PUB_KEY_ID_…`) or a platform certificate (serial = the certificate's hex serial
    number, which must match). Both kinds may be present during a migration. A certificate's
    validity dates are not checked here: the keys passed in are the ones trusted.
    """

    def __init__(self, keys: dict[str, bytes]) -> None:
        self._keys = {serial: _load_public_key(serial, pem) for serial, pem in keys.items()}

    def verify(
        self,
        *,
        serial: str,
        timestamp: str,
        nonce: str,
        body: bytes,
        signature: str,
        now: float | None = None,
    ) -> None:
        """Return if the notification is authentic; otherwise raise `CryptoError`.

        Checked in this order:
        1. a signature starting `WECHATPAY/SIGNTEST/` (WeChat's deliberate probe):
           `probe_signature`;
        2. the timestamp within 300 s of `now`, either way: `stale_timestamp`;
        3. `serial` among the trusted keys: `unknown_serial`;
        4. the signature is base64: `bad_base64`;
        5. RSA-SHA256 over `timestamp\\nnonce\\nbody\\n`: `bad_signature`.
        """
        if signature.startswith(PAY_PROBE_PREFIX):
            raise CryptoError("probe_signature", "a WeChat Pay signature probe")
        check_timestamp(timestamp, now=now)
        key = self._keys.get(serial)
        if key is None:
            raise CryptoError("unknown_serial", "no trusted key has this serial")
        raw = _strict_b64decode(signature, "signature")

        try:
            key.verify(raw, pay_message(timestamp, nonce, body), padding.PKCS1v15(),
                       hashes.SHA256())
        except InvalidSignature as exc:
            raise CryptoError("bad_signature", "the WeChat Pay signature does not match") from exc


def generate_test_keypair() -> tuple[bytes, bytes]:
    """A fresh RSA-2048 key pair as `(private PKCS#8 PEM, public PEM)`: tests and sandbox."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private_pem, public_pem


def self_signed_certificate(private_pem: bytes, *, serial_hex: str) -> bytes:
    """A self-signed certificate standing in for a platform certificate (sandbox, tests).

    Its serial number is `serial_hex`, so a `PayVerifier` can key it by that serial.
    Valid from a day ago for five years.
    """
    key = serialization.load_pem_private_key(private_pem, password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise CryptoError("bad_key", "the private key is not RSA")
    name = x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Weiying sandbox"),
        x509.NameAttribute(NameOID.COMMON_NAME, "WeChat Pay platform certificate (sandbox)"),
    ])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(int(serial_hex, 16))
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=5 * 365))
        .sign(key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM)
