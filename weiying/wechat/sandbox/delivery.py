"""Posting callbacks and notifications to the app, the way Tencent does.

* WeCom and the Official Account (safe mode): `POST {url}?msg_signature=…&timestamp=…&nonce=…`
  (the OA adds `signature=…&openid=…&encrypt_type=aes`) with the encrypted envelope XML.
  Only HTTP 200 within the answer window (5 s) ends it; otherwise 3 tries in all, ~5 s
  apart. Retries resend the same bytes.
* WeChat Pay v3: the JSON notification with an AEAD_AES_256_GCM resource, signed
  (RSA-SHA256 over `ts\\nnonce\\nbody\\n`) with the platform key named in Wechatpay-Serial.
  200 or 204 ends it; otherwise retried on `pay_retry_seconds` (Tencent's ~24-hour
  schedule by default). Each try is signed afresh; the body stays the same.

`state.deliver(url, body, headers) -> status` does the posting (httpx by default; tests put
a function there). In "thread" mode a background worker runs the tries, each retry due on
the sandbox clock (moving it forward with `state.advance` brings due retries on at once);
in "sync" mode they run to the end in the caller's thread, retries and all, waiting with
`state.sleep`, so tests are deterministic.
"""

from __future__ import annotations

import base64
import dataclasses
import heapq
import itertools
import json
import logging
import os
import secrets
import string
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import httpx

from weiying.wechat import crypto

if TYPE_CHECKING:
    from weiying.wechat.sandbox.state import Order, Refund, SandboxState

logger = logging.getLogger(__name__)

DeliverFn = Callable[[str, bytes, dict[str, str]], int]
SignFn = Callable[[bool], tuple[str, bytes, dict[str, str]]]

OK_STATUSES = {"wecom": frozenset({200}), "wecom-contacts": frozenset({200}),
               "oa": frozenset({200}), "pay": frozenset({200, 204})}


class CallbackTimeout(Exception):
    """The app did not answer within the answer window."""


def http_deliver(state: SandboxState) -> DeliverFn:
    """The real poster: httpx with the configured answer window as its timeout."""

    # Limitation: only the status counts; a passive reply in the answer body (an OA text
    # reply, for instance) is not read or shown.
    def deliver(url: str, body: bytes, headers: dict[str, str]) -> int:
        try:
            response = httpx.post(url, content=body, headers=headers,
                                  timeout=state.config.callback_timeout)
        except httpx.TimeoutException:
            raise CallbackTimeout(url) from None
        return response.status_code

    return deliver


@dataclass
class Delivery:
    """One callback or notification, its tries and its outcome."""

    id: int
    channel: str  # wecom, wecom-contacts, oa, pay
    event: str
    url: str
    plaintext: bytes
    schedule: list[float]
    sign: SignFn = field(repr=False)
    created: float = 0.0
    copy: int = 1
    delay: float = 0.0
    bad_signature: bool = False
    status: str = "pending"  # pending, delivered, failed, dropped
    attempts: list[dict[str, Any]] = field(default_factory=list)

    def view(self) -> dict[str, Any]:
        return {
            "id": self.id, "channel": self.channel, "event": self.event, "url": self.url,
            "status": self.status, "copy": self.copy, "delay": self.delay,
            "bad_signature": self.bad_signature, "created": self.created,
            "attempts": [dict(a) for a in self.attempts],
            "plaintext": self.plaintext.decode("utf-8", "replace"),
        }


