"""Faults to arm: the ways Tencent misbehaves, on demand.

Each fault has a count (how many calls or callbacks it still affects; None: until cleared)
and parameters. Arm one in code (`state.faults.arm("rate_limit", count=3)`) or with
`POST /sandbox/api/faults {"rate_limit": {"count": 3}}`.

API faults (they answer instead of the endpoint; `path` narrows them to paths that start
with it, e.g. "/wecom/cgi-bin/message/send"):
  invalid_token   WeCom 40014, Official Account 40001 (token-taking endpoints only)
  expired_token   42001 (token-taking endpoints only)
  rate_limit      45009; WeChat Pay: HTTP 429 FREQUENCY_LIMITED
  slow_api        sleep `ms` milliseconds before answering

Callback faults (on the next callbacks or notifications posted to the app):
  duplicate_callbacks     deliver each `copies` times (default 2), `concurrent`: at once
                          on separate threads
  delay_callbacks         hold the first try `seconds`; past the answer window (5 s) it
                          counts as a timeout, so the callback is retried
  bad_signature           a wrong msg_signature (WeCom, OA) or Wechatpay-Signature (Pay)
  drop_pay_notifications  never send the notification (the app must query the order)
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

API_FAULTS = {"invalid_token", "expired_token", "rate_limit", "slow_api"}
CALLBACK_FAULTS = {"duplicate_callbacks", "delay_callbacks", "bad_signature",
                   "drop_pay_notifications"}
NAMES = API_FAULTS | CALLBACK_FAULTS

DEFAULTS: dict[str, dict[str, Any]] = {
    "duplicate_callbacks": {"copies": 2, "concurrent": False},
    "delay_callbacks": {"seconds": 6.0},
    "slow_api": {"ms": 500},
}


class FaultError(ValueError):
    """A fault that cannot be armed as asked; the message says why."""


@dataclass
class Fault:
    name: str
    count: int | None  # None: until cleared
    params: dict[str, Any] = field(default_factory=dict)
    path: str = ""
    used: int = 0

    def view(self) -> dict[str, Any]:
        return {"count": self.count, "used": self.used, "path": self.path, **self.params}


class Faults:
    """The armed faults; thread-safe. `take` consumes one use of a fault."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._armed: dict[str, Fault] = {}

    def arm(self, name: str, count: int | None = 1, *, path: str = "", **params: Any) -> Fault:
        if name not in NAMES:
            raise FaultError(f"unknown fault {name!r}; known: {', '.join(sorted(NAMES))}")
        if count is not None and (isinstance(count, bool) or not isinstance(count, int)
                                  or count < 0):
            raise FaultError(f"{name}: count is a whole number of 0 or more, or null")
        if path and name not in API_FAULTS:
            raise FaultError(f"{name}: only API faults take a path")
        merged = {**DEFAULTS.get(name, {}), **params}
        unknown = set(merged) - set(DEFAULTS.get(name, {}))
        if unknown:
            raise FaultError(f"{name}: unknown parameter {', '.join(sorted(unknown))}")
        for key in ("seconds", "ms", "copies"):
            if key in merged and (isinstance(merged[key], bool)
                                  or not isinstance(merged[key], int | float)
                                  or merged[key] < 0):
                raise FaultError(f"{name}: {key} is a number of 0 or more")
        fault = Fault(name, count, merged, path)
        with self._lock:
            if count == 0:
                self._armed.pop(name, None)
            else:
                self._armed[name] = fault
        return fault

    def arm_many(self, spec: dict[str, Any]) -> None:
        """Arm from a JSON object {name: {"count": n, "path": …, params…} | n | null}."""
        if not isinstance(spec, dict):
            raise FaultError("send a JSON object of fault names")
        for name, value in spec.items():
            if value is None or isinstance(value, int) and not isinstance(value, bool):
                self.arm(name, value)
            elif isinstance(value, dict):
                params = dict(value)
                count = params.pop("count", 1)
                path = params.pop("path", "")
                self.arm(name, count, path=path, **params)
            else:
                raise FaultError(f"{name}: give a count or an object")

    def take(self, name: str, *, path: str = "") -> dict[str, Any] | None:
        """Use the fault once if it is armed (and matches `path`); its parameters, or None."""
        with self._lock:
            fault = self._armed.get(name)
            if fault is None or (fault.path and not path.startswith(fault.path)):
                return None
            fault.used += 1
            if fault.count is not None:
                fault.count -= 1
                if fault.count <= 0:
                    del self._armed[name]
            return dict(fault.params)

    def clear(self, name: str | None = None) -> None:
        with self._lock:
            if name is None:
                self._armed.clear()
            else:
                self._armed.pop(name, None)

    def snapshot(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return {name: fault.view() for name, fault in sorted(self._armed.items())}