class Deliverer:
    """Runs deliveries: now (sync mode) or on a background worker with a retry heap."""

    def __init__(self, state: SandboxState) -> None:
        self.state = state
        self._ids = itertools.count(1)
        self._seq = itertools.count(1)
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, Delivery]] = []
        self._busy = 0
        self._thread: threading.Thread | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._stopped = False

    def new_id(self) -> int:
        return next(self._ids)

    # Submitting -----------------------------------------------------------------------

    def submit(self, delivery: Delivery) -> list[Delivery]:
        """Apply the armed callback faults, then deliver (now or in the background).
        Returns the deliveries made: more than one when duplicates were armed."""
        state = self.state
        faults = state.faults
        delivery.created = state.now()
        if delivery.channel == "pay" and faults.take("drop_pay_notifications") is not None:
            delivery.status = "dropped"
            self._record([delivery])
            logger.info("sandbox: pay notification dropped (fault)",
                        extra={"delivery": delivery.id, "event": delivery.event})
            return [delivery]

        duplicate = faults.take("duplicate_callbacks")
        delay = faults.take("delay_callbacks")
        delivery.bad_signature = faults.take("bad_signature") is not None
        delivery.delay = float(delay["seconds"]) if delay else 0.0
        copies = [delivery]
        concurrent = False
        if duplicate:
            concurrent = bool(duplicate.get("concurrent"))
            for number in range(2, max(1, int(duplicate.get("copies", 2))) + 1):
                copies.append(dataclasses.replace(
                    delivery, id=self.new_id(), copy=number, delay=0.0, attempts=[]))
        self._record(copies)

        if state.config.delivery_mode == "sync":
            if concurrent and len(copies) > 1:
                barrier = threading.Barrier(len(copies))
                threads = [threading.Thread(target=self._run_to_end, args=(d, barrier),
                                            daemon=True) for d in copies]
                for thread in threads:
                    thread.start()
                for thread in threads:
                    thread.join()
            else:
                for d in copies:
                    self._run_to_end(d)
            return copies

        if concurrent and len(copies) > 1:
            barrier = threading.Barrier(len(copies))
            with self._cond:
                self._busy += len(copies)
            for d in copies:
                threading.Thread(target=self._try_in_background, args=(d, barrier),
                                 daemon=True).start()
        else:
            for d in copies:
                self._enqueue(d, 0.0)
        return copies

    def _record(self, deliveries: list[Delivery]) -> None:
        with self.state.lock:
            self.state.deliveries.extend(deliveries)

    # Trying ---------------------------------------------------------------------------

    def _run_to_end(self, delivery: Delivery, barrier: threading.Barrier | None = None) -> None:
        tries = 0
        while True:
            ok = self._attempt(delivery, barrier if tries == 0 else None)
            if ok or tries >= len(delivery.schedule):
                return
            self.state.sleep(float(delivery.schedule[tries]))
            tries += 1

    def _attempt(self, delivery: Delivery, barrier: threading.Barrier | None = None) -> bool:
        """One try. A try that takes longer than the answer window is a failure whatever
        the answer (WeChat has stopped listening), and so is any status but the channel's
        success statuses."""
        state = self.state
        url, body, headers = delivery.sign(delivery.bad_signature)
        delay = delivery.delay if not delivery.attempts else 0.0
        if delay:
            state.sleep(delay)
        if barrier is not None:
            try:
                barrier.wait(timeout=5)
            except threading.BrokenBarrierError:
                pass

        started = time.monotonic()
        status: int | None = None
        error = ""
        try:
            status = int(state.deliver(url, body, headers))
        except (CallbackTimeout, TimeoutError):
            error = "timeout"
        except Exception as exc:  # noqa: BLE001 - any transport failure is a failed try
            error = type(exc).__name__
        elapsed = time.monotonic() - started + delay
        timed_out = error == "timeout" or elapsed > state.config.callback_timeout
        ok = status in OK_STATUSES[delivery.channel] and not timed_out

        with state.lock:
            delivery.attempts.append({
                "at": state.now(), "status": status, "error": error or None,
                "timed_out": timed_out, "ms": int(elapsed * 1000),
                "bad_signature": delivery.bad_signature,
            })
            more = len(delivery.attempts) <= len(delivery.schedule)
            delivery.status = "delivered" if ok else ("pending" if more else "failed")
        log = logger.info if ok else logger.warning
        log("sandbox: callback try", extra={
            "delivery": delivery.id, "event": delivery.event, "try": len(delivery.attempts),
            "status": status, "error": error, "timed_out": timed_out})
        return ok

    # The background worker ------------------------------------------------------------

    # Due times are on the sandbox clock; the worker looks again at least this often (in
    # real seconds), so a test clock moved without `state.advance` is noticed too.
    POLL_SECONDS = 0.25

    def _enqueue(self, delivery: Delivery, wait: float) -> None:
        with self._cond:
            self._ensure_worker()
            heapq.heappush(self._heap, (self.state.now() + wait, next(self._seq), delivery))
            self._cond.notify_all()

    def wake(self) -> None:
        """The sandbox clock moved: look at the due times again."""
        with self._cond:
            self._cond.notify_all()

    def _ensure_worker(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._stopped = False
            self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="sandbox-post")
            self._thread = threading.Thread(target=self._work, name="sandbox-deliverer",
                                            daemon=True)
            self._thread.start()

    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._stopped and (
                        not self._heap or self._heap[0][0] > self.state.now()):
                    timeout = (min(self._heap[0][0] - self.state.now(), self.POLL_SECONDS)
                               if self._heap else None)
                    self._cond.wait(timeout)
                if self._stopped:
                    return
                _due, _seq, delivery = heapq.heappop(self._heap)
                self._busy += 1
            assert self._pool is not None
            self._pool.submit(self._try_in_background, delivery, None)

    def _try_in_background(self, delivery: Delivery, barrier: threading.Barrier | None) -> None:
        try:
            ok = self._attempt(delivery, barrier)
            tries = len(delivery.attempts)
            if not ok and tries <= len(delivery.schedule):
                self._enqueue(delivery, float(delivery.schedule[tries - 1]))
        except Exception:
            logger.exception("sandbox: delivery worker failed", extra={"delivery": delivery.id})
        finally:
            with self._cond:
                self._busy -= 1
                self._cond.notify_all()

    def join(self, timeout: float = 10.0) -> bool:
        """Wait until nothing is queued or being tried; False if `timeout` ran out first."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._heap or self._busy:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(min(remaining, 0.05))
        return True

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._heap.clear()
            self._cond.notify_all()
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)


# --- Building what is posted -------------------------------------------------------------


def _cdata(text: str) -> str:
    return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def xml_message(items: list[tuple[str, str | int]]) -> bytes:
    """A flat WeChat XML message: strings in CDATA, integers bare, in the given order."""
    parts = []
    for tag, value in items:
        text = str(value) if isinstance(value, int) else _cdata(value)
        parts.append(f"<{tag}>{text}</{tag}>")
    return ("<xml>" + "".join(parts) + "</xml>").encode("utf-8")


def _nonce(length: int = 10) -> str:
    return "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(length))


def _corrupt(signature: str) -> str:
    """A signature of the same shape that does not verify."""
    last = signature[-1:] or "0"
    return signature[:-1] + ("1" if last != "1" else "2")


def _url(base: str, path: str) -> str:
    return base.rstrip("/") + "/" + path.lstrip("/")


def wecom_delivery(state: SandboxState, event: str, fields: list[tuple[str, str | int]], *,
                   channel: str = "wecom-contacts") -> Delivery:
    """A WeCom event from `sys` (change_external_contact, change_contact, …) to the
    customer-contact callback (channel "wecom-contacts") or the app's ("wecom")."""
    config = state.config
    items: list[tuple[str, str | int]] = [
        ("ToUserName", config.corp_id), ("FromUserName", "sys"),
        ("CreateTime", state.now_int()), ("MsgType", "event"), ("Event", event),
    ]
    plaintext = xml_message(items + fields)
    box = crypto.CallbackCrypto(config.callback_token, config.callback_aes_key, config.corp_id)
    path = (config.wecom_callback_path if channel == "wecom"
            else config.wecom_contacts_callback_path)
    base = _url(config.app_base_url, path)
    agent_id = config.agent_id if channel == "wecom" else ""
    signed: dict[str, tuple[str, str, bytes, str]] = {}

    def sign(bad: bool) -> tuple[str, bytes, dict[str, str]]:
        if "v" not in signed:
            ts, nonce = str(state.now_int()), _nonce()
            encrypt, signature = box.encrypt(plaintext, timestamp=ts, nonce=nonce)
            body = (f"<xml><ToUserName>{_cdata(config.corp_id)}</ToUserName>"
                    f"<Encrypt>{_cdata(encrypt)}</Encrypt>"
                    f"<AgentID>{_cdata(agent_id)}</AgentID></xml>").encode()
            signed["v"] = (ts, nonce, body, signature)
        ts, nonce, body, signature = signed["v"]
        if bad:
            signature = _corrupt(signature)
        url = f"{base}?msg_signature={signature}&timestamp={ts}&nonce={nonce}"
        return url, body, {"Content-Type": "text/xml", "User-Agent": "WeChat-Sandbox"}

    change = next((str(v) for k, v in fields if k == "ChangeType"), "")
    return Delivery(state.deliverer.new_id(), channel, f"{event}/{change}" if change else event,
                    base, plaintext, list(config.wecom_retry_seconds), sign)


def oa_delivery(state: SandboxState, openid: str, fields: list[tuple[str, str | int]], *,
                event: str) -> Delivery:
    """A message or event from a follower to the Official Account's callback; safe mode
    when the OA has an EncodingAESKey, plain otherwise."""
    config = state.config
    items: list[tuple[str, str | int]] = [
        ("ToUserName", config.oa_original_id), ("FromUserName", openid),
        ("CreateTime", state.now_int()),
    ]
    plaintext = xml_message(items + fields)
    base = _url(config.app_base_url, config.oa_callback_path)
    box = (crypto.CallbackCrypto(config.oa_token, config.oa_aes_key, config.oa_app_id)
           if config.oa_aes_key else None)
    signed: dict[str, tuple[str, str, bytes, str]] = {}

    def sign(bad: bool) -> tuple[str, bytes, dict[str, str]]:
        if "v" not in signed:
            ts, nonce = str(state.now_int()), _nonce()
            if box is None:
                body, msg_signature = plaintext, ""
            else:
                encrypt, msg_signature = box.encrypt(plaintext, timestamp=ts, nonce=nonce)
                body = (f"<xml><ToUserName>{_cdata(config.oa_original_id)}</ToUserName>"
                        f"<Encrypt>{_cdata(encrypt)}</Encrypt></xml>").encode()
            signed["v"] = (ts, nonce, body, msg_signature)
        ts, nonce, body, msg_signature = signed["v"]
        signature = crypto.signature(config.oa_token, ts, nonce)
        if bad:
            signature = _corrupt(signature)
            msg_signature = _corrupt(msg_signature) if msg_signature else ""
        url = (f"{base}?signature={signature}&timestamp={ts}&nonce={nonce}"
               f"&openid={quote(openid)}")
        if msg_signature:
            url += f"&encrypt_type=aes&msg_signature={msg_signature}"
        return url, body, {"Content-Type": "text/xml", "User-Agent": "WeChat-Sandbox"}

    return Delivery(state.deliverer.new_id(), "oa", event, base, plaintext,
                    list(config.oa_retry_seconds), sign)


def rfc3339(timestamp: float) -> str:
    """Tencent's time format: Beijing time with its offset, to the second."""
    import datetime as dt

    beijing = dt.timezone(dt.timedelta(hours=8))
    return dt.datetime.fromtimestamp(int(timestamp), beijing).isoformat(timespec="seconds")


def transaction(order: Order) -> dict[str, Any]:
    """The transaction object of an order: what a query answers and a notification carries.
    A paid order (SUCCESS, or REFUND once a refund was made) carries the payment."""
    from weiying.wechat.sandbox.state import PAID_STATES, TRADE_STATE_DESC

    data: dict[str, Any] = {
        "appid": order.appid, "mchid": order.mchid, "out_trade_no": order.out_trade_no,
        "trade_state": order.trade_state,
        "trade_state_desc": order.trade_state_desc or TRADE_STATE_DESC[order.trade_state],
        "attach": order.attach,
        "amount": {"total": order.total, "currency": order.currency,
                   "payer_currency": order.currency},
    }
    if order.trade_state in PAID_STATES:
        data.update(
            transaction_id=order.transaction_id, trade_type="NATIVE", bank_type="OTHERS",
            success_time=order.success_time, payer={"openid": order.payer_openid},
        )
        data["amount"]["payer_total"] = order.total
    return data


def refund_resource(order: Order, refund: Refund) -> dict[str, Any]:
    """What a REFUND.* notification carries (its decrypted resource)."""
    return {
        "mchid": order.mchid, "out_trade_no": order.out_trade_no,
        "transaction_id": order.transaction_id, "out_refund_no": refund.out_refund_no,
        "refund_id": refund.refund_id, "refund_status": refund.refund_status,
        "success_time": refund.success_time,
        "user_received_account": refund.user_received_account,
        "amount": {"total": order.total, "refund": refund.refund,
                   "payer_total": order.total, "payer_refund": refund.refund},
    }


def pay_delivery(state: SandboxState, order: Order) -> Delivery:
    """The TRANSACTION.SUCCESS notification of a paid order, to its notify_url."""
    return _pay_notification(state, order.notify_url, "TRANSACTION.SUCCESS", "支付成功",
                             "transaction", transaction(order))


def refund_delivery(state: SandboxState, order: Order, refund: Refund) -> Delivery:
    """The REFUND.SUCCESS notification of a refund, to the order's notify_url (a refund asked
    for without its own notify_url is notified at the merchant's, here the order's)."""
    return _pay_notification(state, order.notify_url, f"REFUND.{refund.refund_status}",
                             "退款成功", "refund", refund_resource(order, refund))


def _pay_notification(state: SandboxState, url: str, event_type: str, summary: str,
                      original_type: str, resource: dict[str, Any]) -> Delivery:
    """A WeChat Pay v3 notification: the resource encrypted with the APIv3 key
    (AEAD_AES_256_GCM, its original type as associated data), each try signed afresh."""
    config = state.config
    plaintext = json.dumps(resource, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    nonce = _nonce(12)
    envelope = {
        "id": str(uuid.uuid4()),
        "create_time": rfc3339(state.now()),
        "resource_type": "encrypt-resource",
        "event_type": event_type,
        "summary": summary,
        "resource": {
            "original_type": original_type,
            "algorithm": "AEAD_AES_256_GCM",
            "ciphertext": crypto.pay_encrypt_resource(
                config.pay_apiv3_key, nonce=nonce, associated_data=original_type,
                plaintext=plaintext),
            "associated_data": original_type,
            "nonce": nonce,
        },
    }
    body = json.dumps(envelope, ensure_ascii=False, separators=(",", ":")).encode("utf-8")

    def sign(bad: bool) -> tuple[str, bytes, dict[str, str]]:
        serial, private = state.signing_key()
        ts, nonce = str(state.now_int()), _nonce(32)
        signature = crypto.pay_sign(private, crypto.pay_message(ts, nonce, body))
        if bad:
            signature = base64.b64encode(os.urandom(256)).decode()
        return url, body, {
            "Content-Type": "application/json", "Wechatpay-Timestamp": ts,
            "Wechatpay-Nonce": nonce, "Wechatpay-Serial": serial,
            "Wechatpay-Signature": signature,
            "Wechatpay-Signature-Type": "WECHATPAY2-SHA256-RSA2048",
            "Request-ID": str(uuid.uuid4()), "User-Agent": "Mozilla/4.0",
        }

    return Delivery(state.deliverer.new_id(), "pay", event_type, url, plaintext,
                    list(config.pay_retry_seconds), sign)
